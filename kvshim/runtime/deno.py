"""``kvshim run app.ts``: a Deno app in a subprocess, on the timeline's database over KV Connect.

The runtime starts an in-process ``DatabaseService`` (port 0, a fresh random access token) that
serves the timeline's database, then runs ``deno run --unstable-kv -A app.ts`` with
``DENO_KV_DEFAULT_PATH`` pointing at it, so ``Deno.openKv()`` with no argument lands on that
database. ``DENO_KV_ACCESS_TOKEN``, ``DENO_TIMELINE`` / ``KVSHIM_TIMELINE`` and ``PORT`` (the
``--port`` of ``kvshim run``; a free one for 0) are set too. A code edit restarts the Deno
process; a branch switch adds the new timeline's database to the service and restarts it on
that one. Deno comes from the ``deno`` package (``pip install 'kvshim[deno]'``) or ``PATH``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import importlib
import secrets
import shutil
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

from kvshim.errors import AppLoadError, KvValueError
from kvshim.runtime.databases import timeline_slug
from kvshim.runtime.timeline import TIMELINE_VARIABLE, Timeline
from kvshim.server import DatabaseService, check_name

DENO_SUFFIXES = frozenset({".ts", ".tsx", ".mts", ".js", ".jsx", ".mjs"})
NO_DENO = "Running a Deno app needs Deno: pip install 'kvshim[deno]' (or put deno on PATH)"
STOP_TIMEOUT = 5.0


class Reporter(Protocol):
    """Where messages go (the CLI prints them)."""

    def info(self, message: str) -> None:
        """A normal event."""

    def error(self, message: str) -> None:
        """Something the user must fix."""


def is_deno_app(target: str) -> bool:
    """Whether ``kvshim run TARGET`` names a Deno (TypeScript / JavaScript) program."""
    return Path(target.partition(":")[0]).suffix in DENO_SUFFIXES


def locate_deno() -> str | None:
    """The deno binary of the PyPI ``deno`` package, else one on ``PATH``, else ``None``."""
    try:
        return str(importlib.import_module("deno").find_deno_bin())
    except (ImportError, FileNotFoundError, AttributeError):
        return shutil.which("deno")


def find_deno() -> str:
    """The deno binary to run Deno apps with; ``AppLoadError`` saying how to get one."""
    found = locate_deno()
    if found is None:
        raise AppLoadError(NO_DENO)
    return found


def service_name(timeline: Timeline) -> str:
    """The database name a timeline gets on the service (a valid ``kvshim serve`` name)."""
    slug = "t-" + timeline_slug(timeline.name)
    try:
        return check_name(slug)
    except KvValueError:
        return "t-" + hashlib.sha256(timeline.name.encode()).hexdigest()[:24]


def free_port(host: str) -> int:
    """A port that was free on ``host`` a moment ago (for ``--port 0``)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class DenoApp:
    """The Deno subprocess of one ``kvshim run`` and the database service it talks to."""

    def __init__(
        self,
        app: str,
        project_dir: Path,
        host: str,
        port: int,
        environ: Mapping[str, str],
        reporter: Reporter,
    ) -> None:
        self.app_path = (project_dir / app).resolve()
        self.project_dir = project_dir
        self.port = port or free_port(host)
        self.environ = environ
        self.reporter = reporter
        self.token = secrets.token_urlsafe(32)
        self.service: DatabaseService | None = None
        self._process: asyncio.subprocess.Process | None = None
        self._exit_watch: asyncio.Task[None] | None = None

    async def start(self, timeline: Timeline, database_url: str) -> None:
        """Start the service and the Deno app on ``database_url``."""
        if not self.app_path.is_file():
            raise AppLoadError(f"App file not found: {self.app_path}")
        deno = find_deno()
        self.service = DatabaseService(access_token=self.token, environ=dict(self.environ))
        await self.service.start()
        await self._spawn(deno, timeline, database_url)

    async def restart(self, timeline: Timeline, database_url: str) -> None:
        """Stop the Deno app and start it again (new code, or another timeline's database)."""
        await self._terminate()
        await self._spawn(find_deno(), timeline, database_url)

    async def close(self) -> None:
        """Stop the Deno app, then the service."""
        await self._terminate()
        if self.service is not None:
            await self.service.stop()

    async def _spawn(self, deno: str, timeline: Timeline, database_url: str) -> None:
        assert self.service is not None
        name = service_name(timeline)
        self.service.add_database(name, database_url)
        env = {
            **self.environ,
            "DENO_KV_DEFAULT_PATH": self.service.database_url(name),
            "DENO_KV_ACCESS_TOKEN": self.token,
            "DENO_TIMELINE": timeline.name,
            TIMELINE_VARIABLE: timeline.name,
            "PORT": str(self.port),
        }
        command = [deno, "run", "--unstable-kv", "-A", str(self.app_path)]
        self._process = await asyncio.create_subprocess_exec(
            *command, env=env, cwd=self.project_dir
        )
        self.reporter.info(f"Deno app {self.app_path.name} on port {self.port}")
        self._exit_watch = asyncio.ensure_future(self._report_exit(self._process))

    async def _report_exit(self, process: asyncio.subprocess.Process) -> None:
        code = await process.wait()
        self.reporter.error(f"The Deno app exited with code {code}; waiting for the next edit.")

    async def _terminate(self) -> None:
        process, self._process = self._process, None
        if self._exit_watch is not None:
            self._exit_watch.cancel()
            self._exit_watch = None
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
        try:
            await asyncio.wait_for(process.wait(), STOP_TIMEOUT)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
