"""The backend contract: five operations on encoded keys, which every storage engine implements.

``Kv`` (``kvshim.kv``) turns every user call into one of these: ``get``/``get_many``/``list`` into
``snapshot_read``; ``set``/``delete``/``sum``/``enqueue``/``atomic().commit()`` into
``atomic_write``; ``listen_queue`` into a loop over ``dequeue_next``; ``watch`` into ``watch``.
Inputs have passed every Deno limit check before they arrive here.

Semantics every backend keeps:

- **Versionstamps** are 10 bytes, strictly increasing per database across restarts; every key
  written by one successful write gets the same one, which ``atomic_write`` returns. A write
  whose checks fail consumes none.
- **Expiry**: an entry whose ``expire_at_ms`` is at or before now is invisible to reads, checks
  and watches; the backend deletes it in the background and notifies watchers of its keys.
- **Atomicity**: checks, mutations and enqueues of one write apply together or not at all, also
  when a mutation fails (``KvTypeError``) halfway.
- **Queues** are at-least-once: a dequeued message that is neither finished nor kept alive is
  delivered again; a failed one is retried after its backoff intervals, then dead-lettered.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from typing import Protocol, runtime_checkable

from kvshim.model import AtomicWrite, Consistency, RawEntry, ReadRange, StoredEntry


class QueueMessage(Protocol):
    """A message handed to one listener; it must be finished exactly once."""

    @property
    def payload(self) -> bytes:
        """The V8-encoded message value."""
        ...

    async def finish(self, success: bool) -> None:
        """Acknowledge delivery (``True``) or report a failed attempt (``False``), which
        schedules the next retry or, after the last one, writes the dead-letter keys."""
        ...


class Backend(Protocol):
    """A Deno KV storage engine."""

    async def snapshot_read(
        self, ranges: Sequence[ReadRange], consistency: Consistency = "strong"
    ) -> list[list[RawEntry]]:
        """Read every range from one consistent snapshot; one list of entries per range, in
        key order (descending for ``reverse`` ranges), live entries only."""
        ...

    async def atomic_write(self, write: AtomicWrite) -> bytes | None:
        """Apply ``write`` atomically; its versionstamp, or ``None`` if a check failed."""
        ...

    async def dequeue_next(self) -> QueueMessage | None:
        """Wait for the next deliverable queue message; ``None`` once the backend is closed."""
        ...

    def watch(self, keys: Sequence[bytes]) -> AsyncGenerator[list[RawEntry | None], None]:
        """Yield the current entries of ``keys`` (``None`` where missing) at once, then again
        after every write or expiry that touches one of them. A slow consumer sees only the
        latest state. The iterator ends when the backend closes."""
        ...

    async def close(self) -> None:
        """Stop background work, end watches and queue waits, release storage."""
        ...


@runtime_checkable
class RawAccess(Protocol):
    """Optional backend extension: exact export and import of stored entries.

    Backup, restore and copy (``kvshim.databases``) use it through ``kvshim.backends.raw``, which
    falls back to the five-method contract for a backend without it (then expiry cannot be read
    and restored entries get new versionstamps, in the original order).
    """

    async def export_entries(self, start: bytes, end: bytes, limit: int) -> list[StoredEntry]:
        """Up to ``limit`` live entries with ``start <= key < end``, in key order, each with its
        versionstamp and ``expire_at_ms``."""
        ...

    async def import_entries(self, entries: Sequence[StoredEntry]) -> None:
        """Store ``entries`` exactly as given (value, versionstamp, expiry) in one atomic step,
        replacing whatever is stored at their keys, and notify watchers. Afterwards every new
        write gets a versionstamp above the largest imported one."""
        ...
