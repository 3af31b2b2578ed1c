"""The KV explorer: pick a timeline database, browse its keys by prefix a page at a time, open
an entry, and set, edit or delete it. Writes check the versionstamp the page was loaded with,
so an edit made on a stale page is refused, never silently applied."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from kvshim.dashboard import literal
from kvshim.dashboard.pages import call, databases, error_text, form, redirect, render
from kvshim.dashboard.store import opened, stored_facts
from kvshim.entries import AtomicCheck, KvEntry
from kvshim.errors import KvError, KvValueError
from kvshim.keys import Key
from kvshim.values import encode_value

routes = web.RouteTableDef()
PAGE_SIZE = 50
_PREVIEW = 80


@routes.get("/explore", name="explore")
async def explore(request: web.Request) -> web.Response:
    """Every timeline database of every instance, to pick one to browse."""
    found = await call(request, databases(request).list, probe=False)
    return render(request, "explore.html", {"instances": found})


@routes.get("/instances/{instance}/databases/{database}/keys", name="keys")
async def keys_page(request: web.Request) -> web.Response:
    """The entries under a typed prefix, ``PAGE_SIZE`` at a time (``Kv.list`` with a cursor)."""
    text = request.query.get("prefix", "").strip() or "[]"
    cursor = request.query.get("cursor") or None
    context: dict[str, Any] = {"prefix": text, "rows": [], "next_cursor": None, "error": None}
    async with opened(databases(request), *_names(request)) as (kv, _, database):
        context["database"] = database
        try:
            prefix = literal.parse_key(text)
            rows, context["next_cursor"] = await _page(kv.list(prefix=prefix, cursor=cursor))
        except KvError as exc:
            context["error"] = error_text(exc)
            return render(request, "keys.html", context, status=400)
    context["rows"] = [_row(entry) for entry in rows]
    return render(request, "keys.html", context)


async def _page(listing: Any) -> tuple[list[KvEntry], str | None]:
    rows: list[KvEntry] = []
    cursor: str | None = None
    async for entry in listing:
        if len(rows) == PAGE_SIZE:
            return rows, cursor
        rows.append(entry)
        cursor = listing.cursor
    return rows, None


def _row(entry: KvEntry) -> dict[str, Any]:
    preview = literal.format_value(entry.value).replace("\n", " ")
    short = preview if len(preview) <= _PREVIEW else preview[: _PREVIEW - 1] + "…"
    return {
        "key": literal.key_tokens(entry.key),
        "key_text": literal.format_key(entry.key),
        "type": literal.type_name(entry.value),
        "preview": short,
        "versionstamp": entry.versionstamp,
    }


@routes.get("/instances/{instance}/databases/{database}/entry", name="entry")
async def entry_page(request: web.Request) -> web.Response:
    """One entry: its typed value, stored bytes in hex, versionstamp and expiry."""
    text = request.query.get("key", "").strip()
    try:
        key = literal.parse_key(text)
    except KvError as exc:
        return await _render_entry(request, None, status=400, error=error_text(exc), key_text=text)
    return await _render_entry(request, key)


async def _render_entry(
    request: web.Request, key: Key | None, *, status: int = 200, **extra: Any
) -> web.Response:
    async with opened(databases(request), *_names(request)) as (kv, backend, database):
        context: dict[str, Any] = {"database": database, "entry": None, "facts": None}
        if key is not None:
            entry = await kv.get(key)
            context |= {"entry": entry, "facts": await stored_facts(backend, key)}
            context |= _entry_context(entry)
    context |= extra
    return render(request, "entry.html", context, status=status)


def _entry_context(entry: KvEntry) -> dict[str, Any]:
    exists = entry.versionstamp is not None
    return {
        "key_text": literal.format_key(entry.key),
        "key_tokens": literal.key_tokens(entry.key),
        "exists": exists,
        "type": literal.type_name(entry.value) if exists else None,
        "value_tokens": literal.value_tokens(entry.value) if exists else [],
        "value_text": literal.format_value(entry.value) if exists else "",
        "loaded_versionstamp": entry.versionstamp or "",
        "encoded_hex": encode_value(entry.value).data.hex() if exists else "",
    }


def expiry_text(expire_at_ms: int | None) -> str:
    """An expiry time as UTC text, or ``never``."""
    if expire_at_ms is None:
        return "never"
    return datetime.fromtimestamp(expire_at_ms / 1000, UTC).isoformat(timespec="milliseconds")


@routes.post("/instances/{instance}/databases/{database}/entry", name="save_entry")
async def save_entry(request: web.Request) -> web.StreamResponse:
    """Set the entry, provided it is still at the versionstamp the page was loaded with (or,
    for a new entry, still missing)."""
    fields = await form(request)
    loaded = fields.get("versionstamp") or None
    kept = {"value_text": fields.get("value", ""), "key_text": fields.get("key", "")}
    try:
        key = literal.parse_key(fields.get("key", ""))
        value = literal.parse_value(fields.get("value", ""))
        expire_in = _expire_in(fields.get("expire_in", ""))
    except KvError as exc:
        kept["loaded_versionstamp"] = loaded or ""
        return await _render_entry(request, None, status=400, error=error_text(exc), **kept)
    async with opened(databases(request), *_names(request)) as (kv, _, _db):
        try:
            operation = kv.atomic().check(AtomicCheck(key, loaded))
            result = await operation.set(key, value, expire_in=expire_in).commit()
        except KvError as exc:
            result, kept["error"] = None, error_text(exc)
    if result is None:
        return await _render_entry(request, key, status=400, **kept)
    if not result.ok:
        return await _refuse_stale(request, key, loaded, kept)
    return _to_entry(request, key, "Saved")


async def _refuse_stale(
    request: web.Request, key: Key, loaded: str | None, kept: dict[str, str]
) -> web.Response:
    was = f"versionstamp {loaded}" if loaded else "no entry"
    message = (
        f"Not saved: this entry changed since you loaded it (you loaded {was}). Nothing was "
        "overwritten. Its current value is shown; your text is kept below — submit again to "
        "replace the current value with it."
    )
    return await _render_entry(request, key, status=409, stale=message, **kept)


def _expire_in(text: str) -> int | None:
    if not text:
        return None
    if not text.isdigit() or int(text) == 0:
        raise KvValueError(f"Expire in must be a whole number of milliseconds: {text!r}")
    return int(text)


@routes.post("/instances/{instance}/databases/{database}/entry/delete", name="delete_entry")
async def delete_entry(request: web.Request) -> web.StreamResponse:
    """Delete the entry if it is still at the versionstamp the page was loaded with."""
    fields = await form(request)
    try:
        key = literal.parse_key(fields.get("key", ""))
    except KvError as exc:
        return await _render_entry(request, None, status=400, error=error_text(exc))
    loaded = fields.get("versionstamp") or None
    async with opened(databases(request), *_names(request)) as (kv, _, _db):
        result = await kv.atomic().check(AtomicCheck(key, loaded)).delete(key).commit()
    if not result.ok:
        return await _refuse_stale(request, key, loaded, {"value_text": ""})
    instance, name = _names(request)
    message = f"Deleted {literal.format_key(key)}"
    return redirect(request, "keys", message, instance=instance, database=name)


def _to_entry(request: web.Request, key: Key, message: str) -> web.HTTPSeeOther:
    instance, name = _names(request)
    query = {"key": literal.format_key(key)}
    return redirect(request, "entry", message, query=query, instance=instance, database=name)


def _names(request: web.Request) -> tuple[str, str]:
    return request.match_info["instance"], request.match_info["database"]
