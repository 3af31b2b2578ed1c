"""KV Connect protobuf messages <-> ``kvshim.model``, checking every Deno limit on the way in.

The server decodes requests with the ``*_from_wire`` functions, which raise ``ProtocolError``
(an HTTP 400) for anything malformed or over a limit; the remote backend encodes with the
``*_to_wire`` functions and decodes replies with ``*_output_from_wire``. Keys and values stay
opaque bytes: nothing here parses V8.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TypeVar

from google.protobuf.message import DecodeError, Message

from kvshim import limits
from kvshim.atomic import check_sizes
from kvshim.errors import KvTypeError, ProtocolError
from kvshim.model import (
    VERSIONSTAMP_SIZE,
    AtomicWrite,
    Check,
    EncodedValue,
    Enqueue,
    Mutation,
    MutationKind,
    RawEntry,
    ReadRange,
    ValueEncoding,
)
from kvshim.protocol import datapath_pb2 as pb

_KINDS = {
    pb.M_SET: MutationKind.SET,
    pb.M_DELETE: MutationKind.DELETE,
    pb.M_SUM: MutationKind.SUM,
    pb.M_MIN: MutationKind.MIN,
    pb.M_MAX: MutationKind.MAX,
    pb.M_SET_SUFFIX_VERSIONSTAMPED_KEY: MutationKind.SET_VERSIONSTAMPED_KEY,
}
_KIND_CODES = {kind: code for code, kind in _KINDS.items()}
_U64_KINDS = (MutationKind.SUM, MutationKind.MIN, MutationKind.MAX)
_ENCODINGS = frozenset(int(e) for e in ValueEncoding)


M = TypeVar("M", bound=Message)


def _parse(message: M, body: bytes) -> M:
    try:
        message.ParseFromString(body)
    except DecodeError as error:
        raise ProtocolError(f"Request protobuf is invalid: {error}") from None
    return message


# --- server side: requests in, outputs out -------------------------------------------------


def snapshot_read_from_wire(body: bytes) -> list[ReadRange]:
    """The ranges of a ``SnapshotRead`` request, checked against Deno's read limits."""
    request = _parse(pb.SnapshotRead(), body)
    if len(request.ranges) > limits.MAX_READ_RANGES:
        raise ProtocolError(f"Too many ranges (max {limits.MAX_READ_RANGES})")
    ranges: list[ReadRange] = []
    for r in request.ranges:
        if r.limit < 1:
            raise ProtocolError("Invalid limit: a read range's limit must be at least 1")
        _read_key(r.start)
        _read_key(r.end)
        ranges.append(ReadRange(r.start, r.end, r.limit, r.reverse))
    if sum(r.limit for r in ranges) > limits.MAX_READ_ENTRIES:
        raise ProtocolError(f"Too many entries (max {limits.MAX_READ_ENTRIES})")
    return ranges


def snapshot_read_output_to_wire(results: Sequence[Sequence[RawEntry]]) -> bytes:
    """A successful ``SnapshotReadOutput``: one (possibly empty) range output per range."""
    output = pb.SnapshotReadOutput(
        ranges=[pb.ReadRangeOutput(values=[_entry_to_pb(e) for e in r]) for r in results],
        read_is_strongly_consistent=True,
        status=pb.SR_SUCCESS,
    )
    return output.SerializeToString()


def atomic_write_from_wire(body: bytes, now_ms: int | None = None) -> AtomicWrite:
    """The write of an ``AtomicWrite`` request, checked against Deno's write limits."""
    request = _parse(pb.AtomicWrite(), body)
    if len(request.checks) > limits.MAX_CHECKS:
        raise ProtocolError(f"Too many checks (max {limits.MAX_CHECKS})")
    if len(request.mutations) + len(request.enqueues) > limits.MAX_MUTATIONS:
        raise ProtocolError(f"Too many mutations (max {limits.MAX_MUTATIONS})")
    now = int(time.time() * 1000) if now_ms is None else now_ms
    write = AtomicWrite(
        tuple(_check_from_pb(c) for c in request.checks),
        tuple(_mutation_from_pb(m) for m in request.mutations),
        tuple(_enqueue_from_pb(e, now) for e in request.enqueues),
    )
    try:
        check_sizes(write)
    except KvTypeError as error:
        raise ProtocolError(str(error)) from None
    return write


def atomic_write_output_to_wire(versionstamp: bytes | None) -> bytes:
    """``AW_SUCCESS`` with the commit's versionstamp, or ``AW_CHECK_FAILURE`` for ``None``."""
    if versionstamp is None:
        return pb.AtomicWriteOutput(status=pb.AW_CHECK_FAILURE).SerializeToString()
    output = pb.AtomicWriteOutput(status=pb.AW_SUCCESS, versionstamp=versionstamp)
    return output.SerializeToString()


def watch_from_wire(body: bytes) -> list[bytes]:
    """The keys of a ``Watch`` request (at most 10)."""
    request = _parse(pb.Watch(), body)
    if len(request.keys) > limits.MAX_WATCHED_KEYS:
        raise ProtocolError(f"Too many keys (max {limits.MAX_WATCHED_KEYS})")
    return [_read_key(k.key) for k in request.keys]


