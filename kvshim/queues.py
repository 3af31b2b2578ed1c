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
    """Deliver messages until the backend closes, then wait for running handlers."""
    running: set[asyncio.Task[None]] = set()
    while (message := await backend.dequeue_next()) is not None:
        task = asyncio.create_task(_deliver(message, handler))
        running.add(task)
        task.add_done_callback(running.discard)
    if running:
        await asyncio.gather(*running, return_exceptions=True)


async def _deliver(message: QueueMessage, handler: Handler) -> None:
    try:
        result = handler(decode_v8(message.payload))
        if inspect.isawaitable(result):
            await result
    except Exception:
        logger.exception("Exception in queue handler")
        await message.finish(False)
    else:
        await message.finish(True)
