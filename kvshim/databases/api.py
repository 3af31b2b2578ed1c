"""``Databases``: provision database instances, assign them to apps, and manage the one database
per timeline each assignment gets. ``kvshim db ...`` is a thin layer over this class.
"""

from __future__ import annotations

import builtins
import functools
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from kvshim.backends import Backend
from kvshim.backends.raw import count_entries, delete_all, is_exact, iter_entries
from kvshim.databases import _sync, naming, queries, storage, tokens, transfer
from kvshim.databases.backup import BackupHeader, read_entries, read_header
from kvshim.databases.branches import existing_branches
from kvshim.databases.home import INSTANCES_DIR, REGISTRY_FILE, data_home
from kvshim.databases.registry import DatabaseRecord, Instance, Registry, TokenRecord, now_ms
from kvshim.databases.safety import refuse_delete, refuse_non_empty
from kvshim.errors import (
    BackendError,
    DatabaseNotFoundError,
    KvError,
    KvValueError,
    TimelineError,
)

State = Literal["Creating", "Connected", "Error", "Unassigned"]
ENGINES = ("kv",)


@dataclass(frozen=True, slots=True)
class DatabaseStatus:
    """One timeline database: its state, and its size when it could be read."""

    instance: str
    name: str
    app: str
    timeline: str
    state: State
    error: str | None
    keys: int | None
    bytes: int | None
    url: str

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {field: getattr(self, field) for field in self.__slots__}


@dataclass(frozen=True, slots=True)
class InstanceStatus:
    """An instance, its apps, its overall state and each of its timeline databases."""

    name: str
    engine: str
    location: str
    state: State
    apps: tuple[str, ...]
    databases: tuple[DatabaseStatus, ...]

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        body: dict[str, Any] = {"name": self.name, "engine": self.engine}
        body |= {"location": self.location, "state": self.state, "apps": list(self.apps)}
        body["databases"] = [d.to_json() for d in self.databases]
        return body


