"""Raw entry access over any backend: read and write stored entries as they are, for backup,
restore and copy.

A backend implementing ``RawAccess`` (``base.py``) is read and written exactly: versionstamps and
expiry are kept. Any other backend goes through the five-method contract: reads cannot see
expiry (``expire_at_ms`` is ``None``) and writes get new versionstamps, applied one original
versionstamp at a time in ascending order, so the order of versionstamps is kept.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from itertools import groupby

from kvshim.backends.base import Backend, RawAccess
from kvshim.limits import MAX_MUTATIONS, MAX_TOTAL_MUTATION_SIZE_BYTES
from kvshim.model import AtomicWrite, Mutation, MutationKind, ReadRange, StoredEntry

ALL_START = b""
ALL_END = b"\xff"
"""Every encoded key starts with a type code below ``0xff``, so ``[ALL_START, ALL_END)`` is
the whole database."""
BATCH_SIZE = 500
DELETE_BATCH_SIZE = 200
"""Keys are at most 2 KiB, so 200 deletions stay within Deno's 800 KiB write size."""


def is_exact(backend: Backend) -> bool:
    """Whether ``backend`` can be read and written with versionstamps and expiry kept."""
    return isinstance(backend, RawAccess)


async def iter_entries(
    backend: Backend, batch_size: int = BATCH_SIZE
) -> AsyncIterator[StoredEntry]:
    """Every live entry of ``backend`` in key order, read in batches."""
    start = ALL_START
    while True:
        batch = await _read_batch(backend, start, batch_size)
        for entry in batch:
            yield entry
        if len(batch) < batch_size:
            return
        start = batch[-1].key + b"\x00"


async def _read_batch(backend: Backend, start: bytes, limit: int) -> list[StoredEntry]:
    if isinstance(backend, RawAccess):
        return await backend.export_entries(start, ALL_END, limit)
    (found,) = await backend.snapshot_read([ReadRange(start, ALL_END, limit)])
    return [StoredEntry(e.key, e.value, e.versionstamp, None) for e in found]


async def write_entries(backend: Backend, entries: Sequence[StoredEntry]) -> None:
    """Store ``entries``: exactly on a ``RawAccess`` backend, else one atomic write per original
    versionstamp, in ascending versionstamp order."""
    if isinstance(backend, RawAccess):
        await backend.import_entries(entries)
        return
    ordered = sorted(entries, key=lambda e: e.versionstamp)
    for _, group in groupby(ordered, key=lambda e: e.versionstamp):
        for chunk in _chunks(list(group)):
            mutations = [Mutation(e.key, MutationKind.SET, e.value, e.expire_at_ms) for e in chunk]
            await backend.atomic_write(AtomicWrite(mutations=mutations))


def _chunks(entries: list[StoredEntry]) -> list[list[StoredEntry]]:
    """Split into writes within Deno's mutation count and size limits."""
    chunks: list[list[StoredEntry]] = [[]]
    size = 0
    for entry in entries:
        entry_size = len(entry.key) + len(entry.value.data)
        full = len(chunks[-1]) >= MAX_MUTATIONS or size + entry_size > MAX_TOTAL_MUTATION_SIZE_BYTES
        if chunks[-1] and full:
            chunks.append([])
            size = 0
        chunks[-1].append(entry)
        size += entry_size
    return [c for c in chunks if c]


async def count_entries(backend: Backend) -> tuple[int, int]:
    """The number of live entries and their total key and value bytes."""
    count = size = 0
    async for entry in iter_entries(backend):
        count += 1
        size += len(entry.key) + len(entry.value.data)
    return count, size


async def delete_all(backend: Backend) -> int:
    """Delete every entry; the number deleted."""
    deleted = 0
    while True:
        (found,) = await backend.snapshot_read([ReadRange(ALL_START, ALL_END, DELETE_BATCH_SIZE)])
        if not found:
            return deleted
        mutations = [Mutation(e.key, MutationKind.DELETE) for e in found]
        await backend.atomic_write(AtomicWrite(mutations=mutations))
        deleted += len(found)
