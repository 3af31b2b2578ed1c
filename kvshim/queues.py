"""``listen_queue``: hand each deliverable message to the handler, and report the outcome."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from kvshim.backends.base import Backend, QueueMessage
from kvshim.values import decode_v8

logger = logging.getLogger("kvshim.queue")

Handler = Callable[[Any], Awaitable[object] | object]


async def listen(backend: Backend, handler: Handler) -> None:
    """Deliver messages until the backend closes; then wait for the acknowledgements already
    under way, as Deno does, but not for handlers still running (they go on, and acknowledge
    if the database is still there; otherwise the message's lease runs out and it comes back)."""
    acknowledging: set[asyncio.Future[None]] = set()
    while (message := await backend.dequeue_next()) is not None:
        task = asyncio.create_task(_deliver(message, handler, acknowledging))
        _handlers.add(task)
        task.add_done_callback(_handlers.discard)
        # Let other listeners on this database take the next message (Deno spreads them).
        await asyncio.sleep(0)
    if acknowledging:
        await asyncio.gather(*acknowledging, return_exceptions=True)


_handlers: set[asyncio.Task[None]] = set()
"""Handlers running, kept referenced (the event loop holds tasks only weakly)."""


async def _deliver(
    message: QueueMessage, handler: Handler, acknowledging: set[asyncio.Future[None]]
) -> None:
    try:
        result = handler(decode_v8(message.payload))
        if inspect.isawaitable(result):
            await result
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as error:
        task = asyncio.current_task()
        if isinstance(error, asyncio.CancelledError) and task is not None and task.cancelling():
            raise  # we are being cancelled (shutting down): no verdict, the lease brings it back
        logger.error("Exception in queue handler", exc_info=error)
        ok = False
    else:
        ok = True
    acknowledgement = asyncio.ensure_future(message.finish(ok))
    acknowledging.add(acknowledgement)
    acknowledgement.add_done_callback(acknowledging.discard)
    await acknowledgement
