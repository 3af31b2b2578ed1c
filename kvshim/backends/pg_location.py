"""A PostgreSQL database holding many named KV databases, one schema each (no driver needed).

``kvshim db provision NAME --location postgresql://...`` and ``kvshim serve --postgres
postgresql://...`` both keep each of their KV databases in its own schema of one PostgreSQL
database. The schema of the KV database called ``name`` is ``schema_for(name)``:

- ``kv_`` + ``name`` with each ``-`` turned into ``_``, when ``name`` is made only of lowercase
  ASCII letters, digits and ``-`` and fits (at most 60 bytes):
  ``shop-production`` → ``kv_shop_production``, ``shop--fix`` → ``kv_shop__fix``;
- otherwise (the name holds ``_``, ``.``, uppercase letters…, or is too long) ``kv_`` + the name
  lowercased, every character but ASCII letters and digits turned into ``_``, cut to 51 bytes,
  + ``_`` + the first 8 hex digits of the SHA-256 of the original name:
  ``my_app-production`` → ``kv_my_app_production_<8 hex>``.

So a schema is always a plain lowercase identifier of at most 63 bytes (no quoting needed in
``psql``), never ``public``, ``pg_*`` or kvshim's default ``kvshim``, and two names never share
one: names of the first kind map one to one (they hold no ``_``), and a name of the second kind
carries the hash of its original (the same 32-bit-hash argument as database names themselves,
see ``kvshim.databases.naming``).
"""

from __future__ import annotations

import hashlib
import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from kvshim.errors import KvValueError

SCHEMES = ("postgres://", "postgresql://")
PREFIX = "kv_"
MAX_SCHEMA_BYTES = 63
_PLAIN = re.compile(r"^[a-z0-9-]+$")
_HASH_DIGITS = 8


def is_postgres_url(url: str) -> bool:
    """Whether ``url`` is a ``postgres://`` or ``postgresql://`` URL."""
    return url.lower().startswith(SCHEMES)


def schema_for(name: str) -> str:
    """The schema holding the KV database called ``name`` (see the module docstring)."""
    if not name:
        raise KvValueError("A database name cannot be empty")
    if _PLAIN.match(name) and len(PREFIX) + len(name) <= MAX_SCHEMA_BYTES:
        return PREFIX + name.replace("-", "_")
    cleaned = re.sub(r"[^a-z0-9]", "_", name.lower())
    digest = hashlib.sha256(name.encode()).hexdigest()[:_HASH_DIGITS]
    head = cleaned[: MAX_SCHEMA_BYTES - len(PREFIX) - _HASH_DIGITS - 1]
    return f"{PREFIX}{head}_{digest}"


def check_location(location: str) -> str:
    """``location`` if it can hold named KV databases; ``KvValueError`` if it names a schema
    itself (each database's schema is derived from its name)."""
    parts = urlsplit(location)
    if any(key == "schema" for key, _ in parse_qsl(parts.query, keep_blank_values=True)):
        raise KvValueError(
            f"Remove '?schema=' from the PostgreSQL location {redact(location)!r}: each "
            "database gets its own schema, named after it"
        )
    return location


def database_url(location: str, name: str) -> str:
    """The URL of the KV database ``name`` in ``location``: ``location`` plus
    ``schema=<schema_for(name)>`` (its other query parameters kept)."""
    parts = urlsplit(location)
    query = parse_qsl(parts.query, keep_blank_values=True)
    query = [(k, v) for k, v in query if k != "schema"] + [("schema", schema_for(name))]
    return urlunsplit(parts._replace(query=urlencode(query)))


def redact(url: str) -> str:
    """``url`` with any password replaced by ``***``."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))
