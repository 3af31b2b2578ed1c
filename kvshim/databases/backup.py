"""kvshim's backup format: newline-delimited JSON (one UTF-8 JSON object per line).

Line 1, the header::

    {"format": "kvshim-backup", "version": 1, "database": "shop-production",
     "timeline": "production", "exact": true, "created_ms": 1767225600000}

``exact`` says whether the source kept versionstamps and expiry (``false`` when the backend
could not report expiry). Then one line per entry, in key order::

    {"key": "<base64 key bytes>", "value": "<base64 value bytes>", "encoding": 1,
     "versionstamp": "<20 hex digits>", "expire_at_ms": 1767225900000}

``key`` is the encoded key (FoundationDB tuple order, as ``kvshim.keys.encode_key``), ``value``
the stored bytes and ``encoding`` how to read them (1 V8, 2 little-endian u64, 3 raw bytes);
``expire_at_ms`` is present only for entries with an expiry. The last line is the trailer::

    {"end": true, "entries": 2}

A file without its trailer, or whose entry count does not match, is truncated and is refused.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

from kvshim.errors import BackupFormatError
from kvshim.model import VERSIONSTAMP_SIZE, EncodedValue, StoredEntry, ValueEncoding

FORMAT = "kvshim-backup"
VERSION = 1


@dataclass(frozen=True, slots=True)
class BackupHeader:
    """The first line of a backup."""

    database: str
    timeline: str
    exact: bool
    created_ms: int


def header_line(header: BackupHeader) -> str:
    """The header as a line."""
    body = {"format": FORMAT, "version": VERSION, "database": header.database}
    body |= {"timeline": header.timeline, "exact": header.exact, "created_ms": header.created_ms}
    return json.dumps(body) + "\n"


def entry_line(entry: StoredEntry) -> str:
    """One entry as a line."""
    body: dict[str, Any] = {
        "key": base64.b64encode(entry.key).decode(),
        "value": base64.b64encode(entry.value.data).decode(),
        "encoding": int(entry.value.encoding),
        "versionstamp": entry.versionstamp.hex(),
    }
    if entry.expire_at_ms is not None:
        body["expire_at_ms"] = entry.expire_at_ms
    return json.dumps(body) + "\n"


def trailer_line(count: int) -> str:
    """The last line."""
    return json.dumps({"end": True, "entries": count}) + "\n"


def read_header(stream: IO[str]) -> BackupHeader:
    """Read and check the header line."""
    body = _json(stream.readline(), 1)
    if body.get("format") != FORMAT:
        raise BackupFormatError("Not a kvshim backup: the first line has no 'kvshim-backup' header")
    if body.get("version") != VERSION:
        raise BackupFormatError(f"Unsupported kvshim backup version {body.get('version')!r}")
    try:
        return BackupHeader(
            str(body["database"]),
            str(body["timeline"]),
            bool(body["exact"]),
            int(body["created_ms"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise BackupFormatError(f"Invalid backup header: {exc}") from exc


def read_entries(stream: IO[str]) -> Iterator[StoredEntry]:
    """The entries after the header, checking every line and the trailer as it goes."""
    count = 0
    for number, line in enumerate(stream, start=2):
        body = _json(line, number)
        if body.get("end") is True:
            if body.get("entries") != count:
                raise BackupFormatError(
                    f"Backup trailer says {body.get('entries')} entries, the file has {count}"
                )
            if stream.read(1):
                raise BackupFormatError(f"Unexpected data after the trailer (line {number})")
            return
        yield _entry(body, number)
        count += 1
    raise BackupFormatError(f"The backup is truncated: no trailer after {count} entries")


def _entry(body: dict[str, Any], number: int) -> StoredEntry:
    try:
        key = base64.b64decode(body["key"], validate=True)
        data = base64.b64decode(body["value"], validate=True)
        encoding = ValueEncoding(body["encoding"])
        versionstamp = bytes.fromhex(body["versionstamp"])
        expire = body.get("expire_at_ms")
        if len(versionstamp) != VERSIONSTAMP_SIZE or not key:
            raise ValueError("bad key or versionstamp")
        if expire is not None and (not isinstance(expire, int) or isinstance(expire, bool)):
            raise ValueError("expire_at_ms must be an integer")
    except (KeyError, TypeError, ValueError, binascii.Error) as exc:
        raise BackupFormatError(f"Invalid backup entry on line {number}: {exc}") from exc
    return StoredEntry(key, EncodedValue(data, encoding), versionstamp, expire)


def _json(line: str, number: int) -> dict[str, Any]:
    if not line:
        raise BackupFormatError(f"The backup is truncated at line {number}")
    try:
        body = json.loads(line)
    except json.JSONDecodeError as exc:
        raise BackupFormatError(f"Line {number} of the backup is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise BackupFormatError(f"Line {number} of the backup is not a JSON object")
    return body
