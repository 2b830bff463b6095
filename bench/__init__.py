"""Benchmarks: `python -m bench.ingest` and `python -m bench.billrun`; figures in RESULTS.md."""
