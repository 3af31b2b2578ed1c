"""The KV Connect server as an ASGI application (served by hypercorn, see ``service``).

Routes (every one ``POST``):

- ``/`` and ``/<name>``: the metadata exchange for database ``<name>`` (``/`` is ``default``);
- ``/<name>/v2/snapshot_read``, ``/<name>/v2/atomic_write``, ``/<name>/v2/watch``: the data
  path (empty path segments are ignored, so ``//snapshot_read``-style paths work too).

Errors are plain-text bodies: 400 for bad input or a broken limit, 401 for a missing or wrong
token, 404 for an unknown database or route, 503 while shutting down; 500 only for
unexpected failures (clients retry every 5xx).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import hmac
import logging
import re
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from kvshim.backends import Backend
from kvshim.errors import (
    BackendError,
    KvClosedError,
    KvRangeError,
    KvTypeError,
    KvValueError,
    ProtocolError,
)
from kvshim.model import RawEntry
from kvshim.protocol import convert, metadata
from kvshim.server.databases import Databases
from kvshim.server.names import DEFAULT_DATABASE, check_name
from kvshim.server.tokens import TokenChecker

logger = logging.getLogger("kvshim.server")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

PING = b"\x00\x00\x00\x00"
MAX_BODY_BYTES = 4 * 1024 * 1024
_DATA_METHODS = frozenset({"snapshot_read", "atomic_write", "watch"})
_UUID = re.compile(r"[0-9a-fA-F]{32}|[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}")
_BAD_INPUT = (KvTypeError, KvValueError, KvRangeError, ProtocolError)


_INTERNAL_ERROR = b"Internal server error; see the server log."


class _TrackedSend:
    """``send``, remembering whether a response has started."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self.started = False

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
        await self._send(message)


