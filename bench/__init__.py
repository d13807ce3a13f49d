"""Benchmarks: `make bench` runs every bench/stage_*.py and writes BENCHMARKS.md."""
