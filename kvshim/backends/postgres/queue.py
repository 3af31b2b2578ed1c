"""Queue messages in ``kv_queue``: claimed with ``FOR UPDATE SKIP LOCKED``, kept under lease.

A row's ``deliver_at_ms`` is when it may next be handed out. Claiming a due row moves it to
``now + lease`` and stamps it with a random ``lease_token``; while the handler runs, a
keep-alive pushes it forward again. If the listener dies, the row simply becomes due when the
lease runs out and another listener, in any process, receives it (at-least-once). Finishing
deletes the row, reschedules it after the next backoff interval, or — after the last attempt —
writes the dead-letter keys and deletes it in one transaction.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import asyncpg

from kvshim.backends.postgres.schema import quote_ident
from kvshim.backends.postgres.writes import unpack_ints, unpack_keys

logger = logging.getLogger("kvshim.postgres")


@dataclass(frozen=True, slots=True)
class Claimed:
    """A message row this listener holds the lease of."""

    id: int
    token: int
    payload: bytes
    keys_if_undelivered: tuple[bytes, ...]
    backoff_schedule: tuple[int, ...]


class QueueSql:
    """The queue statements of one schema."""

    def __init__(self, schema: str) -> None:
        q = f"{quote_ident(schema)}.kv_queue"
        self.claim = (
            f"UPDATE {q} SET deliver_at_ms = $1::int8 + $2::int8, lease_token = $3 "
            f"WHERE id = (SELECT id FROM {q} WHERE deliver_at_ms <= $1 "
            "ORDER BY deliver_at_ms, id LIMIT 1 FOR UPDATE SKIP LOCKED) "
            "RETURNING id, payload, keys_if_undelivered, backoff_schedule"
        )
        self.next_due = f"SELECT min(deliver_at_ms) FROM {q}"
        self.renew = f"UPDATE {q} SET deliver_at_ms = $3 WHERE id = $1 AND lease_token = $2"
        self.delete = f"DELETE FROM {q} WHERE id = $1 AND lease_token = $2"
        self.retry = (
            f"UPDATE {q} SET deliver_at_ms = $3, backoff_schedule = $4, lease_token = NULL "
            "WHERE id = $1 AND lease_token = $2"
        )


async def claim(con: asyncpg.Connection, sql: QueueSql, now: int, lease_ms: int) -> Claimed | None:
    """Take the lease of the earliest due message, if any."""
    token = secrets.randbits(63)
    row = await con.fetchrow(sql.claim, now, lease_ms, token)
    if row is None:
        return None
    return Claimed(
        row["id"],
        token,
        row["payload"],
        unpack_keys(row["keys_if_undelivered"]),
        unpack_ints(row["backoff_schedule"]),
    )


class PostgresMessage:
    """A claimed message; a keep-alive renews its lease until ``finish``."""

    def __init__(
        self,
        claimed: Claimed,
        renew: Callable[[Claimed], Awaitable[None]],
        finish: Callable[[Claimed, bool], Awaitable[None]],
        lease_ms: int,
    ) -> None:
        self._claimed = claimed
        self._finish = finish
        self._keepalive = asyncio.get_running_loop().create_task(
            _keep_alive(claimed, renew, lease_ms)
        )

    @property
    def payload(self) -> bytes:
        """The V8-encoded message value."""
        return self._claimed.payload

    async def finish(self, success: bool) -> None:
        """Stop the keep-alive, then acknowledge or schedule the next attempt."""
        self._keepalive.cancel()
        await self._finish(self._claimed, success)


async def _keep_alive(
    claimed: Claimed, renew: Callable[[Claimed], Awaitable[None]], lease_ms: int
) -> None:
    while True:
        await asyncio.sleep(lease_ms / 3000)
        try:
            await renew(claimed)
        except Exception as exc:  # the lease may lapse: the message is then redelivered
            logger.warning("Could not renew a queue message lease: %s", exc)
