"""Benchmarks that print numbers: the whole pipeline against the raw model in-process."""
