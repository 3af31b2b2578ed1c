"""``kvshim run APP`` and ``kvshim timeline``: serve an app on its timeline's database."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path

import click

from kvshim.errors import KvError
from kvshim.runtime.config import DEFAULT_HOST, DEFAULT_PORT, RunConfig
from kvshim.runtime.session import place, run
from kvshim.runtime.timeline import TimelineSettings


class _Echo:
    """The runtime's reporter: events to stdout, errors to stderr, flushed at once."""

    def info(self, message: str) -> None:
        click.echo(message)

    def error(self, message: str) -> None:
        click.echo(message, err=True)


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    # uvloop roughly doubles aiohttp's request rate; asyncio's own loop is the fallback where
    # uvloop is not installed (Windows) or KVSHIM_LOOP=asyncio asks for it.
    if os.environ.get("KVSHIM_LOOP", "auto") == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def _settings(
    timeline: str | None, deployed: bool | None, production_branch: str | None
) -> TimelineSettings:
    base = TimelineSettings.from_environ(os.environ)
    return TimelineSettings(
        override=timeline or base.override,
        deployed=base.deployed if deployed is None else deployed,
        production_branch=production_branch or base.production_branch,
    )


_timeline_options = [
    click.option("--timeline", help="Use this timeline instead of detecting it "
                 "(env KVSHIM_TIMELINE), e.g. git-branch/demo."),
    click.option("--deployed/--local", default=None, help="A deployed run: production on the "
                 "production branch, a persistent --database required (env KVSHIM_DEPLOYED=1)."),
    click.option("--production-branch", help="The branch deployed as production (default main; "
                 "env KVSHIM_PRODUCTION_BRANCH)."),
    click.option("--persist", is_flag=True, help="Keep each local timeline in its own SQLite "
                 "file under .kvshim/ instead of in memory."),
    click.option("--database", envvar="KVSHIM_DATABASE", help="The database URL or path to "
                 "use (required when deployed; env KVSHIM_DATABASE)."),
    click.option("--use-assigned", is_flag=True, envvar="KVSHIM_USE_ASSIGNED", help="Use the "
                 "database assigned to this app (kvshim db assign) for the timeline, also "
                 "locally (deployed runs always do)."),
]  # fmt: skip


def _with_timeline_options(command: click.decorators.FC) -> click.decorators.FC:
    for option in reversed(_timeline_options):
        command = option(command)
    return command


@click.command("run")
@click.argument("app")
@click.option("--host", default=DEFAULT_HOST, show_default=True, help="Interface to bind.")
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=click.IntRange(0, 65535),
              help="Port to bind (0 picks a free one).")  # fmt: skip
@click.option("--reload/--no-reload", default=None,
              help="Reload on code changes (default: on, off when deployed).")  # fmt: skip
@_with_timeline_options
def run_command(
    app: str,
    host: str,
    port: int,
    reload: bool | None,
    timeline: str | None,
    deployed: bool | None,
    production_branch: str | None,
    persist: bool,
    database: str | None,
    use_assigned: bool,
) -> None:
    """Serve APP on the current timeline's database.

    APP is app.py (defining app, create_app() or handler(request)), a module name, or either
    followed by :attr. Example: kvshim run examples/counter.py --port 8000
    """
    settings = _settings(timeline, deployed, production_branch)
    config = RunConfig(
        app=app,
        project_dir=Path.cwd().resolve(),
        host=host,
        port=port,
        reload=not settings.deployed if reload is None else reload,
        persist=persist,
        database=database,
        use_assigned=use_assigned,
        timeline=settings,
    )
    try:
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            runner.run(run(config, os.environ, _Echo()))
    except KvError as error:
        raise click.ClickException(str(error)) from error


@click.command("timeline")
@_with_timeline_options
def timeline_command(
    timeline: str | None,
    deployed: bool | None,
    production_branch: str | None,
    persist: bool,
    database: str | None,
    use_assigned: bool,
) -> None:
    """Print the detected timeline and the database it maps to.

    Example: kvshim timeline --persist
    """
    config = RunConfig(
        app="",
        project_dir=Path.cwd().resolve(),
        persist=persist,
        database=database,
        use_assigned=use_assigned,
        timeline=_settings(timeline, deployed, production_branch),
    )
    try:
        placement = place(config, os.environ)
    except KvError as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"timeline: {placement.timeline.name}")
    click.echo(f"database: {placement.url}")


def register(group: click.Group) -> None:
    """Add ``run`` and ``timeline`` to the ``kvshim`` group."""
    group.add_command(run_command)
    group.add_command(timeline_command)
