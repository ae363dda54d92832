"""HTTP handlers, one module per endpoint group."""
