"""The registry under concurrent real processes, and when it is corrupt or not kvshim's."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from kvshim.databases import Databases
from kvshim.errors import RegistryError
from tests.databases.conftest import Cli, kvshim_command, subprocess_env


def test_concurrent_processes_provision_safely(home: Path, tmp_path: Path) -> None:
    env = subprocess_env(home)
    names = [f"db{i}" for i in range(5)] + ["same", "same"]
    procs = [
        subprocess.Popen(
            kvshim_command("provision", name, "--location", str(tmp_path / f"{name}-{i}")),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for i, name in enumerate(names)
    ]
    codes = [p.wait(timeout=60) for p in procs]
    for proc in procs:
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.close()
        proc.stderr.close()
    assert codes[:5] == [0] * 5
    assert sorted(codes[5:]) == [0, 5]  # one "same" wins, the other is told it exists
    listed = subprocess.run(
        kvshim_command("list", "--json"), env=env, capture_output=True, text=True, check=True
    )
    assert sorted(i["name"] for i in json.loads(listed.stdout)) == sorted(set(names))


def test_corrupt_registry_is_reported_and_never_overwritten(cli: Cli, home: Path) -> None:
    cli("provision", "first", "--location", "memory:")
    registry = home / "registry.sqlite3"
    for side in home.glob("registry.sqlite3-*"):
        side.unlink()
    garbage = b"this is not a SQLite database, but someone's data" * 20
    registry.write_bytes(garbage)
    for args in (("list",), ("provision", "second"), ("status", "first")):
        result = cli(*args, code=6)
        assert "corrupt" in result.output and str(registry) in result.output
    assert registry.read_bytes() == garbage


def test_a_foreign_sqlite_file_is_not_touched(home: Path) -> None:
    import sqlite3

    home.mkdir()
    foreign = home / "registry.sqlite3"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE mine (x)")
    before = foreign.read_bytes()
    with pytest.raises(RegistryError, match="not a kvshim database registry"):
        Databases(home, environ={}).provision("x", location="memory:")
    assert foreign.read_bytes() == before


def test_missing_registry_reads_as_empty_and_creates_nothing(cli: Cli, home: Path) -> None:
    assert cli.json("list") == []
    cli("status", "x", code=4)
    assert not home.exists()


def test_data_folder_that_is_a_file_is_a_clear_error(cli: Cli, home: Path) -> None:
    home.write_text("not a folder")
    result = cli("provision", "x", code=6)
    assert "not a folder" in result.output
