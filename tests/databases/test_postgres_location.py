"""``kvshim db`` on a PostgreSQL location: each timeline database is a schema of one PostgreSQL
database, through the real CLI against a real (embedded) PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

import kvshim
from kvshim.backends.pg_location import schema_for
from tests.databases.conftest import Cli
from tests.databases.support import ALL_ENCODINGS, encodings, entries, fill


@pytest.fixture
def location(postgres_server: Any) -> str:
    """A fresh PostgreSQL database (instances at one location share its schemas)."""
    return str(postgres_server.create_database("loc"))


async def _write(url: str, key: str, value: Any) -> None:
    kv = await kvshim.open_kv(url)
    try:
        await kv.set([key], value)
    finally:
        await kv.close()


def test_timeline_databases_are_schemas_with_status_and_delete(
    cli: Cli, postgres_server: Any, location: str
) -> None:
    cli("provision", "pg", "--location", location)
    cli("assign", "pg", "--app", "shop")
    prod = cli.json("provision-timeline", "--app", "shop", "--timeline", "production")
    branch = cli.json("provision-timeline", "--app", "shop", "--timeline", "git-branch/fix/x")
    assert prod["url"].endswith("schema=kv_shop_production")
    assert f"schema={schema_for(branch['name'])}" in branch["url"]
    assert postgres_server.schemas(location) == {
        "kv_shop_production",
        schema_for(branch["name"]),
    }
    asyncio.run(_write(prod["url"], "a", "x" * 10))
    asyncio.run(_write(prod["url"], "b", 1))

    status = cli.json("status", "pg")
    assert status["state"] == "Connected" and status["location"] == location
    by_name = {d["name"]: d for d in status["databases"]}
    assert by_name["shop-production"]["keys"] == 2 and by_name["shop-production"]["bytes"] > 10
    assert by_name[branch["name"]]["keys"] == 0 and by_name[branch["name"]]["state"] == "Connected"

    refused = cli("delete", "pg", code=3)
    assert "shop-production" in refused.output
    assert len(postgres_server.schemas(location)) == 2
    cli("delete", "pg", "--yes")
    assert postgres_server.schemas(location) == set()
    cli("status", "pg", code=4)


def test_backup_restore_copy_are_exact(cli: Cli, location: str, tmp_path: Path) -> None:
    cli("provision", "pg", "--location", location)
    cli("assign", "pg", "--app", "shop")
    url = cli.json("provision-timeline", "--app", "shop", "--timeline", "production")["url"]
    fill(url)
    original = entries(url)
    assert encodings(original) == ALL_ENCODINGS
    assert sum(e.expire_at_ms is not None for e in original) == 1

    out = tmp_path / "shop.ndjson"
    cli("backup", "pg", "--app", "shop", "-o", str(out))
    assert json.loads(out.read_text().splitlines()[0])["exact"] is True
    cli("restore", "pg", str(out), "--app", "shop", "--timeline", "git-branch/restored")
    cli("copy", "pg", "--app", "shop", "--from", "production", "--to", "preview")
    by_name = {d["name"]: d["url"] for d in cli.json("status", "pg")["databases"]}
    assert entries(by_name["shop--restored"]) == original
    assert entries(by_name["shop-preview"]) == original

    async def next_stamp(url: str) -> str:
        kv = await kvshim.open_kv(url)
        try:
            return str((await kv.set(["new"], 1)).versionstamp)
        finally:
            await kv.close()

    newest = max(e.versionstamp for e in original).hex()
    assert asyncio.run(next_stamp(by_name["shop--restored"])) > newest


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


def test_prune_drops_the_schemas_of_deleted_branches(
    cli: Cli, postgres_server: Any, location: str
) -> None:
    repo = cli.cwd
    _git(repo, "init", "-b", "main")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@e", "commit", "--allow-empty", "-m", "x")
    cli("provision", "pg", "--location", location)
    cli("assign", "pg", "--app", "shop")
    for timeline in ("git-branch/main", "git-branch/gone"):
        cli("provision-timeline", "--app", "shop", "--timeline", timeline)
    assert cli.json("prune", "pg", "--app", "shop", "--yes")["databases"] == ["shop--gone"]
    assert postgres_server.schemas(location) == {schema_for("shop--main")}


def test_a_dropped_schema_is_an_error_and_not_recreated_empty(
    cli: Cli, postgres_server: Any, location: str
) -> None:
    cli("provision", "pg", "--location", location)
    cli("assign", "pg", "--app", "shop")
    cli("provision-timeline", "--app", "shop", "--timeline", "production")
    database = location.split("?")[0].rsplit("/", 1)[1]
    postgres_server.psql(f"\\c {database}\nDROP SCHEMA kv_shop_production CASCADE;")
    status = cli.json("status", "pg", code=7)
    assert status["state"] == "Error"
    assert "kv_shop_production" in status["databases"][0]["error"]
    assert "is missing" in cli("fix", "pg", code=1).output
    assert postgres_server.schemas(location) == set()


def test_bad_postgres_locations_are_refused(cli: Cli, location: str) -> None:
    named = cli("provision", "pg", "--location", location + "&schema=x", code=2)
    assert "Remove '?schema='" in named.output
    assert "not supported" in cli("provision", "pg", "--location", "mysql://h/db", code=2).output
    unreachable = "postgresql://nobody@127.0.0.1:1/db"
    cli("provision", "down", "--location", unreachable)
    cli("assign", "down", "--app", "shop")
    failed = cli("provision-timeline", "--app", "shop", "--timeline", "production", code=1)
    assert "could not be created" in failed.output
