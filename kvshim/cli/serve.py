"""``kvshim serve``: host databases over KV Connect (HTTP/1.1, h2c and TLS with ALPN h2)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable
from pathlib import Path

import click

from kvshim.errors import KvError


def _parse_db(values: tuple[str, ...]) -> dict[str, str]:
    databases: dict[str, str] = {}
    for value in values:
        name, sep, url = value.partition("=")
        if not sep or not name or not url:
            raise click.BadParameter(f"expected NAME=URL, got {value!r}", param_hint="--db")
        if name in databases:
            raise click.BadParameter(f"database {name!r} is given twice", param_hint="--db")
        databases[name] = url
    return databases


@click.command("serve")
@click.option(
    "--data",
    "data_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder holding one SQLite file per database (<name>.sqlite3) and tokens.json "
    "(only tokens.json with --memory or --postgres).",
)
@click.option(
    "--memory",
    is_flag=True,
    help="Keep databases created on first use in memory instead of in --data.",
)
@click.option(
    "--postgres",
    metavar="URL",
    help="Keep databases in this PostgreSQL database (postgresql://user@host/db), one schema "
    "each, named after the database (see kvshim.backends.pg_location); created on first use.",
)
@click.option(
    "--db",
    "dbs",
    multiple=True,
    metavar="NAME=URL",
    help="Serve the database at URL (memory:X, a SQLite path, postgresql://…?schema=S…) as "
    "NAME. Repeatable.",
)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=4512, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--access-token",
    envvar="KVSHIM_ACCESS_TOKEN",
    help="Token granting every database (and creating new ones) [env: KVSHIM_ACCESS_TOKEN].",
)
@click.option("--tls-cert", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--tls-key", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option(
    "--dashboard-port",
    type=click.IntRange(0, 65535),
    help="Also serve the dashboard (kvshim dashboard) on 127.0.0.1:PORT in this process.",
)
@click.option("-v", "--verbose", is_flag=True, help="Log one line per request.")
def serve_command(
    data_dir: Path | None,
    memory: bool,
    postgres: str | None,
    dbs: tuple[str, ...],
    host: str,
    port: int,
    access_token: str | None,
    tls_cert: Path | None,
    tls_key: Path | None,
    dashboard_port: int | None,
    verbose: bool,
) -> None:
    """Serve databases at http://HOST:PORT/<name> to Deno.openKv() and kvshim clients.

    The root URL http://HOST:PORT is the database called "default".
    """
    from kvshim.server import DatabaseService, serve

    if data_dir is None and not memory and postgres is None and not dbs:
        raise click.UsageError(
            "give --data DIR, --memory, --postgres URL or at least one --db NAME=URL"
        )
    if memory and postgres is not None:
        raise click.UsageError("--memory and --postgres exclude each other")
    if (tls_cert is None) != (tls_key is None):
        raise click.UsageError("--tls-cert and --tls-key go together")
    _configure_logging(verbose)
    try:
        service = DatabaseService(
            data_dir=data_dir,
            memory=memory,
            postgres=postgres,
            databases=_parse_db(dbs),
            access_token=access_token,
            host=host,
            port=port,
            tls_cert=tls_cert,
            tls_key=tls_key,
            environ=dict(os.environ),
        )
    except KvError as error:
        raise click.ClickException(str(error)) from None

    def ready(url: str) -> None:
        click.echo(f"Listening on {url}")

    with contextlib.suppress(KeyboardInterrupt):
        try:
            asyncio.run(_serve_with_dashboard(serve(service, ready), dashboard_port))
        except KvError as error:  # e.g. the port is taken
            raise click.ClickException(str(error)) from None


async def _serve_with_dashboard(serving: Awaitable[None], port: int | None) -> None:
    if port is None:
        await serving
        return
    from kvshim.cli import dashboard
    from kvshim.dashboard import make_dashboard_app
    from kvshim.databases import Databases

    app = make_dashboard_app(Databases(), admin_token=os.environ.get("KVSHIM_ADMIN_TOKEN"))
    runner, url = await dashboard.start(app, dashboard.bind("127.0.0.1", port))
    click.echo(f"Dashboard on {url}")
    try:
        await serving
    finally:
        await runner.cleanup()


def _configure_logging(verbose: bool) -> None:
    # Only kvshim's own loggers go to debug: hpack/h2 debug output would show request headers,
    # bearer tokens included.
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    logging.getLogger("kvshim").setLevel(logging.DEBUG if verbose else logging.WARNING)
    for noisy in ("hpack", "h2", "h11", "hypercorn"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def register(group: click.Group) -> None:
    """Add ``serve`` to the ``kvshim`` command group."""
    group.add_command(serve_command)
