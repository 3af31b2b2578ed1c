"""A live page: every open browser tab shows the latest message the moment anyone posts one,
through ``kv.watch`` and server-sent events.

    kvshim run examples/live.py      # then open http://127.0.0.1:8000 in two tabs

``GET /events`` streams ``data: {"message": ..., "version": ...}`` each time the watched key
changes; ``POST /message`` (form field or JSON ``message``) sets it.
"""

import asyncio
import json

from aiohttp import web

import kvshim

KEY = ["live", "message"]
STREAMS = web.AppKey("streams", set)
MAX_LENGTH = 500

PAGE = """<!doctype html>
<meta charset="utf-8"><title>kvshim live</title>
<h1 id="message">…</h1>
<form id="f"><input name="message" autofocus placeholder="say something">
<button>Send</button></form>
<script>
  const events = new EventSource("/events");
  events.onmessage = (e) => {
    document.getElementById("message").textContent = JSON.parse(e.data).message ?? "(nothing yet)";
  };
  document.getElementById("f").onsubmit = async (e) => {
    e.preventDefault();
    await fetch("/message", {method: "POST", body: new FormData(e.target)});
    e.target.reset();
  };
</script>
"""


async def page(request: web.Request) -> web.Response:
    return web.Response(text=PAGE, content_type="text/html")


async def post_message(request: web.Request) -> web.Response:
    message = await _message(request)
    kv = await kvshim.open_kv()
    result = await kv.set(KEY, message[:MAX_LENGTH])
    return web.json_response({"version": result.versionstamp})


async def _message(request: web.Request) -> str:
    if request.content_type == "application/json":
        try:
            body = await request.json()
        except ValueError:
            raise web.HTTPBadRequest(text="the body must be JSON") from None
        message = body.get("message") if isinstance(body, dict) else None
    else:
        message = (await request.post()).get("message")
    if not isinstance(message, str):
        raise web.HTTPBadRequest(text="message must be a string")
    return message


async def events(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                           "Cache-Control": "no-cache"})  # fmt: skip
    await response.prepare(request)
    kv = await kvshim.open_kv()
    task = asyncio.current_task()
    request.app[STREAMS].add(task)
    try:
        # watch yields the current value at once, then again after every change.
        async for (entry,) in kv.watch([KEY]):
            data = json.dumps({"message": entry.value, "version": entry.versionstamp})
            await response.write(f"data: {data}\n\n".encode())
    except (asyncio.CancelledError, ConnectionResetError):
        pass  # the browser went away, or the server is reloading: EventSource reconnects
    finally:
        request.app[STREAMS].discard(task)
    return response


async def end_streams(app: web.Application) -> None:
    # On reload, shutdown or a branch switch, end the streams so browsers reconnect at once
    # to the new code (and the new timeline's database) instead of waiting for a timeout.
    for task in list(app[STREAMS]):
        task.cancel()


def create_app() -> web.Application:
    app = web.Application()
    app[STREAMS] = set()
    app.on_shutdown.append(end_streams)
    app.router.add_get("/", page)
    app.router.add_get("/events", events)
    app.router.add_post("/message", post_message)
    return app
