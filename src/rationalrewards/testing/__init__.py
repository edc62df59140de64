"""Helpers for tests and benchmarks: loopback servers and tiny components built offline."""
