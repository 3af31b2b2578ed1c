"""Per-database access tokens, stored hashed in a small JSON registry file.

A token grants access to one database only. Only its SHA-256 is stored; the token itself is
shown once, when it is created. The server re-reads the file when it changes, so tokens created
or revoked by another process take effect at once.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import tempfile
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

from kvshim.errors import KvValueError
from kvshim.server.names import check_name

REGISTRY_FILE = "tokens.json"
TOKEN_PREFIX = "kvs_"


class TokenChecker(Protocol):
    """A source of per-database tokens."""

    def grants(self, token: str, database: str) -> bool:
        """Whether ``token`` grants access to the database called ``database``."""
        ...


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """A stored token: its public id, its database, when it was made, and its hash."""

    id: str
    database: str
    created_at: float
    sha256: str


def hash_token(token: str) -> str:
    """The hex SHA-256 of a token, as stored."""
    return hashlib.sha256(token.encode()).hexdigest()


class TokenRegistry:
    """The per-database tokens of one data folder (``<dir>/tokens.json``)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._cache: tuple[float, int, list[TokenInfo]] | None = None

    def _load(self) -> list[TokenInfo]:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return []
        if self._cache and self._cache[:2] == (stat.st_mtime, stat.st_size):
            return self._cache[2]
        data = json.loads(self.path.read_text())
        tokens = [TokenInfo(**item) for item in data.get("tokens", [])]
        self._cache = (stat.st_mtime, stat.st_size, tokens)
        return tokens

    def _save(self, tokens: list[TokenInfo]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        body = json.dumps({"tokens": [asdict(t) for t in tokens]}, indent=2)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".tokens-")
        with os.fdopen(fd, "w") as f:
            f.write(body)
        os.chmod(tmp, 0o600)
        os.replace(tmp, self.path)
        self._cache = None

    def create(self, database: str) -> tuple[TokenInfo, str]:
        """A new random token for ``database``: its stored info and the token (shown once)."""
        check_name(database)
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        info = TokenInfo(secrets.token_hex(6), database, time.time(), hash_token(token))
        self._save([*self._load(), info])
        return info, token

    def list(self, database: str | None = None) -> list[TokenInfo]:
        """Every stored token, or those of ``database``."""
        return [t for t in self._load() if database is None or t.database == database]

    def revoke(self, token_id: str) -> TokenInfo:
        """Delete the token with id ``token_id``; ``KvValueError`` if there is none."""
        tokens = self._load()
        kept = [t for t in tokens if t.id != token_id]
        if len(kept) == len(tokens):
            raise KvValueError(f"No token with id {token_id!r}")
        self._save(kept)
        return next(t for t in tokens if t.id == token_id)

    def grants(self, token: str, database: str) -> bool:
        """Whether ``token`` is a stored token of ``database``."""
        digest = hash_token(token)
        return any(
            t.database == database and hmac.compare_digest(t.sha256, digest) for t in self._load()
        )


class DatabaseRegistryTokens:
    """The tokens made by ``kvshim db token create`` (the registry in the data home of
    ``environ``), for databases named as ``kvshim db`` names them (``<app>-<timeline>``)."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = dict(environ)

    def grants(self, token: str, database: str) -> bool:
        from kvshim.databases.api import verify_token

        return verify_token(database, token, self._environ)
