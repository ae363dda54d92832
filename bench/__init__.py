"""Benchmarks: in-process vs HTTP figures measured side by side in one run."""
