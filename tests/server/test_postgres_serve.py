"""``kvshim serve --postgres``: many databases, each a schema of one PostgreSQL database, served
to kvshim and to a real Deno over KV Connect."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kv_connect_support import (
    KvConnectServer,
    start_kv_connect_server,
    stop_kv_connect_server,
)

import kvshim
from kvshim.backends.pg_location import schema_for
from kvshim.server import Databases
from tests.server.test_deno_client import exchange_values_with_deno


@pytest.fixture
def location(postgres_server: Any) -> str:
    """A fresh PostgreSQL database (instances at one location share its schemas)."""
    return str(postgres_server.create_database("loc"))


@pytest.fixture
def server(location: str) -> Iterator[KvConnectServer]:
    started = start_kv_connect_server("--postgres", location)
    yield started
    stop_kv_connect_server(started)


async def test_each_database_is_a_schema_created_on_first_use(
    server: KvConnectServer, postgres_server: Any, location: str
) -> None:
    environ = {"KVSHIM_ACCESS_TOKEN": server.token}
    for name in ("shop-production", "Other.DB"):
        kv = await kvshim.open_kv(f"{server.url}/{name}", environ=environ)
        try:
            await kv.set(["name"], name)
            assert (await kv.get(["name"])).value == name
        finally:
            await kv.close()
    assert postgres_server.schemas(location) == {"kv_shop_production", schema_for("Other.DB")}
    # the data is in PostgreSQL: a client opening the schema directly sees it
    direct = await kvshim.open_kv(f"{location}&schema=kv_shop_production")
    try:
        assert (await direct.get(["name"])).value == "shop-production"
    finally:
        await direct.close()


async def test_exists_looks_in_postgres(location: str) -> None:
    first = Databases(postgres=location)
    assert not await first.exists("app")
    async with first.use("app"):
        pass
    await first.close()
    assert await Databases(postgres=location).exists("app")  # a fresh server finds the schema
    assert not await Databases(postgres=location).exists("other")


async def test_a_named_schema_via_db(postgres_server: Any, location: str) -> None:
    served = start_kv_connect_server("--db", f"main={location}&schema=chosen")
    try:
        environ = {"KVSHIM_ACCESS_TOKEN": served.token}
        kv = await kvshim.open_kv(f"{served.url}/main", environ=environ)
        try:
            await kv.set(["k"], 1)
        finally:
            await kv.close()
    finally:
        stop_kv_connect_server(served)
    assert "chosen" in postgres_server.psql(
        f"\\c {location.split('?')[0].rsplit('/', 1)[1]}\nSELECT nspname FROM pg_namespace;"
    )


@pytest.mark.deno
async def test_deno_client_on_postgres_storage(server: KvConnectServer, tmp_path: Path) -> None:
    await exchange_values_with_deno(f"{server.url}/deno-app", server.token, tmp_path)
