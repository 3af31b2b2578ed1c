"""Per-database access tokens: random, shown once, stored as SHA-256 hashes."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable

TOKEN_PREFIX = "kvshim_"


def new_token() -> tuple[str, str]:
    """A fresh token id and token (256 bits from ``secrets``)."""
    return secrets.token_hex(6), TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """The stored form of a token: its hex SHA-256."""
    return hashlib.sha256(token.encode()).hexdigest()


def matches(token: str, hashes: Iterable[str]) -> bool:
    """Whether ``token`` hashes to one of ``hashes`` (compared in constant time)."""
    digest = hash_token(token)
    found = False
    for stored in hashes:
        found |= hmac.compare_digest(digest, stored)
    return found
