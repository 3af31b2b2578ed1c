"""Live mode: a Server-Sent Events stream of one entry, fed by ``Kv.watch``.

Each event's data is JSON: ``{"exists", "versionstamp", "type", "tokens"}``, where ``tokens``
are the typed ``[kind, text]`` pairs of ``kvshim.dashboard.literal`` (the page builds text
nodes from them, never HTML). A comment line is sent every ``HEARTBEAT_SECONDS`` so a closed
browser tab is noticed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from aiohttp import web

from kvshim.dashboard import literal
from kvshim.dashboard.pages import WATCHERS, databases
from kvshim.dashboard.store import opened
from kvshim.entries import KvEntry
from kvshim.errors import KvError

routes = web.RouteTableDef()
HEARTBEAT_SECONDS = 15.0


def event_body(entry: KvEntry) -> dict[str, Any]:
    """The JSON an entry's event carries."""
    exists = entry.versionstamp is not None
    return {
        "exists": exists,
        "versionstamp": entry.versionstamp,
        "type": literal.type_name(entry.value) if exists else None,
        "tokens": literal.value_tokens(entry.value) if exists else [],
    }


@routes.get("/instances/{instance}/databases/{database}/entry/watch", name="watch_entry")
async def watch_entry(request: web.Request) -> web.StreamResponse:
    """Stream the entry now and after every change, until the browser goes away."""
    try:
        key = literal.parse_key(request.query.get("key", ""))
    except KvError as exc:
        raise web.HTTPBadRequest(text=str(exc)) from exc
    names = request.match_info["instance"], request.match_info["database"]
    task = asyncio.current_task()
    assert task is not None
    request.app[WATCHERS].add(task)
    try:
        async with opened(databases(request), *names) as (kv, _, _db):
            return await _stream(request, kv.watch([key]))
    finally:
        request.app[WATCHERS].discard(task)


async def _stream(request: web.Request, watch: Any) -> web.StreamResponse:
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"}
    )
    await response.prepare(request)
    queue: asyncio.Queue[KvEntry] = asyncio.Queue()

    async def pump() -> None:
        async for entries in watch:
            queue.put_nowait(entries[0])

    pumping = asyncio.create_task(pump())
    try:
        while not pumping.done():
            try:
                entry = await asyncio.wait_for(queue.get(), HEARTBEAT_SECONDS)
            except TimeoutError:
                await response.write(b": ping\n\n")
                continue
            await response.write(f"data: {json.dumps(event_body(entry))}\n\n".encode())
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        pumping.cancel()
        with contextlib.suppress(asyncio.CancelledError, KvError):
            await pumping
        await watch.aclose()
    return response


async def stop_watchers(app: web.Application) -> None:
    """On shutdown, end every live stream (they would otherwise hold the server open)."""
    tasks = app[WATCHERS]
    for task in tuple(tasks):
        task.cancel()
