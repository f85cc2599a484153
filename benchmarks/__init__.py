"""Benchmark harness for imgsearch (not part of the package, never collected by pytest).

Run from the repository root, e.g. `.venv/bin/python -m benchmarks.ingest`; each script prints a
table and updates its own section of `BENCHMARKS.md`. See `BENCHMARKS.md` for results.
"""
