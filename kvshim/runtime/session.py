"""One ``kvshim run``: pick the timeline's database, serve the app, and follow code edits and
branch switches until asked to stop.

The app runs in this process, so every timeline's in-memory database (``memory:<timeline>``)
outlives code reloads and branch switches. A switch changes ``KVSHIM_KV_URL`` and
``KVSHIM_TIMELINE`` in ``environ`` and reloads the app, so both ``open_kv()`` per request and a
handle opened at app start-up land on the new timeline's database.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from aiohttp import web

from kvshim.databases.api import resolve_run_database
from kvshim.databases.naming import app_for_directory
from kvshim.errors import TimelineError
from kvshim.opening import DEFAULT_URL_VARIABLE, close_default_kvs
from kvshim.runtime.config import RunConfig
from kvshim.runtime.databases import NO_DEPLOYED_DATABASE, database_url_for, prepare_data_dir
from kvshim.runtime.deno import DENO_SUFFIXES, DenoApp, is_deno_app
from kvshim.runtime.loader import AppLoader
from kvshim.runtime.serve import AppServer, bind_socket, display_url
from kvshim.runtime.timeline import TIMELINE_VARIABLE, Timeline, git_dir, resolve_timeline
from kvshim.runtime.watchers import SOURCE_SUFFIXES, CodeChanged, HeadChanged, ProjectWatcher

APP_VARIABLE = "KVSHIM_APP"


class Reporter(Protocol):
    """Where the runtime's messages go (the CLI prints them)."""

    def info(self, message: str) -> None:
        """A normal event: listening, reloaded, switched timeline."""

    def error(self, message: str) -> None:
        """Something the user must fix (a broken edit)."""


@dataclass(frozen=True, slots=True)
class Placement:
    """A timeline and the database URL it maps to."""

    timeline: Timeline
    url: str

    def describe(self) -> str:
        """``Timeline git-branch/x, database memory:git-branch/x``."""
        return f"Timeline {self.timeline.name}, database {self.url}"


def place(config: RunConfig, environ: Mapping[str, str]) -> Placement:
    """The current timeline and its database; raises ``TimelineError``.

    An explicit ``--database`` wins; then the database assigned to the app for this timeline
    (``kvshim db assign``), always when deployed and locally with ``use_assigned``; then the
    local default (in memory, or ``.kvshim/`` with ``persist``)."""
    timeline = resolve_timeline(config.project_dir, config.timeline)
    settings = config.databases
    if not settings.database:
        app = app_for_directory(config.project_dir)
        deployed = settings.deployed
        try:
            assigned = resolve_run_database(
                app, timeline.name, deployed, config.use_assigned, environ
            )
        except TimelineError as error:
            if not deployed:
                raise
            raise TimelineError(
                f"{NO_DEPLOYED_DATABASE} Or assign a database instance to this app: "
                f"`kvshim db assign NAME --app {app}`."
            ) from error
        if assigned:
            return Placement(timeline, assigned)
    return Placement(timeline, database_url_for(timeline, settings))


