"""The login form of a dashboard that has an admin token."""

from __future__ import annotations

import hmac

from aiohttp import web

from kvshim.dashboard.pages import form, redirect, render
from kvshim.dashboard.security import ADMIN_COOKIE, admin_session

routes = web.RouteTableDef()
ADMIN_TOKEN = web.AppKey("kvshim.dashboard.admin_token", str)


@routes.get("/login", name="login")
async def login_page(request: web.Request) -> web.Response:
    """Ask for the admin token."""
    return render(request, "login.html", {"error": None})


@routes.post("/login", name="login_submit")
async def login(request: web.Request) -> web.StreamResponse:
    """Check the admin token and remember it in an HTTP-only cookie."""
    token = request.app.get(ADMIN_TOKEN)
    typed = (await form(request)).get("token", "")
    if token is None or not hmac.compare_digest(typed.encode(), token.encode()):
        return render(request, "login.html", {"error": "Wrong admin token"}, status=403)
    response = redirect(request, "databases")
    response.set_cookie(
        ADMIN_COOKIE, admin_session(token), httponly=True, samesite="Strict", path="/"
    )
    return response