def watch_output_to_wire(entries: Sequence[RawEntry | None]) -> bytes:
    """One watch frame (``u32le`` length + ``WatchOutput``) with every key as changed.

    Deno shows a key sent with ``changed=false`` as deleted, so every frame carries the full
    state (kv-connect.md §3.3).
    """
    output = pb.WatchOutput(
        status=pb.SR_SUCCESS,
        keys=[
            pb.WatchKeyOutput(changed=True, entry_if_changed=_entry_to_pb(e))
            if e is not None
            else pb.WatchKeyOutput(changed=True)
            for e in entries
        ],
    )
    data = output.SerializeToString()
    return len(data).to_bytes(4, "little") + data


def _read_key(key: bytes) -> bytes:
    if len(key) > limits.MAX_READ_KEY_SIZE_BYTES:
        raise ProtocolError(f"Key too large for read (max {limits.MAX_READ_KEY_SIZE_BYTES} bytes)")
    return key


def _write_key(key: bytes) -> bytes:
    if not key:
        raise ProtocolError("key cannot be empty")
    if len(key) > limits.MAX_WRITE_KEY_SIZE_BYTES:
        raise ProtocolError(
            f"Key too large for write (max {limits.MAX_WRITE_KEY_SIZE_BYTES} bytes)"
        )
    return key


def _versionstamp(raw: bytes) -> bytes | None:
    if raw == b"":
        return None
    if len(raw) != VERSIONSTAMP_SIZE:
        raise ProtocolError("Invalid versionstamp.")
    return raw


def _check_from_pb(check: pb.Check) -> Check:
    return Check(_write_key(check.key), _versionstamp(check.versionstamp))


def _value(value: pb.KvValue) -> EncodedValue:
    if value.encoding not in _ENCODINGS:
        raise ProtocolError(f"Unknown value encoding {value.encoding}")
    if len(value.data) > limits.MAX_VALUE_SIZE_BYTES:
        raise ProtocolError(f"Value too large (max {limits.MAX_VALUE_SIZE_BYTES} bytes)")
    if value.encoding == pb.VE_LE64 and len(value.data) != 8:
        # Stored, it would crash Deno's client when read (it copies exactly 8 bytes).
        raise ProtocolError("Invalid value: an LE64 value is exactly 8 bytes")
    return EncodedValue(value.data, int(value.encoding))


def _mutation_from_pb(m: pb.Mutation) -> Mutation:
    kind = _KINDS.get(m.mutation_type)
    if kind is None:
        raise ProtocolError(f"Invalid mutation kind {m.mutation_type}")
    key = _write_key(m.key)
    if kind is MutationKind.DELETE:
        return Mutation(key, kind)
    if not m.HasField("value"):
        raise ProtocolError(f"Invalid mutation: '{kind.value}' needs a value")
    value = _value(m.value)
    if kind in _U64_KINDS:
        if value.encoding != ValueEncoding.LE64 or len(value.data) != 8:
            # V8 number sums (sum_min/sum_max/sum_clamp, sent by PyPI denokv) are not supported.
            raise ProtocolError(f"Invalid mutation: '{kind.value}' needs an 8-byte U64 operand")
        return Mutation(key, kind, value)
    if m.expire_at_ms > limits.MAX_EXPIRE_AT_MS:
        raise ProtocolError("Invalid expire_at: too far in the future")
    expire_at = m.expire_at_ms if m.expire_at_ms > 0 else None
    return Mutation(key, kind, value, expire_at)


def _enqueue_from_pb(e: pb.Enqueue, now_ms: int) -> Enqueue:
    if len(e.payload) > limits.MAX_VALUE_SIZE_BYTES:
        raise ProtocolError(f"enqueue payload too large (max {limits.MAX_VALUE_SIZE_BYTES} bytes)")
    if e.deadline_ms > now_ms + limits.MAX_QUEUE_DELAY_MS + 60_000:
        raise ProtocolError("Invalid enqueue deadline: more than 30 days in the future")
    # denokv's limits on the wire (kv-connect.md §7.3), not the local API's 5 intervals.
    if len(e.backoff_schedule) > limits.MAX_WIRE_BACKOFF_INTERVALS:
        raise ProtocolError(
            f"Invalid backoffSchedule, max {limits.MAX_WIRE_BACKOFF_INTERVALS} intervals allowed"
        )
    if len(e.keys_if_undelivered) > limits.MAX_WIRE_UNDELIVERED_KEYS:
        raise ProtocolError(
            f"Too many keys_if_undelivered (max {limits.MAX_WIRE_UNDELIVERED_KEYS})"
        )
    for index, interval in enumerate(e.backoff_schedule):
        if interval > limits.MAX_BACKOFF_MS:
            raise ProtocolError(f"Invalid backoffSchedule, interval at index {index} is invalid")
    return Enqueue(
        e.payload,
        e.deadline_ms,
        tuple(_read_key(k) for k in e.keys_if_undelivered),
        tuple(e.backoff_schedule),
    )


