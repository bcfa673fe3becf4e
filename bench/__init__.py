"""Benchmarks behind `make bench`: each prints figures, the goal, and whether it was met."""
