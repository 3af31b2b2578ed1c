"""The ``postgres://`` URL: a libpq/asyncpg DSN plus kvshim's own query parameters."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from kvshim.errors import KvValueError

DEFAULT_SCHEMA = "kvshim"
DEFAULT_LEASE_MS = 5000
DEFAULT_POOL_SIZE = 10
MAX_IDENTIFIER_BYTES = 63
"""PostgreSQL's limit (NAMEDATALEN - 1) on identifiers and LISTEN/NOTIFY channel names."""

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


@dataclass(frozen=True, slots=True)
class PgConfig:
    """Where a KV database lives in PostgreSQL and how the backend talks to it.

    ``dsn`` is passed to asyncpg unchanged (kvshim's own parameters removed); ``schema`` holds
    the database's tables, so several KV databases share one PostgreSQL database;
    ``lease_ms`` is how long a dequeued message stays invisible to other listeners without a
    keep-alive; ``pool_size`` caps the connections of the pool.
    """

    dsn: str
    schema: str = DEFAULT_SCHEMA
    lease_ms: int = DEFAULT_LEASE_MS
    pool_size: int = DEFAULT_POOL_SIZE

    @property
    def channel(self) -> str:
        """The LISTEN/NOTIFY channel of this KV database: ``kvshim.<schema>``, or for a schema
        too long for that (channel names are at most 63 bytes, like identifiers) its first 47
        bytes, ``.`` and 8 hex digits of the SHA-256 of the whole schema name."""
        channel = f"kvshim.{self.schema}"
        if len(channel) <= MAX_IDENTIFIER_BYTES:
            return channel
        digest = hashlib.sha256(self.schema.encode()).hexdigest()[:8]
        return f"kvshim.{self.schema[:47]}.{digest}"

    @property
    def redacted(self) -> str:
        """The DSN with any password replaced by ``***``, for error messages."""
        parts = urlsplit(self.dsn)
        if parts.password is None:
            return self.dsn
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
        return urlunsplit(parts._replace(netloc=netloc))


def parse_url(url: str) -> PgConfig:
    """Split ``url`` into the asyncpg DSN and kvshim's parameters.

    kvshim's parameters: ``schema`` (default ``kvshim``, a plain SQL identifier),
    ``lease_ms`` (queue lease, default 5000) and ``pool_size`` (default 10). Every other part
    of the URL goes to the driver as is (``host=/socket/dir``, ``sslmode``…).
    """
    parts = urlsplit(url)
    ours: dict[str, str] = {}
    rest: list[tuple[str, str]] = []
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name in _OURS:
            ours[name] = value
        else:
            rest.append((name, value))
    schema = ours.get("schema", DEFAULT_SCHEMA)
    if not _IDENTIFIER.match(schema):
        raise KvValueError(
            f"Invalid PostgreSQL schema name {schema!r}: use letters, digits and '_' "
            "(at most 63, not starting with a digit)"
        )
    return PgConfig(
        dsn=urlunsplit(parts._replace(query=urlencode(rest))),
        schema=schema,
        lease_ms=_positive(ours, "lease_ms", DEFAULT_LEASE_MS),
        pool_size=_positive(ours, "pool_size", DEFAULT_POOL_SIZE),
    )


_OURS = frozenset({"schema", "lease_ms", "pool_size"})


def _positive(params: dict[str, str], name: str, default: int) -> int:
    text = params.get(name)
    if text is None:
        return default
    if not text.isdigit() or int(text) <= 0:
        raise KvValueError(f"Invalid '{name}' in PostgreSQL URL: expected a positive integer")
    return int(text)
