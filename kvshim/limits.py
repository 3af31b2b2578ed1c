"""Deno KV's limits (Deno 2.9.8 CLI, local backend), as named constants."""

from __future__ import annotations

MAX_WRITE_KEY_SIZE_BYTES = 2048
MAX_READ_KEY_SIZE_BYTES = MAX_WRITE_KEY_SIZE_BYTES + 1
MAX_VALUE_SIZE_BYTES = 65536
MAX_READ_RANGES = 10
MAX_READ_ENTRIES = 1000
DEFAULT_BATCH_SIZE = 100
MAX_DEFAULT_BATCH_SIZE = 500
MAX_CHECKS = 100
MAX_MUTATIONS = 1000
MAX_TOTAL_MUTATION_SIZE_BYTES = 819_200
MAX_TOTAL_KEY_SIZE_BYTES = 81_920
MAX_WATCHED_KEYS = 10
MAX_QUEUE_DELAY_MS = 30 * 24 * 60 * 60 * 1000
MAX_BACKOFF_INTERVALS = 5
MAX_WIRE_BACKOFF_INTERVALS = 10
"""denokv's limit on an enqueue's intervals over KV Connect (the local API allows 5)."""
MAX_WIRE_UNDELIVERED_KEYS = 10
"""denokv's limit on an enqueue's ``keys_if_undelivered`` over KV Connect."""
MAX_BACKOFF_MS = 3_600_000
MAX_BIGINT_KEY_BYTES = 255
MAX_SAFE_INTEGER = 2**53 - 1
DEFAULT_BACKOFF_SCHEDULE = (100, 1000, 5000, 30000, 60000)
# A date beyond chrono's range (year 262143) makes Deno fail "expireIn is too large".
MAX_EXPIRE_AT_MS = 8_210_266_876_799_999