class HttpError(Exception):
    """An error reply: status and plain-text message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class ServerSettings:
    """How the app authenticates and paces: tokens, metadata lifetime, watch pings."""

    access_token: str | None = None
    tokens: Sequence[TokenChecker] = ()
    token_lifetime: datetime.timedelta = datetime.timedelta(days=1)
    ping_interval: float = 5.0


class KvConnectApp:
    """An ASGI app serving the databases of ``databases`` over KV Connect."""

    def __init__(self, databases: Databases, settings: ServerSettings) -> None:
        self.databases = databases
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        started = time.perf_counter()
        status = 500
        response = _TrackedSend(send)
        try:
            status = await self._handle(scope, receive, response)
        except HttpError as error:
            status = error.status
            await _reply(send, error.status, error.message.encode(), "text/plain; charset=utf-8")
        except Exception:
            logger.exception("Unexpected error serving %s", scope.get("path"))
            if response.started:
                raise  # a stream already under way: let the server end it
            await _reply(send, 500, _INTERNAL_ERROR, "text/plain; charset=utf-8")
        finally:
            logger.debug(
                "HTTP/%s %s %s -> %d in %.1f ms",
                scope.get("http_version"),
                scope.get("method"),
                scope.get("path"),
                status,
                (time.perf_counter() - started) * 1000,
            )

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> int:
        if scope["method"] != "POST":
            raise HttpError(405, "Method not allowed.")
        raw_path = scope.get("raw_path")
        name, method = _route(raw_path.decode("latin-1") if raw_path else scope["path"])
        headers = _headers(scope)
        token = _bearer(headers.get("authorization"))
        try:
            check_name(name)
        except KvValueError as error:
            if not self._server_wide(token):  # no database token can grant a bad name
                raise HttpError(401, "Invalid access token.") from None
            raise HttpError(400, str(error)) from None
        await self._authorize(name, token)
        if method is not None:
            _check_data_headers(headers, self.databases.database_id(name).hex)
        body = await _read_body(receive)
        try:
            # Parsed before the database is opened: a bad request creates nothing.
            request = _parse(method, body)
            async with self.databases.use(name) as backend:
                return await self._dispatch(backend, name, method, token, request, receive, send)
        except _BAD_INPUT as error:
            raise HttpError(400, str(error)) from None
        except KvClosedError:
            raise HttpError(
                503, "The server is temporarily unavailable, try again later."
            ) from None
        except BackendError as error:  # e.g. a database file that is not a database
            logger.error("Database %r is unavailable: %s", name, error)
            raise HttpError(500, f"Database {name!r} is unavailable; see the server log.") from None

    async def _dispatch(
        self,
        backend: Backend,
        name: str,
        method: str | None,
        token: str,
        request: Any,
        receive: Receive,
        send: Send,
    ) -> int:
        if method is None:
            return await self._metadata(name, token, request, send)
        if method == "snapshot_read":
            reply = convert.snapshot_read_output_to_wire(await backend.snapshot_read(request))
        elif method == "atomic_write":
            reply = convert.atomic_write_output_to_wire(await backend.atomic_write(request))
        else:
            await self._watch(backend, request, receive, send)
            return 200
        await _reply(send, 200, reply, "application/x-protobuf")
        return 200

    def _server_wide(self, token: str) -> bool:
        expected = self.settings.access_token
        return expected is not None and hmac.compare_digest(token.encode(), expected.encode())

    async def _authorize(self, name: str, token: str) -> None:
        """Refuse unless ``token`` may use database ``name`` (and create it if it is new)."""
        server_wide = self._server_wide(token)
        if not server_wide and not await asyncio.to_thread(self._database_token, token, name):
            raise HttpError(401, "Invalid access token.")
        if not await self.databases.exists(name):
            # Only the server-wide token may create a database; a database token never does.
            if not (server_wide and self.databases.can_create(name)):
                raise HttpError(404, f"Database {name!r} does not exist.")

    def _database_token(self, token: str, name: str) -> bool:
        # Runs in a thread: token registries read files.
        return any(checker.grants(token, name) for checker in self.settings.tokens)

    async def _metadata(self, name: str, token: str, version: int, send: Send) -> int:
        reply = metadata.Metadata(
            version=version,
            database_id=self.databases.database_id(name),
            endpoint=f"/{name}/v2",
            # As denokv does: the data path takes the same token, re-checked on every call, so
            # a revoked database token stops working at once.
            token=token,
            expires_at=datetime.datetime.now(datetime.UTC) + self.settings.token_lifetime,
        )
        await _reply(send, 200, reply.to_json(), "application/json")
        return 200

    async def _watch(
        self, backend: Backend, keys: list[bytes], receive: Receive, send: Send
    ) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/octet-stream")],
            }
        )
        updates = backend.watch(keys)
        disconnected = asyncio.ensure_future(_until_disconnect(receive))
        try:
            await self._stream(updates, disconnected, send)
        finally:
            disconnected.cancel()
            await updates.aclose()
        with contextlib.suppress(Exception):
            await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _stream(
        self,
        updates: AsyncGenerator[list[RawEntry | None], None],
        disconnected: asyncio.Future[None],
        send: Send,
    ) -> None:
        pending: asyncio.Future[list[RawEntry | None]] = asyncio.ensure_future(anext(updates))
        try:
            while True:
                waiting: set[asyncio.Future[Any]] = {pending, disconnected}
                done, _ = await asyncio.wait(
                    waiting,
                    timeout=self.settings.ping_interval,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if disconnected in done:
                    return
                if pending not in done:
                    await send({"type": "http.response.body", "body": PING, "more_body": True})
                    continue
                try:
                    entries = pending.result()
                except StopAsyncIteration:
                    return  # the database closed
                frame = convert.watch_output_to_wire(entries)
                await send({"type": "http.response.body", "body": frame, "more_body": True})
                pending = asyncio.ensure_future(anext(updates))
        finally:
            pending.cancel()
            with contextlib.suppress(BaseException):
                await pending


def _route(raw_path: str) -> tuple[str, str | None]:
    """``(database name, data-path method)``; the method is ``None`` for the metadata exchange.
    Segments are split before decoding, so ``/a%2Fb`` names ``a/b`` (refused as a name)."""
    segments = [unquote(s) for s in raw_path.split("/") if s]
    if len(segments) <= 1:
        return (segments[0] if segments else DEFAULT_DATABASE), None
    if len(segments) == 3 and segments[1] == "v2" and segments[2] in _DATA_METHODS:
        return segments[0], segments[2]
    if len(segments) == 2 and "v2" not in segments:
        return "/".join(segments), None  # a name with a slash: refused by check_name (400)
    raise HttpError(404, "Resource not found.")


def _parse(method: str | None, body: bytes) -> Any:
    """The request ``method`` carries: the negotiated version, ranges, a write or watch keys."""
    if method is None:
        return metadata.negotiate(metadata.client_versions(body))
    if method == "snapshot_read":
        return convert.snapshot_read_from_wire(body)
    if method == "atomic_write":
        return convert.atomic_write_from_wire(body)
    return convert.watch_from_wire(body)


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}


def _bearer(value: str | None) -> str:
    if value is None:
        raise HttpError(401, "Missing authorization header.")
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise HttpError(401, "Malformed authorization header.")
    return token.strip()


def _check_data_headers(headers: dict[str, str], database_id: str) -> None:
    if headers.get("x-denokv-version") not in ("2", "3"):
        raise HttpError(400, "Expected protocol version 2 or 3.")
    presented = headers.get("x-denokv-database-id", "")
    if not _UUID.fullmatch(presented) or presented.replace("-", "").lower() != database_id:
        raise HttpError(400, "Invalid database id.")


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise HttpError(400, "Client disconnected.")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise HttpError(400, f"Request body too large (max {MAX_BODY_BYTES} bytes)")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _until_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _reply(send: Send, status: int, body: bytes, content_type: str) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type.encode()),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
