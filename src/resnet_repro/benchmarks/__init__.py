"""Benchmarks that `make bench` runs (experiments/bench.py, experiments/bench_loader.py):
throughput side by side in one process, and the ImageNet loader alone."""
