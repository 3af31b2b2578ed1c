"""The backend contract's data: encoded keys and values, reads, atomic writes, queue messages.

Everything here is already encoded: keys are the bytes of ``keys.encode_key`` (so byte order is
key order), values are ``(data, encoding)`` pairs from ``values.encode_value``, and versionstamps
are 10 raw bytes. Backends receive these types only after every Deno limit has been checked, and
they may trust them.

They are read-only by convention, not ``frozen``: several are built per operation, and a frozen
dataclass takes about 3x as long to build (``object.__setattr__`` per field). Never mutate one:
the memory backend hands the same ``RawEntry`` to every reader.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

Consistency = Literal["strong", "eventual"]
VERSIONSTAMP_SIZE = 10


class ValueEncoding(enum.IntEnum):
    """How a stored value's bytes are to be read (Deno's encoding codes)."""

    V8 = 1
    """V8 structured-clone serialization."""
    LE64 = 2
    """An unsigned 64-bit integer (``KvU64``), 8 bytes little-endian."""
    BYTES = 3
    """Raw bytes (a top-level ``Uint8Array`` / Python ``bytes``)."""


@dataclass(slots=True)
class EncodedValue:
    """A value as stored: its bytes and the ``ValueEncoding`` code that says how to read them."""

    data: bytes
    encoding: int


@dataclass(slots=True)
class ReadRange:
    """Entries with ``start <= key < end``: at most ``limit``, from the end if ``reverse``."""

    start: bytes
    end: bytes
    limit: int
    reverse: bool = False


@dataclass(slots=True)
class RawEntry:
    """One stored entry: encoded key and value, and the versionstamp of the write that made it."""

    key: bytes
    value: EncodedValue
    versionstamp: bytes


@dataclass(slots=True)
class StoredEntry:
    """An entry exactly as stored, expiry included: what backup and restore carry."""

    key: bytes
    value: EncodedValue
    versionstamp: bytes
    expire_at_ms: int | None = None


class MutationKind(enum.Enum):
    """What a mutation does to its key."""

    SET = "set"
    """Store ``value`` (with ``expire_at_ms`` if given), replacing any value and TTL."""
    DELETE = "delete"
    """Remove the key; deleting a missing key is not an error."""
    SUM = "sum"
    """Add a LE64 operand to a LE64 value, wrapping modulo 2**64; a missing key takes the
    operand. Any other stored encoding fails the whole write with
    ``Failed to perform 'sum' mutation on a non-U64 value in the database``. Clears the TTL."""
    MIN = "min"
    """Like SUM, but keeps the smaller of the two."""
    MAX = "max"
    """Like SUM, but keeps the larger of the two."""
    SET_VERSIONSTAMPED_KEY = "set_versionstamped_key"
    """SET on ``key`` + the commit's versionstamp as a string part (``02`` + 20 hex + ``00``)."""


@dataclass(slots=True)
class Mutation:
    """One change to one key; mutations of a write apply in order, later ones seeing earlier."""

    key: bytes
    kind: MutationKind
    value: EncodedValue | None = None
    expire_at_ms: int | None = None


@dataclass(slots=True)
class Check:
    """Passes iff the key's current versionstamp equals ``versionstamp``; ``None`` means the key
    must not exist. An expired key does not exist."""

    key: bytes
    versionstamp: bytes | None


@dataclass(slots=True)
class Enqueue:
    """A queue message committed with the write.

    ``payload`` is V8-encoded. It becomes deliverable at ``deadline_ms`` (epoch milliseconds).
    When delivery fails, it is retried after each interval of ``backoff_schedule`` in turn; after
    the last failure, each key of ``keys_if_undelivered`` is set to the payload (V8, no TTL) in one
    write, or the message is dropped when there are none.
    """

    payload: bytes
    deadline_ms: int
    keys_if_undelivered: tuple[bytes, ...] = ()
    backoff_schedule: tuple[int, ...] = ()


@dataclass(slots=True)
class AtomicWrite:
    """Checks, then mutations and enqueues, applied together or not at all."""

    checks: Sequence[Check] = field(default_factory=tuple)
    mutations: Sequence[Mutation] = field(default_factory=tuple)
    enqueues: Sequence[Enqueue] = field(default_factory=tuple)


def versionstamp_hex(versionstamp: bytes) -> str:
    """The 20-lowercase-hex text form of a 10-byte versionstamp."""
    return versionstamp.hex()


def versionstamp_from_version(version: int) -> bytes:
    """Deno's local versionstamp: the commit version as 8 bytes big-endian, then ``0000``."""
    return version.to_bytes(8, "big") + b"\x00\x00"
