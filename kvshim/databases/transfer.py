"""Moving entries between a database and a backup file, or between two databases."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path
from typing import IO

from kvshim.backends import Backend
from kvshim.backends.raw import (
    ALL_END,
    ALL_START,
    BATCH_SIZE,
    is_exact,
    iter_entries,
    write_entries,
)
from kvshim.databases import backup
from kvshim.errors import BackendError
from kvshim.model import ReadRange, StoredEntry

Progress = Callable[[int], None]
"""Called with the number of entries just handled."""


async def is_empty(backend: Backend) -> bool:
    """Whether the database holds no live entry."""
    (found,) = await backend.snapshot_read([ReadRange(ALL_START, ALL_END, 1)])
    return not found


async def dump(
    backend: Backend, path: Path, header: backup.BackupHeader, progress: Progress | None
) -> int:
    """Write every entry to a backup file at ``path``; the entry count. The file appears only
    once complete (written beside it, then renamed)."""
    partial = path.with_name(f".{path.name}.partial")
    count = 0
    try:
        with partial.open("w", encoding="utf-8") as out:
            out.write(backup.header_line(header))
            async for entry in iter_entries(backend):
                out.write(backup.entry_line(entry))
                count += 1
                if progress is not None:
                    progress(1)
            out.write(backup.trailer_line(count))
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, path)
    except OSError as exc:
        raise BackendError(f"Cannot write the backup to {path}: {exc.strerror or exc}") from exc
    finally:
        partial.unlink(missing_ok=True)
    return count


async def load(
    backend: Backend,
    entries: Iterable[StoredEntry] | AsyncIterator[StoredEntry],
    progress: Progress | None,
) -> int:
    """Write entries in batches; the count written. A backend without exact import gets
    them all at once, so that ``write_entries`` can replay them in versionstamp order."""
    count = 0
    batch: list[StoredEntry] = []
    limit = BATCH_SIZE if is_exact(backend) else None
    async for entry in _aiter(entries):
        batch.append(entry)
        if limit is not None and len(batch) >= limit:
            count += await _flush(backend, batch, progress)
    return count + await _flush(backend, batch, progress)


async def _flush(backend: Backend, batch: list[StoredEntry], progress: Progress | None) -> int:
    if not batch:
        return 0
    await write_entries(backend, batch)
    done = len(batch)
    batch.clear()
    if progress is not None:
        progress(done)
    return done


async def _aiter(
    entries: Iterable[StoredEntry] | AsyncIterator[StoredEntry],
) -> AsyncIterator[StoredEntry]:
    if isinstance(entries, AsyncIterator):
        async for entry in entries:
            yield entry
        return
    for number, entry in enumerate(entries):
        yield entry
        if number % BATCH_SIZE == 0:
            await asyncio.sleep(0)


def validate(path: Path) -> tuple[backup.BackupHeader, int]:
    """Read a whole backup file, checking every line; its header and entry count."""
    with _open(path) as stream:
        header = backup.read_header(stream)
        count = sum(1 for _ in backup.read_entries(stream))
    return header, count


def _open(path: Path) -> IO[str]:
    return path.open("r", encoding="utf-8")
