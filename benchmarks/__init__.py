"""Benchmarks: each times a batched computation against a naive loop in one run and prints the ratio."""
