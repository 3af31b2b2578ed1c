"""Deno KV conformance suite, parametrised over every backend (see tests/conftest.py)."""
