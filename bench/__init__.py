"""Benchmarks of the vote pipeline, run by hand against the local stack; never gated in CI."""
