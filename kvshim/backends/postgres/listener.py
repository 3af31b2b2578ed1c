"""One LISTEN connection per backend: change notifications from every client, with reconnect.

A write sends one NOTIFY on the database's channel, delivered at commit. Its payload is
``FLAGS|KEYS``: FLAGS holds ``q`` when messages were enqueued or rescheduled and ``t`` when a
key got an expiry time; KEYS is the changed keys in hex joined by ``,`` — or ``*`` when they do
not fit in PostgreSQL's 8000-byte payload, which wakes every watcher.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import asyncpg

from kvshim.backends.postgres.config import PgConfig
from kvshim.backends.postgres.errors import is_transient

logger = logging.getLogger("kvshim.postgres")

_MAX_KEYS_TEXT = 7000


@dataclass(frozen=True, slots=True)
class Change:
    """What one notification says changed."""

    keys: list[bytes] | None
    """The changed keys; ``None`` means "possibly any key"."""
    queue: bool
    expiry: bool


def payload(keys: Iterable[bytes], *, queue: bool, expiry: bool) -> str:
    """The NOTIFY payload for a write of ``keys``."""
    text = ",".join(key.hex() for key in keys)
    if len(text) > _MAX_KEYS_TEXT:
        text = "*"
    return ("q" if queue else "") + ("t" if expiry else "") + "|" + text


def parse(text: str) -> Change:
    """The ``Change`` a payload describes."""
    flags, _, keys = text.partition("|")
    parsed = None if keys == "*" else [bytes.fromhex(k) for k in keys.split(",") if k]
    return Change(parsed, "q" in flags, "t" in flags)


ANY_CHANGE = Change(None, True, True)
"""What to assume after notifications may have been missed (a reconnect)."""


class Listener:
    """Keeps a LISTEN connection open, reconnecting with backoff, and calls ``on_change``."""

    def __init__(self, config: PgConfig, on_change: Callable[[Change], None]) -> None:
        self._config = config
        self._on_change = on_change
        self._connection: asyncpg.Connection | None = None
        self._reconnect: asyncio.Task[None] | None = None
        self._closed = False

    async def start(self) -> None:
        """Connect and LISTEN; raises if the server cannot be reached."""
        await self._connect()

    async def _connect(self) -> None:
        connection = await asyncpg.connect(self._config.dsn, timeout=10)
        await connection.add_listener(self._config.channel, self._notified)
        connection.add_termination_listener(self._terminated)
        self._connection = connection

    def _notified(self, connection: object, pid: int, channel: str, text: object) -> None:
        self._on_change(parse(str(text)))

    def _terminated(self, connection: object) -> None:
        if not self._closed and self._reconnect is None:
            self._reconnect = asyncio.get_running_loop().create_task(self._reconnect_forever())

    async def _reconnect_forever(self) -> None:
        delay = 0.05
        while not self._closed:
            try:
                await self._connect()
            except Exception as exc:
                if not is_transient(exc):
                    logger.error("PostgreSQL LISTEN connection failed: %s", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)
                continue
            self._reconnect = None
            self._on_change(ANY_CHANGE)
            return

    async def close(self) -> None:
        """Stop listening and reconnecting."""
        self._closed = True
        if self._reconnect is not None:
            self._reconnect.cancel()
        if self._connection is not None and not self._connection.is_closed():
            await self._connection.close(timeout=5)
