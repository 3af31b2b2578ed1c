"""``DatabaseService``: a KV Connect server on hypercorn, startable in-process on port 0.

Hypercorn serves HTTP/1.1 and HTTP/2 cleartext with prior knowledge on the same port (the Deno
CLI only speaks the latter over ``http://``), and HTTP/2 by ALPN under TLS.

    async with DatabaseService(memory=True, access_token="secret") as service:
        url = service.database_url("app")   # http://127.0.0.1:PORT/app
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
from collections.abc import Callable, Mapping
from pathlib import Path

from hypercorn.config import Config

from kvshim.errors import KvValueError, ServeError
from kvshim.server.app import KvConnectApp, ServerSettings
from kvshim.server.databases import Databases
from kvshim.server.names import check_name
from kvshim.server.tokens import (
    REGISTRY_FILE,
    DatabaseRegistryTokens,
    TokenChecker,
    TokenRegistry,
)
from kvshim.server.transport import Listener

KEEP_ALIVE_SECONDS = 75  # Deno reuses pooled h2 connections; a short keep-alive races it.


def make_kv_connect_app(
    *,
    data_dir: Path | None = None,
    memory: bool = False,
    postgres: str | None = None,
    databases: Mapping[str, str] | None = None,
    access_token: str | None = None,
    environ: Mapping[str, str] | None = None,
    ping_interval: float = 5.0,
) -> KvConnectApp:
    """The ASGI app serving databases by name.

    ``databases`` maps names to database URLs (``memory:NAME``, a SQLite path,
    ``postgresql://...?schema=x``…); other names are in-memory databases when ``memory``,
    schemas of the PostgreSQL database ``postgres`` (a ``postgresql://`` URL without
    ``schema``) when given, else ``<data_dir>/<name>.sqlite3``.
    ``access_token`` grants every database and may create new ones. Per-database tokens come
    from ``<data_dir>/tokens.json`` (``TokenRegistry``) and from ``kvshim db token create``
    (the registry in the data home that ``environ`` names).
    """
    for name in databases or {}:
        check_name(name)
    if memory and postgres is not None:
        raise KvValueError("Choose in-memory or PostgreSQL databases, not both")
    store = Databases(
        data_dir=data_dir, memory=memory, postgres=postgres, fixed=databases, environ=environ
    )
    tokens: list[TokenChecker] = [DatabaseRegistryTokens(environ or {})]
    if data_dir is not None:
        tokens.insert(0, TokenRegistry(data_dir / REGISTRY_FILE))
    settings = ServerSettings(access_token=access_token, tokens=tokens, ping_interval=ping_interval)
    return KvConnectApp(store, settings)


class DatabaseService:
    """A running KV Connect server (see ``make_kv_connect_app`` for the database options)."""

    def __init__(
        self,
        *,
        data_dir: Path | None = None,
        memory: bool = False,
        postgres: str | None = None,
        databases: Mapping[str, str] | None = None,
        access_token: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        tls_cert: Path | None = None,
        tls_key: Path | None = None,
        environ: Mapping[str, str] | None = None,
        ping_interval: float = 5.0,
    ) -> None:
        self.app = make_kv_connect_app(
            data_dir=data_dir,
            memory=memory,
            postgres=postgres,
            databases=databases,
            access_token=access_token,
            environ=environ,
            ping_interval=ping_interval,
        )
        self.access_token = access_token
        self._host, self._port = host, port
        self._tls = (tls_cert, tls_key) if tls_cert and tls_key else None
        self._stopping = asyncio.Event()
        self._listener: Listener | None = None
        self.url = ""

    def add_database(self, name: str, url: str) -> None:
        """Serve the database at ``url`` (``memory:X``, a SQLite path…) as ``name``."""
        self.app.databases.add(name, url)

    def database_url(self, name: str) -> str:
        """The URL clients open for database ``name``."""
        return f"{self.url}/{check_name(name)}"

    async def start(self) -> str:
        """Bind, start serving in the background, and return the base URL (``http://H:P``)."""
        _silence_header_logging()
        await self.app.databases.check_fixed()
        try:
            sock = socket.create_server((self._host, self._port))
        except OSError as error:
            raise ServeError(f"Cannot listen on {self._host}:{self._port}: {error}") from None
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # inherited by connections
        port = sock.getsockname()[1]
        config = self._config()
        listener = Listener(self.app, config)
        try:
            await listener.start(sock, config.create_ssl_context() if self._tls else None)
        except BaseException:
            sock.close()
            raise
        self._listener = listener
        host = f"[{self._host}]" if ":" in self._host else self._host
        self.url = f"{'https' if self._tls else 'http'}://{host}:{port}"
        return self.url

    def _config(self) -> Config:
        config = Config()
        config.keep_alive_timeout = KEEP_ALIVE_SECONDS
        # hypercorn closes a connection after 1000 requests by default, which Deno's pooled
        # HTTP/2 connection sees as a broken pipe (it retries, noisily).
        config.keep_alive_max_requests = 2**62
        config.graceful_timeout = 1.0
        config.accesslog = None
        config.errorlog = logging.getLogger("kvshim.server.http")
        if self._tls:
            config.certfile, config.keyfile = str(self._tls[0]), str(self._tls[1])
        return config

    def request_stop(self) -> None:
        """Make ``wait`` return (safe from a signal handler)."""
        self._stopping.set()

    async def wait(self) -> None:
        """Serve until ``stop`` is called."""
        await self._stopping.wait()

    async def stop(self) -> None:
        """Stop accepting, end open watches, and close every database."""
        self._stopping.set()
        listener, self._listener = self._listener, None
        if listener is not None:
            await self.app.databases.close()  # ends watch streams so shutdown is not held up
            await listener.close()

    async def __aenter__(self) -> DatabaseService:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


def _silence_header_logging() -> None:
    # hpack and h2 log every request header at DEBUG, bearer tokens included; whatever logging
    # the embedding program configures, they never log below INFO.
    for name in ("hpack", "h2"):
        logger = logging.getLogger(name)
        if logger.level < logging.INFO:  # NOTSET (0) too: the root level could drop later
            logger.setLevel(logging.INFO)


async def serve(service: DatabaseService, ready: Callable[[str], None]) -> None:
    """Run ``service`` until SIGINT or SIGTERM (then shut down gracefully: open requests
    finish, databases close), calling ``ready(url)`` once it is bound."""
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, service.request_stop)
    try:
        ready(await service.start())
        await service.wait()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        await service.stop()
