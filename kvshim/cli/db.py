"""``kvshim db``: database instances and their per-timeline databases.

Each command calls the ``kvshim.databases.Databases`` method of the same name. Exit codes:
0 done, 1 failed, 2 bad usage, 3 refused (would lose data: add ``--yes`` / ``--replace``),
4 no such instance, app or database, 5 already exists, 6 registry or data folder unusable,
7 ``status``/``list`` found a database in the Error state.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import click

from kvshim.databases import Databases, DatabaseStatus, InstanceStatus
from kvshim.databases.naming import app_for_directory
from kvshim.databases.transfer import Progress
from kvshim.errors import (
    DatabaseExistsError,
    DatabaseNotFoundError,
    KvError,
    KvTypeError,
    KvValueError,
    RefusedError,
    RegistryError,
    TimelineError,
)

P = ParamSpec("P")
R = TypeVar("R")

EXIT_FAILED, EXIT_USAGE, EXIT_REFUSED, EXIT_NOT_FOUND, EXIT_EXISTS = 1, 2, 3, 4, 5
EXIT_REGISTRY, EXIT_UNHEALTHY = 6, 7
_EXIT_CODES: tuple[tuple[type[KvError], int], ...] = (
    (RefusedError, EXIT_REFUSED),
    (DatabaseNotFoundError, EXIT_NOT_FOUND),
    (DatabaseExistsError, EXIT_EXISTS),
    (RegistryError, EXIT_REGISTRY),
    # What was asked cannot be done as asked: a bad name, location or timeline.
    (KvValueError, EXIT_USAGE),
    (KvTypeError, EXIT_USAGE),
    (TimelineError, EXIT_USAGE),
)


@functools.cache
def _error_class(code: int) -> type[click.ClickException]:
    return type(f"DbError{code}", (click.ClickException,), {"exit_code": code})


def command_error(error: KvError) -> click.ClickException:
    """A library error as a ``ClickException`` carrying the exit code for its kind."""
    code = next((c for t, c in _EXIT_CODES if isinstance(error, t)), EXIT_FAILED)
    return _error_class(code)(str(error))


def _reports_errors(command: Callable[P, R]) -> Callable[P, R]:
    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except KvError as exc:
            raise command_error(exc) from exc

    return wrapper


def _app_option(command: Callable[P, R]) -> Callable[P, R]:
    return click.option(
        "--app",
        help="The app (default: the name in ./pyproject.toml, else the folder's name).",
    )(command)


def _json_option(command: Callable[P, R]) -> Callable[P, R]:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON.")(command)


def _app(app: str | None) -> str:
    return app if app else app_for_directory(Path.cwd())


def _echo_json(body: Any) -> None:
    click.echo(json.dumps(body, indent=2))


@click.group("db")
def db() -> None:
    """Database instances, assigned to apps, with one database per timeline.

    \b
    Timeline databases are named <app>-production, <app>--<branch> and
    <app>-preview; see `kvshim db provision-timeline --help` for how branch
    names map to database names.
    """


@db.command()
@click.argument("name")
@click.option("--engine", type=click.Choice(["kv"]), default="kv", show_default=True)
@click.option(
    "--location",
    help="A folder (one SQLite file per timeline database), an http(s):// kvshim serve URL, "
    "or memory:. Default: <data folder>/instances/NAME.",
)
@_json_option
@_reports_errors
def provision(name: str, engine: str, location: str | None, as_json: bool) -> None:
    """Create a database instance.

    \b
    Example: kvshim db provision shop-kv --location ./data
    """
    instance = Databases().provision(name, engine=engine, location=location)
    if as_json:
        _echo_json(
            {"name": instance.name, "engine": instance.engine, "location": instance.location}
        )
    else:
        click.echo(f"Provisioned {instance.name} ({instance.engine}) at {instance.location}")


@db.command()
@click.argument("name")
@_app_option
@_reports_errors
def assign(name: str, app: str | None) -> None:
    """Assign instance NAME to an app; its timelines get databases on first use.

    \b
    Example: kvshim db assign shop-kv --app shop
    """
    app_name = Databases().assign(name, _app(app))
    click.echo(f"Assigned {name} to app {app_name}")


@db.command()
@click.argument("name")
@_app_option
@_reports_errors
def unassign(name: str, app: str | None) -> None:
    """Remove an app's access to NAME; every database and its data is kept.

    \b
    Example: kvshim db unassign shop-kv --app shop
    """
    app_name = Databases().unassign(name, _app(app))
    click.echo(f"Unassigned {name} from app {app_name}; its databases are kept")


@db.command("list")
@_json_option
@_reports_errors
def list_(as_json: bool) -> None:
    """List instances, their apps and the state of each.

    Exits with 7 if a database is in the Error state.
    """
    found = Databases().list()
    if as_json:
        _echo_json([i.to_json() for i in found])
    else:
        for instance in found:
            _echo_instance(instance, detailed=False)
    if any(i.state == "Error" for i in found):
        sys.exit(EXIT_UNHEALTHY)


@db.command()
@click.argument("name")
@_json_option
@_reports_errors
def status(name: str, as_json: bool) -> None:
    """Show NAME's state, its apps and each timeline database with its key count and size.

    States: Creating, Connected, Error (with the reason), Unassigned. Exits with 7 if a
    database is in the Error state (`kvshim db fix NAME` retries).
    """
    found = Databases().status(name)
    if as_json:
        _echo_json(found.to_json())
    else:
        _echo_instance(found, detailed=True)
    if found.state == "Error" or any(d.state == "Error" for d in found.databases):
        sys.exit(EXIT_UNHEALTHY)


@db.command("provision-timeline")
@_app_option
@click.option("--timeline", required=True, help="production, git-branch/<b>, preview or local.")
@_json_option
@_reports_errors
def provision_timeline(app: str | None, timeline: str, as_json: bool) -> None:
    """Create the app's database for a timeline ahead of first use.

    \b
    Names: production -> <app>-production, git-branch/<b> -> <app>--<b>,
    preview/<id> -> <app>-preview (shared), local -> <app>-local. Branch and app
    names are lowercased; any character other than a-z 0-9 _ - (such as / or .)
    becomes -, and a changed or over-long name gets -<8 hex of its SHA-256>
    appended, so fix/foo -> fix-foo-1a2b3c4d never collides with fix-foo.
    Names are at most 63 bytes.

    \b
    Example: kvshim db provision-timeline --app shop --timeline git-branch/feature/x
    """
    found = Databases().provision_timeline(_app(app), timeline)
    if as_json:
        _echo_json(found.to_json())
    else:
        click.echo(f"{found.name}: {found.state} ({found.url})")


@db.command()
@click.argument("name")
@_reports_errors
def fix(name: str) -> None:
    """Retry what failed for NAME's databases; shows the detailed error if it fails again."""
    fixed = Databases().fix(name)
    click.echo(f"Fixed {len(fixed)} database(s)" if fixed else "Nothing to fix")
    for item in fixed:
        click.echo(f"  {item.name}: {item.state}")


