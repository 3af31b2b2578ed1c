"""Serve a ``web.Application`` on a socket bound once, and swap in a new one without dropping
the socket.

Each application version gets its own ``AppRunner`` on a duplicate of the listening socket; a
swap starts the new runner first, then stops the old one gracefully (its in-flight requests
finish, its idle keep-alive connections close). Requests pay nothing for this: between swaps
the server is a plain aiohttp ``AppRunner``.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web

from kvshim.errors import ServeError

SHUTDOWN_TIMEOUT = 10.0


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0 picks a free one)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, kind, proto, _, address = infos[0]
        sock = socket.socket(family, kind, proto)
    except OSError as error:
        raise ServeError(f"Cannot listen on {host}:{port}: {error}") from error
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(1024)
    except OSError as error:
        sock.close()
        raise ServeError(f"Cannot listen on {host}:{port}: {error}") from error
    sock.setblocking(False)
    return sock


def display_url(sock: socket.socket) -> str:
    """``http://HOST:PORT`` for a bound socket (IPv6 hosts in brackets)."""
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


@dataclass(slots=True)
class AppServer:
    """The one listening socket and whichever application currently serves it."""

    sock: socket.socket
    shutdown_timeout: float = SHUTDOWN_TIMEOUT
    on_error: Callable[[str], None] | None = None
    _runner: web.AppRunner | None = field(default=None, init=False)
    _retiring: set[asyncio.Task[None]] = field(default_factory=set, init=False)

    @property
    def is_serving(self) -> bool:
        """Whether an application is being served."""
        return self._runner is not None

    async def swap(self, app: web.Application) -> None:
        """Serve ``app`` from now on; the previous application finishes its requests and is
        cleaned up. If ``app`` fails to start, the previous one keeps serving and the error
        propagates."""
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=self.shutdown_timeout)
        await runner.setup()
        try:
            await web.SockSite(runner, self.sock.dup()).start()
        except BaseException:
            await runner.cleanup()
            raise
        previous, self._runner = self._runner, runner
        if previous is not None:
            # Stop the old app accepting now, so that every connection from here on reaches
            # the new one; its open connections are wound down in the background.
            for site in list(previous.sites):
                await site.stop()
            # In the background: a long request (a server-sent event stream) on the old app
            # must not hold up the next reload.
            task = asyncio.ensure_future(self._retire(previous))
            self._retiring.add(task)
            task.add_done_callback(self._retiring.discard)

    async def _retire(self, runner: web.AppRunner) -> None:
        try:
            await runner.cleanup()
        except Exception as error:
            if self.on_error is not None:
                self.on_error(f"The previous app failed to shut down cleanly: {error!r}")

    async def close(self) -> None:
        """Stop serving: in-flight requests finish (up to ``shutdown_timeout``), the app's
        cleanup runs, and the socket closes."""
        runner, self._runner = self._runner, None
        try:
            if runner is not None:
                await runner.cleanup()
            await asyncio.gather(*self._retiring, return_exceptions=True)
        finally:
            self.sock.close()
