"""The listener: hypercorn's HTTP/1.1 and HTTP/2 connection handling on a socket we bind.

Why not ``hypercorn.asyncio.serve``: the Deno CLI's HTTP/2 client sends a request's HEADERS and
DATA frames in two writes with Nagle's algorithm on, so the DATA waits for the server's ACK of
the HEADERS — which Linux delays by 40 ms. Every call then took ~45 ms (22 sequential ops/s).
Re-arming ``TCP_QUICKACK`` before each read makes the kernel ACK at once (764 ops/s measured).
Hypercorn has no hook for that, so this module runs its ``TCPServer`` per connection with a
reader that re-arms the option (hypercorn internals: the version range is pinned).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from typing import Any

from hypercorn.asyncio.tcp_server import TCPServer
from hypercorn.asyncio.worker_context import WorkerContext
from hypercorn.config import Config
from hypercorn.utils import wrap_app

_QUICKACK: int | None = getattr(socket, "TCP_QUICKACK", None)


class _QuickAckReader:
    """A ``StreamReader`` stand-in that re-arms ``TCP_QUICKACK`` before every read."""

    def __init__(self, reader: asyncio.StreamReader, sock: Any) -> None:
        self._reader = reader
        self._sock = sock

    def at_eof(self) -> bool:
        return self._reader.at_eof()

    async def read(self, n: int = -1) -> bytes:
        if _QUICKACK is not None and self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)
        return await self._reader.read(n)


class Listener:
    """Serves an ASGI app on a bound, listening socket until ``close``."""

    def __init__(self, app: Any, config: Config) -> None:
        self._app = wrap_app(app, config.wsgi_max_body_size, "asgi")
        self._config = config
        self._context = WorkerContext(None)
        self._connections: set[asyncio.Task[Any]] = set()
        self._server: asyncio.Server | None = None

    async def start(self, sock: socket.socket, tls: ssl.SSLContext | None) -> None:
        """Accept connections on ``sock`` (with TLS when ``tls`` is given)."""
        self._server = await asyncio.start_server(
            self._connection, sock=sock, ssl=tls, backlog=self._config.backlog
        )

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        task.add_done_callback(self._connections.discard)
        quick = _QuickAckReader(reader, writer.get_extra_info("socket"))
        loop = asyncio.get_running_loop()
        await TCPServer(self._app, loop, self._config, self._context, {}, quick, writer)  # type: ignore[arg-type]

    async def close(self) -> None:
        """Stop accepting, let open requests finish for the graceful timeout, then cancel."""
        if self._server is not None:
            self._server.close()
        await self._context.terminated.set()
        if self._connections:
            _, pending = await asyncio.wait(
                set(self._connections), timeout=self._config.graceful_timeout
            )
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)
        if self._server is not None:
            await self._server.wait_closed()
