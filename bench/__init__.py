"""Benchmarks: scripts that print figures (throughput, latency, memory). Not tests."""