@db.command()
@click.argument("name")
@click.option("--yes", is_flag=True, help="Really delete every timeline database and its data.")
@_reports_errors
def delete(name: str, yes: bool) -> None:
    """Delete instance NAME and ALL its timeline databases with their data.

    Refuses without --yes (exit 3), and says how to back up first.
    """
    deleted = Databases().delete(name, yes=yes)
    click.echo(f"Deleted {name} and {len(deleted)} timeline database(s)")


@db.command()
@click.argument("name")
@_app_option
@click.option("--timeline", default="production", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False), required=True)
@_reports_errors
def backup(name: str, app: str | None, timeline: str, output: str) -> None:
    """Back up one timeline database to a file (NDJSON, see `kvshim.databases.backup`).

    Keeps keys, values of every encoding, versionstamps and expiry.

    \b
    Example: kvshim db backup shop-kv --timeline production -o shop.ndjson
    """
    with _progress("Backing up") as (on_total, progress):
        count = Databases().backup(
            name, _app(app), timeline, output, progress=progress, on_total=on_total
        )
    click.echo(f"Backed up {count} entries to {output}")


@db.command()
@click.argument("name")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@_app_option
@click.option("--timeline", required=True)
@click.option("--replace", is_flag=True, help="Delete the database's entries first.")
@_reports_errors
def restore(name: str, file: str, app: str | None, timeline: str, replace: bool) -> None:
    """Restore a backup FILE into one timeline database.

    Refuses a non-empty database (exit 3) unless --replace.

    \b
    Example: kvshim db restore shop-kv --timeline git-branch/x shop.ndjson
    """
    with _progress("Restoring") as (on_total, progress):
        count = Databases().restore(
            name, _app(app), timeline, file, replace=replace, progress=progress, on_total=on_total
        )
    click.echo(f"Restored {count} entries")


