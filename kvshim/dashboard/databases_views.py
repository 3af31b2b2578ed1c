"""The Databases page: every instance with its state; provision, assign, unassign, fix,
delete. Each action calls the ``kvshim.databases.Databases`` method ``kvshim db`` calls."""

from __future__ import annotations

from aiohttp import web

from kvshim.dashboard.pages import call, databases, error_text, form, redirect, render
from kvshim.errors import KvError

routes = web.RouteTableDef()


@routes.get("/", name="databases")
async def databases_page(request: web.Request) -> web.Response:
    """Every instance: engine, location, apps and a status badge, with the action forms."""
    found = await call(request, databases(request).list)
    return render(request, "databases.html", {"instances": found})


@routes.post("/provision", name="provision")
async def provision(request: web.Request) -> web.StreamResponse:
    """Create an instance (``Databases.provision``)."""
    fields = await form(request)
    name = fields.get("name", "")
    try:
        await call(
            request,
            databases(request).provision,
            name,
            engine=fields.get("engine") or "kv",
            location=fields.get("location") or None,
        )
    except KvError as exc:
        return redirect(request, "databases", f"Could not provision: {error_text(exc)}", "error")
    return redirect(request, "databases", f"Provisioned {name}")


@routes.post("/instances/{instance}/assign", name="assign")
async def assign(request: web.Request) -> web.StreamResponse:
    """Assign the instance to an app (``Databases.assign``)."""
    name = request.match_info["instance"]
    app = (await form(request)).get("app", "")
    try:
        app_name = await call(request, databases(request).assign, name, app)
    except KvError as exc:
        return redirect(request, "databases", f"Could not assign: {error_text(exc)}", "error")
    return redirect(request, "databases", f"Assigned {name} to app {app_name}")


@routes.post("/instances/{instance}/unassign", name="unassign")
async def unassign(request: web.Request) -> web.StreamResponse:
    """Remove one app's assignment, keeping the data (``Databases.unassign``)."""
    name = request.match_info["instance"]
    app = (await form(request)).get("app", "")
    try:
        app_name = await call(request, databases(request).unassign, name, app)
    except KvError as exc:
        return redirect(request, "databases", f"Could not unassign: {error_text(exc)}", "error")
    return redirect(
        request, "databases", f"Removed app {app_name} from {name}; its databases are kept"
    )


@routes.post("/instances/{instance}/fix", name="fix")
async def fix(request: web.Request) -> web.StreamResponse:
    """Retry what failed (``Databases.fix``), showing the detailed error if it fails again."""
    name = request.match_info["instance"]
    try:
        fixed = await call(request, databases(request).fix, name)
    except KvError as exc:
        return redirect(request, "databases", f"Fix failed. {error_text(exc)}", "error")
    done = f"Fixed {len(fixed)} database(s) of {name}" if fixed else f"Nothing to fix on {name}"
    return redirect(request, "databases", done)


@routes.get("/instances/{instance}/delete", name="confirm_delete")
async def confirm_delete(request: web.Request) -> web.Response:
    """The delete confirmation: what will be lost, with a backup link for each database."""
    status = await call(request, databases(request).status, request.match_info["instance"])
    return render(request, "delete.html", {"instance": status})


@routes.post("/instances/{instance}/delete", name="delete")
async def delete(request: web.Request) -> web.StreamResponse:
    """Delete the instance and all its data, once its name has been typed to confirm."""
    name = request.match_info["instance"]
    typed = (await form(request)).get("confirm", "")
    if typed != name:
        return redirect(
            request,
            "confirm_delete",
            f"Not deleted: type the instance name {name!r} exactly to confirm",
            "error",
            instance=name,
        )
    try:
        deleted = await call(request, databases(request).delete, name, yes=True)
    except KvError as exc:
        return redirect(request, "databases", f"Could not delete: {error_text(exc)}", "error")
    return redirect(request, "databases", f"Deleted {name} and {len(deleted)} timeline database(s)")
