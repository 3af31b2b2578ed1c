"""What every dashboard view shares: app state keys, the Databases API off the event loop,
form reading, and redirect-after-POST with a one-shot message."""

from __future__ import annotations

import asyncio
import base64
import functools
import json
from collections.abc import Callable
from typing import Any, Literal, TypeVar

import aiohttp_jinja2
from aiohttp import web

from kvshim.dashboard.security import csrf_token
from kvshim.databases import Databases
from kvshim.errors import KvError

T = TypeVar("T")
FlashKind = Literal["notice", "error"]

DATABASES = web.AppKey("kvshim.dashboard.databases", Databases)
WATCHERS: web.AppKey[set[asyncio.Task[Any]]] = web.AppKey("kvshim.dashboard.watchers")
FLASH_COOKIE = "kvshim_flash"


def databases(request: web.Request) -> Databases:
    """The ``Databases`` the dashboard manages."""
    return request.app[DATABASES]


async def call(request: web.Request, method: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a (blocking) ``Databases`` method on a worker thread."""
    return await asyncio.to_thread(method, *args, **kwargs)


async def form(request: web.Request) -> dict[str, str]:
    """The POSTed form fields (text only), stripped of surrounding spaces."""
    posted = await request.post()
    return {name: str(value).strip() for name, value in posted.items() if isinstance(value, str)}


def url(request: web.Request, route: str, query: dict[str, str] | None = None, **parts: str) -> str:
    """The path of a named route of this dashboard (mounted anywhere)."""
    found = request.app.router[route].url_for(**parts)
    return str(found.with_query(query) if query else found)


def redirect(
    request: web.Request,
    route: str,
    message: str | None = None,
    kind: FlashKind = "notice",
    query: dict[str, str] | None = None,
    **parts: str,
) -> web.HTTPSeeOther:
    """A 303 to a named route, carrying ``message`` to be shown once there."""
    response = web.HTTPSeeOther(url(request, route, query, **parts))
    if message is not None:
        payload = json.dumps({"kind": kind, "text": message}).encode()
        cookie = base64.urlsafe_b64encode(payload).decode()
        response.set_cookie(FLASH_COOKIE, cookie, httponly=True, samesite="Strict", path="/")
    return response


def render(
    request: web.Request, template: str, context: dict[str, Any], *, status: int = 200
) -> web.Response:
    """A page from ``template``, with the message left by the previous redirect, if any."""
    page: dict[str, Any] = {"flash": _flash(request), "csrf": csrf_token(request)}
    page["request"] = request
    page |= {"link": functools.partial(url, request), "static": functools.partial(_static, request)}
    response = aiohttp_jinja2.render_template(template, request, page | context, status=status)
    if FLASH_COOKIE in request.cookies:
        response.del_cookie(FLASH_COOKIE, path="/")
    return response


def _static(request: web.Request, name: str) -> str:
    return url(request, "static", filename=name)


def _flash(request: web.Request) -> dict[str, str] | None:
    raw = request.cookies.get(FLASH_COOKIE)
    if raw is None:
        return None
    try:
        found = json.loads(base64.urlsafe_b64decode(raw.encode()))
    except (ValueError, TypeError):
        return None
    if not isinstance(found, dict) or found.get("kind") not in ("notice", "error"):
        return None
    return {"kind": str(found["kind"]), "text": str(found.get("text", ""))}


def error_text(error: KvError) -> str:
    """A library error as the message the page shows."""
    return str(error) or type(error).__name__
