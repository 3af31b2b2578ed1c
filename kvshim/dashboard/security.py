"""The dashboard's defences: security headers, the admin token, and cross-site request checks.

- Every response carries a strict Content-Security-Policy (scripts and styles from the
  dashboard's own static files only; no inline script can run) and ``nosniff``.
- With an admin token, every request needs it: the ``kvshim_admin`` cookie the login form sets,
  or an ``Authorization: Bearer TOKEN`` header.
- Every state-changing request is a POST carrying the CSRF token (double submit: a random
  ``kvshim_csrf`` cookie, the same value in the form's ``csrf`` field or an ``X-CSRF-Token``
  header), and its ``Origin`` (or, without one, ``Referer``) must be the dashboard's own.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.typedefs import Middleware

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

CSRF_COOKIE = "kvshim_csrf"
CSRF_FIELD = "csrf"
CSRF_HEADER = "X-CSRF-Token"
ADMIN_COOKIE = "kvshim_admin"
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_KEY = web.RequestKey("kvshim.dashboard.csrf", str)


class CrossSiteError(web.HTTPForbidden):
    """A state-changing request that did not prove it came from the dashboard's own page."""


def admin_session(token: str) -> str:
    """The cookie value that stands for ``token`` (never the token itself)."""
    return hmac.new(token.encode(), b"kvshim-dashboard-session", hashlib.sha256).hexdigest()


def csrf_token(request: web.Request) -> str:
    """The request's CSRF token (the cookie's, or a new one the response will set)."""
    existing = request.cookies.get(CSRF_COOKIE, "")
    if len(existing) >= 32:
        return existing
    if CSRF_KEY not in request:
        request[CSRF_KEY] = secrets.token_urlsafe(32)
    return request[CSRF_KEY]


@web.middleware
async def headers_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Security headers on every response, and the CSRF cookie when it is new."""
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        response = exc
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers.setdefault("Cache-Control", "no-store")
    if CSRF_KEY in request and not response.prepared:
        response.set_cookie(
            CSRF_COOKIE, request[CSRF_KEY], httponly=True, samesite="Strict", path="/"
        )
    if isinstance(response, web.HTTPException):
        raise response
    return response


def auth_middleware(token: str) -> Middleware:
    """Require the admin ``token`` on every request but the login form and static files."""
    session = admin_session(token)

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if _is_public(request) or _is_authorised(request, token, session):
            return await handler(request)
        if request.method in _SAFE_METHODS and "text/html" in request.headers.get("Accept", ""):
            raise web.HTTPSeeOther(str(request.app.router["login"].url_for()))
        raise web.HTTPUnauthorized(
            text="The dashboard needs its admin token", headers={"WWW-Authenticate": "Bearer"}
        )

    return middleware


def _is_public(request: web.Request) -> bool:
    return request.match_info.route.name in ("login", "login_submit", "static")


def _is_authorised(request: web.Request, token: str, session: str) -> bool:
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer ") and hmac.compare_digest(header[7:].encode(), token.encode()):
        return True
    cookie = request.cookies.get(ADMIN_COOKIE, "")
    return hmac.compare_digest(cookie.encode(), session.encode())


@web.middleware
async def csrf_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse a state-changing request without the CSRF token or from another origin."""
    if request.method in _SAFE_METHODS:
        return await handler(request)
    if request.method != "POST":
        raise web.HTTPMethodNotAllowed(request.method, ["GET", "POST"])
    _check_origin(request)
    cookie = request.cookies.get(CSRF_COOKIE, "")
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.content_type in _FORM_TYPES:
        sent = str((await request.post()).get(CSRF_FIELD, ""))
    if not cookie or not sent or not hmac.compare_digest(cookie.encode(), sent.encode()):
        raise CrossSiteError(
            text="Refused: this form has no valid CSRF token (reload the page and try again)"
        )
    return await handler(request)


_FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})


def _check_origin(request: web.Request) -> None:
    own = f"{request.scheme}://{request.host}"
    origin = request.headers.get("Origin")
    if origin is None:
        referer = request.headers.get("Referer")
        if referer is None:
            raise CrossSiteError(text="Refused: a state-changing request needs an Origin header")
        parts = urlsplit(referer)
        origin = f"{parts.scheme}://{parts.netloc}"
    if origin != own:
        raise CrossSiteError(text=f"Refused: a request from {origin} is not from this dashboard")
