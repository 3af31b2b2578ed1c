"""``kvshim dashboard``: the Databases page and the KV explorer in a browser."""

from __future__ import annotations

import asyncio
import ipaddress
import signal
import socket

import click
from aiohttp import web

from kvshim.dashboard import make_dashboard_app
from kvshim.databases import Databases


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@click.command("dashboard")
@click.option("--host", default="127.0.0.1", show_default=True, help="The address to bind.")
@click.option("--port", default=8200, show_default=True, help="The port (0: any free port).")
@click.option(
    "--admin-token",
    envvar="KVSHIM_ADMIN_TOKEN",
    help="Required on every request; needed to bind anything but a loopback address.",
)
def dashboard(host: str, port: int, admin_token: str | None) -> None:
    """Serve the Databases page and the KV explorer.

    Prints `Listening on http://HOST:PORT` once bound.

    \b
    Example: kvshim dashboard --port 8200
    """
    if not admin_token and not is_loopback(host):
        raise click.UsageError(
            f"Binding {host} exposes the dashboard to other machines: pass --admin-token "
            "(or set KVSHIM_ADMIN_TOKEN), or bind 127.0.0.1"
        )
    app = make_dashboard_app(Databases(), admin_token=admin_token)
    sock = bind(host, port)
    asyncio.run(_serve(app, sock))


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port``; a ``ClickException`` saying why if it cannot be."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, kind, proto, _, address = infos[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        raise click.ClickException(f"Cannot listen on {host}:{port}: {exc}") from exc
    sock.listen(128)
    sock.setblocking(False)
    return sock


async def start(app: web.Application, sock: socket.socket) -> tuple[web.AppRunner, str]:
    """Serve ``app`` on ``sock``; the runner (to clean up) and the URL it answers on."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return runner, f"http://{shown}:{port}"


async def _serve(app: web.Application, sock: socket.socket) -> None:
    runner, url = await start(app, sock)
    try:
        click.echo(f"Listening on {url}")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()
    finally:
        await runner.cleanup()
