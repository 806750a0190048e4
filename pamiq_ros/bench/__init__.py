"""Benchmarks that run the project's real processes and report measured figures."""