@db.command()
@click.argument("name")
@_app_option
@click.option("--from", "source", required=True, help="The timeline to copy from.")
@click.option("--to", "target", required=True, help="The timeline to seed.")
@click.option("--replace", is_flag=True, help="Delete the target's entries first.")
@_reports_errors
def copy(name: str, app: str | None, source: str, target: str, replace: bool) -> None:
    """Seed one timeline's database from another's.

    \b
    Example: kvshim db copy shop-kv --from production --to git-branch/x
    """
    count = Databases().copy(name, _app(app), source, target, replace=replace)
    click.echo(f"Copied {count} entries from {source} to {target}")


@db.command()
@click.argument("name")
@_app_option
@click.option("--repo", default=".", show_default=True, help="The Git repository.")
@click.option("--yes", is_flag=True, help="Delete them (otherwise only list them).")
@_json_option
@_reports_errors
def prune(name: str, app: str | None, repo: str, yes: bool, as_json: bool) -> None:
    """List (and with --yes delete) databases of branches no longer in the repository."""
    stale = Databases().prune(name, _app(app), repo, yes=yes)
    if as_json:
        _echo_json({"databases": stale, "deleted": yes})
        return
    verb = "Deleted" if yes else "Would delete (add --yes)"
    click.echo(f"{verb}: {', '.join(stale)}" if stale else "Nothing to prune")


@db.group()
def token() -> None:
    """Access tokens for one database served by `kvshim serve`."""


@token.command("create")
@click.argument("name")
@_app_option
@click.option("--timeline", default="production", show_default=True)
@_json_option
@_reports_errors
def token_create(name: str, app: str | None, timeline: str, as_json: bool) -> None:
    """Create a token for one timeline database; it is shown once, only its hash is kept."""
    record, secret = Databases().create_token(name, _app(app), timeline)
    if as_json:
        _echo_json({"id": record.id, "database": record.database, "token": secret})
    else:
        click.echo(f"Token {record.id} for {record.database} (shown only once):\n{secret}")


@token.command("list")
@click.argument("name")
@_app_option
@click.option("--timeline", help="Only the tokens of this timeline's database.")
@_json_option
@_reports_errors
def token_list(name: str, app: str | None, timeline: str | None, as_json: bool) -> None:
    """List tokens (ids and databases, never the tokens)."""
    found = Databases().list_tokens(name, _app(app) if timeline else None, timeline)
    if as_json:
        _echo_json(
            [{"id": t.id, "database": t.database, "created_ms": t.created_ms} for t in found]
        )
        return
    for item in found:
        click.echo(f"{item.id}  {item.database}")


@token.command("revoke")
@click.argument("name")
@click.argument("token_id")
@_reports_errors
def token_revoke(name: str, token_id: str) -> None:
    """Revoke a token by its id."""
    Databases().revoke_token(name, token_id)
    click.echo(f"Revoked {token_id}")


def _echo_instance(instance: InstanceStatus, *, detailed: bool) -> None:
    apps = ", ".join(instance.apps) or "-"
    click.echo(f"{instance.name}  {instance.state}  engine={instance.engine}  apps={apps}")
    click.echo(f"  location: {instance.location}")
    for database in instance.databases if detailed else ():
        click.echo(f"  {_database_line(database)}")


def _database_line(database: DatabaseStatus) -> str:
    state = database.state if database.error is None else f"Error: {database.error}"
    size = "" if database.keys is None else f"  {database.keys} keys  {database.bytes} bytes"
    return f"{database.name}  [{database.timeline}]  {state}{size}"


@contextmanager
def _progress(
    label: str,
) -> Iterator[tuple[Callable[[int], None] | None, Progress | None]]:
    """A progress bar on stderr, only when it is a terminal."""
    if not sys.stderr.isatty():
        yield None, None
        return
    bars: list[Any] = []

    def on_total(total: int) -> None:
        bar = click.progressbar(length=total, label=label, file=sys.stderr)
        bars.append(bar.__enter__())

    try:
        yield on_total, lambda done: bars[0].update(done) if bars else None
    finally:
        for bar in bars:
            bar.__exit__(None, None, None)
