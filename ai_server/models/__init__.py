"""One module per model family, each behind the same small `Model` interface (see base.py)."""
