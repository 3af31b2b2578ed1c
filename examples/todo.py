"""A small todo API: several routes, listing by prefix with cursor pagination, and an atomic
check so that two clients editing the same todo cannot silently overwrite each other.

    kvshim run examples/todo.py
    curl -X POST localhost:8000/todos -d '{"title": "write docs"}'
    curl 'localhost:8000/todos?limit=10'              # -> {"todos": [...], "cursor": "..."}
    curl 'localhost:8000/todos?limit=10&cursor=...'   # the next page
    curl -X PATCH localhost:8000/todos/<id> -d '{"done": true, "version": "<version>"}'
    curl -X DELETE localhost:8000/todos/<id>

Keys: ``["todos", id]`` holds ``{"title", "done"}``; ids are time-ordered, so a prefix listing
returns todos oldest first. Each todo comes with its ``version`` (the entry's versionstamp): a
change must send the version it was made from, and is refused with 409 if the todo has changed
since.
"""

import time
import uuid
from typing import Any

from aiohttp import web

import kvshim

routes = web.RouteTableDef()
MAX_PAGE = 100
_last_ns = 0


def _todo(todo_id: str, value: dict[str, Any], version: str | None) -> dict[str, Any]:
    return {"id": todo_id, **value, "version": version}


def _entry(entry: kvshim.KvEntry) -> dict[str, Any]:
    return _todo(str(entry.key[-1]), entry.value, entry.versionstamp)


def _new_id() -> str:
    # Nanoseconds first, so ids sort by creation time (never repeated or going back within this
    # process, even for two todos in one clock tick); the random tail keeps apart the ids of
    # two servers.
    global _last_ns
    _last_ns = max(time.time_ns(), _last_ns + 1)
    return f"{_last_ns:020d}-{uuid.uuid4().hex[:8]}"


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
    limit = _limit(request.query.get("limit", "20"))
    cursor = request.query.get("cursor") or None
    kv = await kvshim.open_kv()
    entries = kv.list(prefix=["todos"], limit=limit, cursor=cursor)
    try:
        todos = [_entry(entry) async for entry in entries]
    except kvshim.KvError as error:  # a cursor that is not one of ours: "invalid cursor"
        raise web.HTTPBadRequest(text=f"cursor: {error}") from None
    # A full page may have more after it; the cursor resumes right after its last todo.
    next_cursor = entries.cursor if len(todos) == limit else None
    return web.json_response({"todos": todos, "cursor": next_cursor})


def _limit(text: str) -> int:
    try:
        limit = int(text)
    except ValueError:
        limit = 0
    if not 1 <= limit <= MAX_PAGE:
        raise web.HTTPBadRequest(text=f"limit must be a number from 1 to {MAX_PAGE}")
    return limit


@routes.post("/todos")
async def create_todo(request: web.Request) -> web.Response:
    body = await _body(request)
    title = _title(body.get("title"))
    kv = await kvshim.open_kv()
    todo_id, todo = _new_id(), {"title": title, "done": False}
    key = ["todos", todo_id]
    # check(versionstamp None) = "the key must not exist yet": never overwrite.
    result = await kv.atomic().check(kvshim.AtomicCheck(key, None)).set(key, todo).commit()
    if not result.ok:
        raise web.HTTPConflict(text="id collision, try again")
    # The commit's versionstamp is the new todo's version: no need to read it back.
    return web.json_response(_todo(todo_id, todo, result.versionstamp), status=201)


@routes.get("/todos/{id}")
async def get_todo(request: web.Request) -> web.Response:
    kv = await kvshim.open_kv()
    entry = await kv.get(["todos", request.match_info["id"]])
    if entry.value is None:
        raise web.HTTPNotFound(text="no such todo")
    return web.json_response(_entry(entry))


@routes.patch("/todos/{id}")
async def update_todo(request: web.Request) -> web.Response:
    """Change title/done. The client sends the ``version`` it last saw; if someone else changed
    the todo since, the atomic check fails and the answer is 409 with the current todo."""
    body = await _body(request)
    seen = body.get("version")
    if not isinstance(seen, str):
        raise web.HTTPBadRequest(text="version must be the todo's version, as last read")
    kv = await kvshim.open_kv()
    todo_id = request.match_info["id"]
    key = ["todos", todo_id]
    current = await kv.get(key)
    if current.value is None:
        raise web.HTTPNotFound(text="no such todo")
    updated = {**current.value}
    if "title" in body:
        updated["title"] = _title(body["title"])
    if "done" in body:
        if not isinstance(body["done"], bool):
            raise web.HTTPBadRequest(text="done must be true or false")
        updated["done"] = body["done"]
    try:
        check = kvshim.AtomicCheck(key, seen)
        result = await kv.atomic().check(check).set(key, updated).commit()
    except kvshim.KvError as error:  # not a versionstamp at all: Deno's own message says why
        raise web.HTTPBadRequest(text=f"version: {error}") from None
    if not result.ok:
        latest = await kv.get(key)
        if latest.value is None:
            return web.json_response({"error": "deleted by someone else"}, status=409)
        conflict = {"error": "changed by someone else", "current": _entry(latest)}
        return web.json_response(conflict, status=409)
    return web.json_response(_todo(todo_id, updated, result.versionstamp))


def _title(title: object) -> str:
    if not isinstance(title, str) or not title.strip():
        raise web.HTTPBadRequest(text="title must be a non-empty string")
    return title.strip()


@routes.delete("/todos/{id}")
async def delete_todo(request: web.Request) -> web.Response:
    kv = await kvshim.open_kv()
    await kv.delete(["todos", request.match_info["id"]])
    return web.Response(status=204)


def create_app() -> web.Application:
    app = web.Application()
    app.add_routes(routes)
    return app