class Databases:
    """The database instances recorded in the registry of a kvshim data folder."""

    def __init__(
        self, home: str | os.PathLike[str] | None = None, *, environ: Mapping[str, str] = os.environ
    ) -> None:
        self.home = Path(home) if home is not None else data_home(environ)
        self.environ = environ
        self.registry = Registry(self.home / REGISTRY_FILE)

    # -- instances -------------------------------------------------------------------------

    def provision(self, name: str, *, engine: str = "kv", location: str | None = None) -> Instance:
        """Create a database instance: a folder of SQLite files (default
        ``<home>/instances/<name>``), ``memory:``, or a ``kvshim serve`` URL."""
        naming.check_instance_name(name)
        if engine not in ENGINES:
            raise KvValueError(f"Unsupported engine {engine!r}: supported: {', '.join(ENGINES)}")
        where = location if location is not None else str(self.home / INSTANCES_DIR / name)
        instance = Instance(name, engine, storage.normalise_location(where), now_ms())
        with self.registry.write() as conn:
            queries.insert_instance(conn, instance)
            storage.make_folder(instance.location)
        return instance

    def assign(self, name: str, app: str) -> str:
        """Assign instance ``name`` to ``app`` (an app has one instance at most); the app's
        registry name. Assigning again after ``unassign`` gets the same databases back."""
        app_name = naming.app_slug(app)
        with self.registry.write() as conn:
            queries.instance(conn, name)
            current = queries.assigned_instance(conn, app_name)
            if current == name:
                return app_name
            if current is not None:
                raise KvValueError(
                    f"App {app_name!r} is already assigned to {current!r}; an app can use one "
                    f"database instance: `kvshim db unassign {current} --app {app_name}` first"
                )
            queries.assign(conn, app_name, name)
        return app_name

    def unassign(self, name: str, app: str) -> str:
        """Remove ``app``'s access to instance ``name``, keeping every database and its data."""
        app_name = naming.app_slug(app)
        with self.registry.write() as conn:
            queries.instance(conn, name)
            if queries.assigned_instance(conn, app_name) != name:
                raise DatabaseNotFoundError(f"App {app_name!r} is not assigned to {name!r}")
            queries.unassign(conn, app_name)
        return app_name

    def list(self, *, probe: bool = True) -> builtins.list[InstanceStatus]:
        """Every instance with its state (reading each database's size if ``probe``)."""
        with self.registry.read() as conn:
            found = [self._snapshot(conn, i) for i in queries.instances(conn)]
        return [self._status(*item, probe=probe) for item in found]

    def status(self, name: str, *, probe: bool = True) -> InstanceStatus:
        """Instance ``name``, its apps and each timeline database with state, keys and size."""
        with self.registry.read() as conn:
            found = self._snapshot(conn, queries.instance(conn, name))
        return self._status(*found, probe=probe)

    def delete(self, name: str, *, yes: bool = False) -> builtins.list[str]:
        """Delete instance ``name`` and **all** its timeline databases and data; the names of
        the databases deleted. Refuses (``RefusedError``) unless ``yes``."""
        with self.registry.read() as conn:
            instance = queries.instance(conn, name)
            records = queries.databases(conn, name)
        if not yes:
            refuse_delete(instance, records)
        for record in records:
            _sync.run(functools.partial(storage.remove, instance, record.name, self.environ))
            with self.registry.write() as conn:
                queries.forget_database(conn, name, record.name)
        with self.registry.write() as conn:
            queries.forget_instance(conn, name)
        storage.remove_folder_if_empty(instance.location)
        return [r.name for r in records]

    # -- timeline databases ----------------------------------------------------------------

    def provision_timeline(self, app: str, timeline: str) -> DatabaseStatus:
        """Create (if needed) the database of ``app``'s ``timeline`` on its assigned instance."""
        app_name = naming.app_slug(app)
        naming.timeline_group(timeline)
        with self.registry.read() as conn:
            name = queries.assigned_instance(conn, app_name)
        if name is None:
            raise DatabaseNotFoundError(
                f"App {app_name!r} has no database assigned: `kvshim db assign NAME --app "
                f"{app_name}`"
            )
        return self.ensure_database(name, app_name, timeline)

    def database_url_for(self, app: str, timeline: str) -> str:
        """The URL of ``app``'s database for ``timeline``, created on first use."""
        return self.provision_timeline(app, timeline).url

    def ensure_database(self, name: str, app: str, timeline: str) -> DatabaseStatus:
        """The database of ``app``'s ``timeline`` on instance ``name`` (assigned or not),
        created if it does not exist yet; ``BackendError`` if creating it fails."""
        app_name = naming.app_slug(app)
        group = naming.timeline_group(timeline)
        db_name = naming.database_name(app_name, group)
        with self.registry.write() as conn:
            instance = queries.instance(conn, name)
            record = queries.ensure_database(conn, name, db_name, app_name, group)
        if record.state != "ready":
            record = self._create(instance, record)
        if record.state == "error":
            raise BackendError(f"Database {record.name!r} could not be created: {record.error}")
        url = storage.database_url(instance, record.name)
        return DatabaseStatus(
            name, record.name, app_name, group, "Connected", None, None, None, url
        )

    def fix(self, name: str) -> builtins.list[DatabaseStatus]:
        """Retry creating every database of instance ``name`` that failed or is unreachable;
        the databases retried. ``BackendError`` with every detailed reason if any fails again."""
        with self.registry.read() as conn:
            instance = queries.instance(conn, name)
        storage.make_folder(instance.location)
        status = self.status(name)
        broken = [d for d in status.databases if d.error is not None or d.state == "Creating"]
        with self.registry.read() as conn:
            records = [queries.database(conn, name, d.name) for d in broken]
        retried = [self._create(instance, r, existed=r.state == "ready") for r in records if r]
        failures = [f"{r.name}: {r.error}" for r in retried if r.state == "error"]
        if failures:
            raise BackendError("Fix failed for:\n  " + "\n  ".join(failures))
        return [d for d in self.status(name).databases if d.name in {r.name for r in retried}]

    def prune(
        self, name: str, app: str, repository: str | os.PathLike[str], *, yes: bool = False
    ) -> builtins.list[str]:
        """The branch databases of ``app`` on instance ``name`` whose branch no longer exists in
        ``repository``; deleted too if ``yes``."""
        app_name = naming.app_slug(app)
        branches = existing_branches(repository)
        with self.registry.read() as conn:
            instance = queries.instance(conn, name)
            records = [r for r in queries.databases(conn, name) if r.app == app_name]
        stale = [r for r in records if _is_stale(r, branches)]
        if yes:
            for record in stale:
                _sync.run(functools.partial(storage.remove, instance, record.name, self.environ))
                with self.registry.write() as conn:
                    queries.forget_database(conn, name, record.name)
        return [r.name for r in stale]

    # -- backup, restore, copy --------------------------------------------------------------

    def backup(
        self,
        name: str,
        app: str,
        timeline: str,
        path: str | os.PathLike[str],
        *,
        progress: transfer.Progress | None = None,
        on_total: Callable[[int], None] | None = None,
    ) -> int:
        """Write the database of ``app``'s ``timeline`` to a backup file (see
        ``kvshim.databases.backup`` for the format); the number of entries written."""
        instance, record = self._existing(name, app, timeline)

        async def run() -> int:
            backend = await storage.open_database(instance, record.name, self.environ)
            try:
                if on_total is not None:
                    on_total((await count_entries(backend))[0])
                header = BackupHeader(record.name, record.timeline, is_exact(backend), now_ms())
                return await transfer.dump(backend, Path(path), header, progress)
            finally:
                await backend.close()

        return _sync.run(run)

    def restore(
        self,
        name: str,
        app: str,
        timeline: str,
        path: str | os.PathLike[str],
        *,
        replace: bool = False,
        progress: transfer.Progress | None = None,
        on_total: Callable[[int], None] | None = None,
    ) -> int:
        """Restore a backup file into the database of ``app``'s ``timeline`` (created if
        needed); the number of entries restored. The whole file is checked before anything is
        written; a non-empty database is refused (``RefusedError``) unless ``replace``."""
        source = Path(path)
        _, total = transfer.validate(source)
        if on_total is not None:
            on_total(total)
        target = self.ensure_database(name, app, timeline)
        instance = self._instance(name)

        async def run() -> int:
            backend = await storage.open_database(instance, target.name, self.environ)
            try:
                await self._make_room(backend, target.name, "restore", replace)
                with source.open("r", encoding="utf-8") as stream:
                    read_header(stream)
                    return await transfer.load(backend, read_entries(stream), progress)
            finally:
                await backend.close()

        return _sync.run(run)

    def copy(self, name: str, app: str, source: str, target: str, *, replace: bool = False) -> int:
        """Copy every entry of ``app``'s ``source`` timeline database into its ``target``
        timeline database (created if needed); the number copied."""
        instance, record = self._existing(name, app, source)
        destination = self.ensure_database(name, app, target)
        if destination.name == record.name:
            raise KvValueError(f"{source!r} and {target!r} use the same database {record.name!r}")

        async def run() -> int:
            reader = await storage.open_database(instance, record.name, self.environ)
            writer = await storage.open_database(instance, destination.name, self.environ)
            try:
                await self._make_room(writer, destination.name, "copy", replace)
                return await transfer.load(writer, iter_entries(reader), None)
            finally:
                await reader.close()
                await writer.close()

        return _sync.run(run)

    async def _make_room(self, backend: Backend, db_name: str, action: str, replace: bool) -> None:
        if await transfer.is_empty(backend):
            return
        if not replace:
            refuse_non_empty(db_name, action)
        await delete_all(backend)

    # -- access tokens ---------------------------------------------------------------------

    def create_token(self, name: str, app: str, timeline: str) -> tuple[TokenRecord, str]:
        """A new access token for the database of ``app``'s ``timeline``: its stored record
        and the token itself, which is never shown again (only its hash is kept)."""
        _, record = self._existing(name, app, timeline)
        token_id, token = tokens.new_token()
        stored = TokenRecord(token_id, name, record.name, tokens.hash_token(token), now_ms())
        with self.registry.write() as conn:
            queries.instance(conn, name)
            queries.insert_token(conn, stored)
        return stored, token

    def list_tokens(
        self, name: str, app: str | None = None, timeline: str | None = None
    ) -> builtins.list[TokenRecord]:
        """The tokens of instance ``name`` (of one database with ``app`` and ``timeline``)."""
        with self.registry.read() as conn:
            queries.instance(conn, name)
            found = queries.tokens(conn, name)
        if app is not None and timeline is not None:
            db_name = naming.database_name(app, timeline)
            found = [t for t in found if t.database == db_name]
        return found

    def revoke_token(self, name: str, token_id: str) -> None:
        """Delete a token; ``DatabaseNotFoundError`` if instance ``name`` has no such token."""
        with self.registry.write() as conn:
            queries.instance(conn, name)
            if not queries.delete_token(conn, name, token_id):
                raise DatabaseNotFoundError(f"No token {token_id!r} on {name!r}")

    def verify_token(self, database: str, token: str) -> bool:
        """Whether ``token`` grants access to the database called ``database``."""
        with self.registry.read() as conn:
            return tokens.matches(token, queries.token_hashes(conn, database))

    # -- internals -------------------------------------------------------------------------

    def _instance(self, name: str) -> Instance:
        with self.registry.read() as conn:
            return queries.instance(conn, name)

    def _existing(self, name: str, app: str, timeline: str) -> tuple[Instance, DatabaseRecord]:
        db_name = naming.database_name(app, timeline)
        with self.registry.read() as conn:
            instance = queries.instance(conn, name)
            record = queries.database(conn, name, db_name)
        if record is None:
            raise DatabaseNotFoundError(
                f"Instance {name!r} has no database {db_name!r} (app {naming.app_slug(app)!r}, "
                f"timeline {timeline!r}); see `kvshim db status {name}`"
            )
        return instance, record

    def _create(
        self, instance: Instance, record: DatabaseRecord, *, existed: bool = False
    ) -> DatabaseRecord:
        try:
            _sync.run(
                lambda: storage.create(instance, record.name, existed=existed, environ=self.environ)
            )
            state, error = "ready", None
        except (KvError, OSError) as exc:
            state, error = "error", str(exc) or type(exc).__name__
        with self.registry.write() as conn:
            queries.set_state(conn, instance.name, record.name, state, error)
            found = queries.database(conn, instance.name, record.name)
        assert found is not None
        return found

    def _snapshot(
        self, conn: Any, instance: Instance
    ) -> tuple[Instance, builtins.list[str], builtins.list[DatabaseRecord]]:
        return (
            instance,
            queries.apps_of(conn, instance.name),
            queries.databases(conn, instance.name),
        )

    def _status(
        self,
        instance: Instance,
        apps: builtins.list[str],
        records: builtins.list[DatabaseRecord],
        *,
        probe: bool,
    ) -> InstanceStatus:
        databases = tuple(self._database_status(instance, r, apps, probe) for r in records)
        return InstanceStatus(
            instance.name,
            instance.engine,
            instance.location,
            _instance_state(apps, databases),
            tuple(apps),
            databases,
        )

    def _database_status(
        self, instance: Instance, record: DatabaseRecord, apps: builtins.list[str], probe: bool
    ) -> DatabaseStatus:
        keys = size = None
        error = record.error
        if record.state == "ready" and probe:
            try:
                keys, size = _sync.run(lambda: storage.probe(instance, record.name, self.environ))
            except (KvError, OSError) as exc:
                error = str(exc) or type(exc).__name__
        state: State
        if record.state == "creating":
            state = "Creating"
        elif error is not None:
            state = "Error"
        else:
            state = "Connected" if record.app in apps else "Unassigned"
        url = storage.database_url(instance, record.name)
        return DatabaseStatus(
            instance.name, record.name, record.app, record.timeline, state, error, keys, size, url
        )