class Session:
    """Serves ``config.app`` until ``stop()``; see the module docstring."""

    def __init__(
        self, config: RunConfig, environ: MutableMapping[str, str], reporter: Reporter
    ) -> None:
        self.config = config
        self.environ = environ
        self.reporter = reporter
        self.loader = AppLoader(config.app, config.project_dir)
        self.placement = place(config, environ)
        self._stopping = asyncio.Event()
        self._server: AppServer | None = None
        self.deno: DenoApp | None = None
        if is_deno_app(config.app):
            self.deno = DenoApp(
                config.app, config.project_dir, config.host, config.port, environ, reporter
            )

    def stop(self) -> None:
        """Ask the session to shut down (safe from a signal handler)."""
        self._stopping.set()

    async def run(self) -> None:
        """Bind, serve, follow changes until ``stop()``, then shut down cleanly."""
        self._enter(self.placement)
        if self.deno is not None:
            await self._run_deno(self.deno)
            return
        sock = bind_socket(self.config.host, self.config.port)
        self._server = AppServer(sock, on_error=self.reporter.error)
        try:
            await self._start_first_app()
            self.reporter.info(f"Listening on {display_url(sock)}")
            self.reporter.info(self.placement.describe())
            await self._follow_changes()
        finally:
            await self._server.close()
            await close_default_kvs()

    async def _run_deno(self, deno: DenoApp) -> None:
        """``kvshim run app.ts``: the Deno app in a subprocess (see ``kvshim.runtime.deno``)."""
        try:
            await deno.start(self.placement.timeline, self.placement.url)
            self.reporter.info(self.placement.describe())
            await self._follow_changes()
        finally:
            await deno.close()

    def _enter(self, placement: Placement) -> None:
        prepare_data_dir(self.config.databases)
        self.environ[DEFAULT_URL_VARIABLE] = placement.url
        self.environ[TIMELINE_VARIABLE] = placement.timeline.name
        # The app's name, as `kvshim db` knows it (the project's name), not the file served.
        self.environ[APP_VARIABLE] = app_for_directory(self.config.project_dir)
        self.placement = placement

    async def _start_first_app(self) -> None:
        assert self._server is not None
        try:
            await self._server.swap(await self.loader.load())
        except Exception as error:  # a load error, or whatever the app's start-up hooks raise
            if not self.config.reload:
                raise
            self.reporter.error(f"{error}\nServing an error page until the next save.")
            await self._server.swap(error_app(str(error)))

    async def _follow_changes(self) -> None:
        watcher = self._watcher()
        if watcher is None:
            await self._stopping.wait()
            return
        watcher.start()
        stopping = asyncio.ensure_future(self._stopping.wait())
        try:
            while not self._stopping.is_set():
                change = asyncio.ensure_future(watcher.next_event())
                await asyncio.wait([change, stopping], return_when=asyncio.FIRST_COMPLETED)
                if not change.done():
                    change.cancel()
                    break
                await self._handle(change.result())
        finally:
            stopping.cancel()
            watcher.stop()

    def _watcher(self) -> ProjectWatcher | None:
        follows = self.config.follows_branches
        if not (self.config.reload or follows):
            return None
        head_dir = git_dir(self.config.project_dir) if follows else None
        suffixes = DENO_SUFFIXES if self.deno is not None else SOURCE_SUFFIXES
        return ProjectWatcher(
            self.config.project_dir, head_dir, watch_code=self.config.reload, suffixes=suffixes
        )

    async def _handle(self, change: CodeChanged | HeadChanged) -> None:
        if isinstance(change, HeadChanged):
            await self._switch_if_moved()
        else:
            names = ", ".join(self._relative(p) for p in change.paths)
            self.reporter.info(f"Reloading: {names} changed")
            await self._reload()

    async def _switch_if_moved(self) -> None:
        try:
            placement = place(self.config, self.environ)
        except TimelineError as error:
            self.reporter.error(f"Cannot follow the branch switch: {error}")
            return
        if placement == self.placement:
            return
        self._enter(placement)
        self.reporter.info(f"Branch switched: {placement.describe()}")
        await self._reload()

    async def _reload(self) -> None:
        if self.deno is not None:
            await self.deno.restart(self.placement.timeline, self.placement.url)
            self.reporter.info("Reloaded")
            return
        assert self._server is not None
        try:
            app = await self.loader.load()
            await self._server.swap(app)
        except Exception as error:  # the app's start-up hooks can raise anything
            self.reporter.error(f"{error}\nStill serving the last version that loaded.")
            return
        self.reporter.info("Reloaded")

    def _relative(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.config.project_dir))
        except ValueError:
            return str(path)


def error_app(message: str) -> web.Application:
    """An app answering every request with 500 and ``message`` (the load error)."""

    async def failed(request: web.Request) -> web.Response:
        return web.Response(status=500, text=f"kvshim: the app failed to load\n\n{message}\n")

    app = web.Application()
    app.router.add_route("*", "/{path:.*}", failed)
    return app


async def run(config: RunConfig, environ: MutableMapping[str, str], reporter: Reporter) -> None:
    """Run ``config.app`` until SIGINT or SIGTERM."""
    session = Session(config, environ, reporter)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, session.stop)
    try:
        await session.run()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
