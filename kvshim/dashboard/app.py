"""``make_dashboard_app``: the dashboard as an aiohttp application, and ``mount_dashboard`` to
put it inside another one (such as ``kvshim serve``'s)."""

from __future__ import annotations

from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web
from aiohttp.typedefs import Middleware

from kvshim.dashboard import (
    databases_views,
    explorer_views,
    literal,
    live,
    login_views,
    timelines_views,
)
from kvshim.dashboard.pages import DATABASES, WATCHERS, render
from kvshim.dashboard.security import (
    Handler,
    auth_middleware,
    csrf_middleware,
    headers_middleware,
)
from kvshim.databases import Databases
from kvshim.errors import DatabaseNotFoundError, KvError

HERE = Path(__file__).parent


def make_dashboard_app(databases: Databases, *, admin_token: str | None = None) -> web.Application:
    """The dashboard over ``databases``; with ``admin_token``, every request must carry it."""
    middlewares: list[Middleware] = [headers_middleware, _errors_middleware]
    if admin_token:
        middlewares.append(auth_middleware(admin_token))
    middlewares.append(csrf_middleware)
    app = web.Application(middlewares=middlewares)
    app[DATABASES] = databases
    app[WATCHERS] = set()
    if admin_token:
        app[login_views.ADMIN_TOKEN] = admin_token
    _setup_templates(app)
    for table in (
        databases_views.routes,
        timelines_views.routes,
        explorer_views.routes,
        live.routes,
        login_views.routes,
    ):
        app.add_routes(table)
    app.router.add_static("/static", HERE / "static", name="static")
    app.on_shutdown.append(live.stop_watchers)
    return app


def mount_dashboard(
    app: web.Application,
    databases: Databases,
    *,
    prefix: str = "/dashboard",
    admin_token: str | None = None,
) -> web.Application:
    """Serve the dashboard under ``prefix`` of ``app``; the dashboard sub-application."""
    dashboard = make_dashboard_app(databases, admin_token=admin_token)
    app.add_subapp(prefix, dashboard)
    return dashboard


def _setup_templates(app: web.Application) -> None:
    environment = aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    environment.globals["expiry_text"] = explorer_views.expiry_text
    environment.globals["format_key"] = literal.format_key


@web.middleware
async def _errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A library error on a page becomes a readable error page (404 for what is missing)."""
    try:
        return await handler(request)
    except DatabaseNotFoundError as exc:
        return render(request, "error.html", {"message": str(exc)}, status=404)
    except KvError as exc:
        return render(request, "error.html", {"message": str(exc)}, status=400)