def _entry_to_pb(entry: RawEntry) -> pb.KvEntry:
    return pb.KvEntry(
        key=entry.key,
        value=entry.value.data,
        encoding=entry.value.encoding,  # type: ignore[arg-type]
        versionstamp=entry.versionstamp,
    )


# --- client side: requests out, outputs in -------------------------------------------------


def snapshot_read_to_wire(ranges: Sequence[ReadRange]) -> bytes:
    """A ``SnapshotRead`` request body."""
    request = pb.SnapshotRead(
        ranges=[
            pb.ReadRange(start=r.start, end=r.end, limit=r.limit, reverse=r.reverse) for r in ranges
        ]
    )
    return request.SerializeToString()


def snapshot_read_output_from_wire(
    body: bytes, expected: int, *, version: int = 3, strong: bool = True
) -> list[list[RawEntry]]:
    """The entries of a ``SnapshotReadOutput`` of protocol ``version`` (3 has ``status``, 2
    only ``read_disabled``); ``ProtocolError`` unless it is a success, and for a ``strong``
    read unless the server says it is strongly consistent (as Deno's client checks)."""
    output = _parse(pb.SnapshotReadOutput(), body)
    if output.read_disabled or output.status == pb.SR_READ_DISABLED:
        raise ProtocolError("Reads are disabled for this database")
    if version >= 3 and output.status != pb.SR_SUCCESS:
        raise ProtocolError(f"Unspecified read error (code={output.status})")
    if strong and not output.read_is_strongly_consistent:
        raise ProtocolError("Strong consistency reads are not available for this database")
    if len(output.ranges) != expected:
        raise ProtocolError(
            f"Expected {expected} ranges in the read output, got {len(output.ranges)}"
        )
    return [[_entry_from_pb(e) for e in r.values] for r in output.ranges]


def atomic_write_to_wire(write: AtomicWrite) -> bytes:
    """An ``AtomicWrite`` request body."""
    request = pb.AtomicWrite(
        checks=[pb.Check(key=c.key, versionstamp=c.versionstamp or b"") for c in write.checks],
        mutations=[_mutation_to_pb(m) for m in write.mutations],
        enqueues=[
            pb.Enqueue(
                payload=e.payload,
                deadline_ms=e.deadline_ms,
                keys_if_undelivered=list(e.keys_if_undelivered),
                backoff_schedule=list(e.backoff_schedule),
            )
            for e in write.enqueues
        ],
    )
    return request.SerializeToString()


def atomic_write_output_from_wire(body: bytes) -> bytes | None:
    """The commit's versionstamp, ``None`` for a check failure; ``ProtocolError`` otherwise."""
    output = _parse(pb.AtomicWriteOutput(), body)
    if output.status == pb.AW_SUCCESS:
        if len(output.versionstamp) != VERSIONSTAMP_SIZE:
            raise ProtocolError("Invalid versionstamp in the write output")
        return output.versionstamp
    if output.status == pb.AW_CHECK_FAILURE:
        return None
    if output.status == pb.AW_WRITE_DISABLED:
        raise ProtocolError("Writes are disabled for this database")
    raise ProtocolError(f"Unspecified write error (code={output.status})")


def watch_to_wire(keys: Sequence[bytes]) -> bytes:
    """A ``Watch`` request body."""
    return pb.Watch(keys=[pb.WatchKey(key=k) for k in keys]).SerializeToString()


def watch_output_from_wire(frame: bytes, count: int) -> list[tuple[bool, RawEntry | None]]:
    """``(changed, entry)`` per key of one watch frame (without its length prefix)."""
    output = _parse(pb.WatchOutput(), frame)
    if output.status != pb.SR_SUCCESS:
        raise ProtocolError(f"Unspecified watch error (code={output.status})")
    if len(output.keys) != count:
        raise ProtocolError(f"Expected {count} keys in the watch output, got {len(output.keys)}")
    return [
        (k.changed, _entry_from_pb(k.entry_if_changed) if k.HasField("entry_if_changed") else None)
        for k in output.keys
    ]


def _mutation_to_pb(m: Mutation) -> pb.Mutation:
    value = None
    if m.value is not None:
        value = pb.KvValue(data=m.value.data, encoding=m.value.encoding)  # type: ignore[arg-type]
    elif m.kind is MutationKind.DELETE:
        value = pb.KvValue(data=b"", encoding=pb.VE_BYTES)
    return pb.Mutation(
        key=m.key,
        value=value,
        mutation_type=_KIND_CODES[m.kind],
        expire_at_ms=m.expire_at_ms or 0,
    )


def _entry_from_pb(entry: pb.KvEntry) -> RawEntry:
    if len(entry.versionstamp) != VERSIONSTAMP_SIZE:
        raise ProtocolError("Invalid versionstamp in a read entry")
    if entry.encoding not in _ENCODINGS:
        raise ProtocolError(f"Unknown encoding {entry.encoding}")
    return RawEntry(entry.key, EncodedValue(entry.value, int(entry.encoding)), entry.versionstamp)
