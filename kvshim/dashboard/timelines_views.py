"""An instance's timelines: each timeline database with its key count, size and last write;
create one, download a backup, copy from another timeline, prune branches that are gone."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from aiohttp import web
from yarl import URL

from kvshim.dashboard.pages import call, databases, error_text, form, redirect, render, url
from kvshim.dashboard.store import find_database
from kvshim.databases import DatabaseStatus
from kvshim.errors import KvError

routes = web.RouteTableDef()
_CHUNK = 64 * 1024


def last_write(database: DatabaseStatus) -> str | None:
    """When a folder instance's database file last changed (UTC), else ``None``."""
    path = Path(database.url)
    if not path.is_absolute():
        return None
    stamps = [p.stat().st_mtime for p in (path, Path(f"{path}-wal")) if p.exists()]
    if not stamps:
        return None
    return datetime.fromtimestamp(max(stamps), UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


@routes.get("/instances/{instance}", name="instance")
async def instance_page(request: web.Request) -> web.Response:
    """The instance's timeline databases and their actions."""
    status = await call(request, databases(request).status, request.match_info["instance"])
    rows = [(d, last_write(d)) for d in status.databases]
    stale = request.query.getall("stale", [])
    context = {"instance": status, "rows": rows, "stale": stale}
    context |= {"prune_app": request.query.get("app", ""), "repo": request.query.get("repo", "")}
    return render(request, "instance.html", context)


@routes.post("/instances/{instance}/timelines", name="provision_timeline")
async def provision_timeline(request: web.Request) -> web.StreamResponse:
    """Create the database of an app's timeline (``Databases.ensure_database``)."""
    name = request.match_info["instance"]
    fields = await form(request)
    app, timeline = fields.get("app", ""), fields.get("timeline", "")
    try:
        found = await call(request, databases(request).ensure_database, name, app, timeline)
    except KvError as exc:
        message = f"Could not create the database: {error_text(exc)}"
        return redirect(request, "instance", message, "error", instance=name)
    return redirect(request, "instance", f"{found.name}: {found.state}", instance=name)


@routes.get("/instances/{instance}/databases/{database}/backup", name="backup")
async def backup(request: web.Request) -> web.StreamResponse:
    """Stream the database's NDJSON backup (``Databases.backup``) as a download."""
    name, db_name = request.match_info["instance"], request.match_info["database"]
    database = await find_database(databases(request), name, db_name)
    folder = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="kvshim-backup-"))
    try:
        path = folder / f"{db_name}.ndjson"
        await call(request, databases(request).backup, name, database.app, database.timeline, path)
        return await _stream_file(request, path)
    finally:
        await asyncio.to_thread(shutil.rmtree, folder, True)


async def _stream_file(request: web.Request, path: Path) -> web.StreamResponse:
    response = web.StreamResponse(
        headers={
            "Content-Type": "application/x-ndjson",
            "Content-Disposition": f'attachment; filename="{path.name}"',
        }
    )
    await response.prepare(request)
    with path.open("rb") as stream:
        while chunk := await asyncio.to_thread(stream.read, _CHUNK):
            await response.write(chunk)
    await response.write_eof()
    return response


@routes.post("/instances/{instance}/copy", name="copy")
async def copy(request: web.Request) -> web.StreamResponse:
    """Seed one timeline's database from another's (``Databases.copy``)."""
    name = request.match_info["instance"]
    fields = await form(request)
    app, source, target = fields.get("app", ""), fields.get("source", ""), fields.get("target", "")
    try:
        count = await call(
            request,
            databases(request).copy,
            name,
            app,
            source,
            target,
            replace=fields.get("replace") == "on",
        )
    except KvError as exc:
        return redirect(
            request, "instance", f"Not copied: {error_text(exc)}", "error", instance=name
        )
    return redirect(
        request, "instance", f"Copied {count} entries from {source} to {target}", instance=name
    )


@routes.post("/instances/{instance}/prune", name="prune")
async def prune(request: web.Request) -> web.StreamResponse:
    """List (then, confirmed, delete) the databases of branches gone from a repository."""
    name = request.match_info["instance"]
    fields = await form(request)
    app, repo, yes = fields.get("app", ""), fields.get("repo", ""), fields.get("yes") == "1"
    try:
        stale = await call(request, databases(request).prune, name, app, repo, yes=yes)
    except KvError as exc:
        return redirect(
            request, "instance", f"Prune failed: {error_text(exc)}", "error", instance=name
        )
    if yes or not stale:
        done = f"Deleted: {', '.join(stale)}" if stale else "Nothing to prune"
        return redirect(request, "instance", done, instance=name)
    query = [("app", app), ("repo", repo), *(("stale", s) for s in stale)]
    return web.HTTPSeeOther(URL(url(request, "instance", instance=name)).with_query(query))
