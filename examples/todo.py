"""A small todo API: several routes, listing by prefix with cursor pagination, and an atomic
check so that two clients editing the same todo cannot silently overwrite each other.

    kvshim run examples/todo.py
    curl -X POST localhost:8000/todos -d '{"title": "write docs"}'
    curl 'localhost:8000/todos?limit=10'              # -> {"todos": [...], "cursor": "..."}
    curl 'localhost:8000/todos?limit=10&cursor=...'   # the next page
    curl -X PATCH localhost:8000/todos/<id> -d '{"done": true, "version": "<versionstamp>"}'
    curl -X DELETE localhost:8000/todos/<id>

Keys: ``["todos", id]`` holds ``{"title", "done"}``; ids are time-ordered, so a prefix listing
returns todos oldest first.
"""

import time
import uuid
from typing import Any

from aiohttp import web

import kvshim

routes = web.RouteTableDef()
MAX_PAGE = 100


def _todo(entry: kvshim.KvEntry) -> dict[str, Any]:
    return {"id": entry.key[-1], **entry.value, "version": entry.versionstamp}


def _new_id() -> str:
    # Milliseconds first so ids sort by creation time; the random tail keeps them unique.
    return f"{int(time.time() * 1000):013d}-{uuid.uuid4().hex[:8]}"


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise web.HTTPBadRequest(text="the body must be JSON") from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text="the body must be a JSON object")
    return body


@routes.get("/todos")
async def list_todos(request: web.Request) -> web.Response:
    kv = await kvshim.open_kv()
    try:
        limit = min(int(request.query.get("limit", "20")), MAX_PAGE)
    except ValueError:
        raise web.HTTPBadRequest(text="limit must be a number") from None
    cursor = request.query.get("cursor") or None
    entries = kv.list(prefix=["todos"], limit=limit, cursor=cursor)
    todos = [_todo(entry) async for entry in entries]
    # A full page may have more after it; the cursor resumes right after its last todo.
    next_cursor = entries.cursor if len(todos) == limit else None
    return web.json_response({"todos": todos, "cursor": next_cursor})


@routes.post("/todos")
async def create_todo(request: web.Request) -> web.Response:
    body = await _body(request)
    title = body.get("title")
    if not isinstance(title, str) or not title.strip():
        raise web.HTTPBadRequest(text="title must be a non-empty string")
    kv = await kvshim.open_kv()
    key = ["todos", _new_id()]
    # check(versionstamp None) = "the key must not exist yet": never overwrite.
    result = (
        await kv.atomic()
        .check(kvshim.AtomicCheck(key, None))
        .set(key, {"title": title.strip(), "done": False})
        .commit()
    )
    if not result.ok:
        raise web.HTTPConflict(text="id collision, try again")
    return web.json_response(_todo(await kv.get(key)), status=201)


@routes.get("/todos/{id}")
async def get_todo(request: web.Request) -> web.Response:
    kv = await kvshim.open_kv()
    entry = await kv.get(["todos", request.match_info["id"]])
    if entry.value is None:
        raise web.HTTPNotFound(text="no such todo")
    return web.json_response(_todo(entry))


@routes.patch("/todos/{id}")
async def update_todo(request: web.Request) -> web.Response:
    """Change title/done. The client sends the ``version`` it last saw; if someone else changed
    the todo since, the atomic check fails and the answer is 409 with the current todo."""
    body = await _body(request)
    kv = await kvshim.open_kv()
    key = ["todos", request.match_info["id"]]
    current = await kv.get(key)
    if current.value is None:
        raise web.HTTPNotFound(text="no such todo")
    seen = body.get("version", current.versionstamp)
    updated = {**current.value}
    if "title" in body:
        updated["title"] = str(body["title"])
    if "done" in body:
        updated["done"] = bool(body["done"])
    result = await kv.atomic().check(kvshim.AtomicCheck(key, seen)).set(key, updated).commit()
    if not result.ok:
        latest = await kv.get(key)
        return web.json_response(
            {"error": "changed by someone else", "current": _todo(latest)}, status=409
        )
    return web.json_response(_todo(await kv.get(key)))


@routes.delete("/todos/{id}")
async def delete_todo(request: web.Request) -> web.Response:
    kv = await kvshim.open_kv()
    await kv.delete(["todos", request.match_info["id"]])
    return web.Response(status=204)


def create_app() -> web.Application:
    app = web.Application()
    app.add_routes(routes)
    return app