def _instance_state(apps: builtins.list[str], databases: tuple[DatabaseStatus, ...]) -> State:
    if not apps:
        return "Unassigned"
    assigned = [d for d in databases if d.app in apps]
    if any(d.state == "Error" for d in assigned):
        return "Error"
    if any(d.state == "Creating" for d in assigned):
        return "Creating"
    return "Connected"


def _is_stale(record: DatabaseRecord, branches: set[str]) -> bool:
    branch = naming.branch_of(record.timeline)
    return branch is not None and branch not in branches


def verify_token(database: str, token: str, environ: Mapping[str, str] = os.environ) -> bool:
    """Whether ``token`` is an access token of the database called ``database`` (as created by
    ``kvshim db token create``), looked up in the registry of ``environ``'s data folder. For
    ``kvshim serve``: a token for one database never grants another."""
    return Databases(environ=environ).verify_token(database, token)


_TRUE = frozenset({"1", "true", "yes", "on"})
USE_ASSIGNED_VARIABLE = "KVSHIM_USE_ASSIGNED"


def resolve_run_database(
    app: str, timeline: str, deployed: bool, use_assigned: bool, environ: Mapping[str, str]
) -> str | None:
    """The database ``kvshim run`` gives ``app`` on ``timeline``, or ``None`` for its default
    (in-memory) one.

    Deployed runs always use the assigned instance's database for the timeline (created on
    first use) and raise ``TimelineError`` when the app has none assigned. Local runs use it
    only when asked (``use_assigned`` or ``KVSHIM_USE_ASSIGNED=1``), and then it must exist.
    """
    wanted = use_assigned or environ.get(USE_ASSIGNED_VARIABLE, "").strip().lower() in _TRUE
    if not (deployed or wanted):
        return None
    try:
        return Databases(environ=environ).database_url_for(app, timeline)
    except DatabaseNotFoundError as exc:
        why = "A deployed run needs a persistent database" if deployed else "--use-assigned"
        raise TimelineError(f"{why}: {exc}") from exc
