"""Access tokens, pruning against a real Git repository, and the database ``kvshim run`` uses."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from kvshim.databases import Databases, resolve_run_database, verify_token
from kvshim.errors import TimelineError
from tests.databases.conftest import Cli


def test_tokens_are_shown_once_stored_hashed_and_scoped(
    cli: Cli, home: Path, instance_name: str
) -> None:
    cli("provision", instance_name, "--location", "memory:")
    cli("assign", instance_name, "--app", "shop")
    for timeline in ("production", "git-branch/x"):
        cli("provision-timeline", "--app", "shop", "--timeline", timeline)
    made = cli.json("token", "create", instance_name, "--app", "shop")
    other = cli.json(
        "token", "create", instance_name, "--app", "shop", "--timeline", "git-branch/x"
    )
    environ = {"KVSHIM_HOME": str(home)}
    assert made["database"] == "shop-production" and made["token"].startswith("kvshim_")
    assert verify_token("shop-production", made["token"], environ)
    assert not verify_token("shop--x", made["token"], environ)
    assert verify_token("shop--x", other["token"], environ)
    assert not verify_token("shop-production", made["token"] + "x", environ)
    assert made["token"].encode() not in (home / "registry.sqlite3").read_bytes()

    listed = cli.json("token", "list", instance_name)
    assert {t["id"] for t in listed} == {made["id"], other["id"]}
    assert all("token" not in t for t in listed)
    cli("token", "revoke", instance_name, made["id"])
    assert not verify_token("shop-production", made["token"], environ)
    cli("token", "revoke", instance_name, made["id"], code=4)
    cli("token", "create", instance_name, "--app", "shop", "--timeline", "preview", code=4)


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


def test_prune_lists_then_deletes_databases_of_deleted_branches(
    cli: Cli, instance_name: str
) -> None:
    repo = cli.cwd
    _git(repo, "init", "-b", "main")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@e", "commit", "--allow-empty", "-m", "x")
    _git(repo, "branch", "feature/kept")
    cli("provision", instance_name, "--location", "memory:")
    cli("assign", instance_name, "--app", "shop")
    for timeline in ("production", "git-branch/main", "git-branch/feature/kept", "git-branch/gone"):
        cli("provision-timeline", "--app", "shop", "--timeline", timeline)

    listed = cli.json("prune", instance_name, "--app", "shop")
    assert listed == {"databases": ["shop--gone"], "deleted": False}
    assert len(cli.json("status", instance_name)["databases"]) == 4
    cli("prune", instance_name, "--app", "shop", "--yes")
    names = {d["name"] for d in cli.json("status", instance_name)["databases"]}
    assert "shop--gone" not in names and "shop-production" in names and len(names) == 3


def test_prune_outside_a_repository_is_an_error(cli: Cli, instance_name: str) -> None:
    cli("provision", instance_name, "--location", "memory:")
    assert "not inside a Git repository" in cli("prune", instance_name, code=2).output


def test_resolve_run_database(home: Path, instance_name: str) -> None:
    environ = {"KVSHIM_HOME": str(home)}
    assert resolve_run_database("shop", "git-branch/x", False, False, environ) is None
    with pytest.raises(TimelineError, match="deployed run needs a persistent database"):
        resolve_run_database("shop", "production", True, False, environ)
    with pytest.raises(TimelineError, match="--use-assigned"):
        resolve_run_database("shop", "git-branch/x", False, True, environ)

    dbs = Databases(environ=environ)
    dbs.provision(instance_name, location="memory:")
    dbs.assign(instance_name, "shop")
    assert resolve_run_database("shop", "git-branch/x", False, False, environ) is None
    url = resolve_run_database("shop", "git-branch/x", False, True, environ)
    assert url == f"memory:kvshim/{instance_name}/shop--x"
    by_config = resolve_run_database(
        "shop", "git-branch/x", False, False, {**environ, "KVSHIM_USE_ASSIGNED": "1"}
    )
    assert by_config == url
    deployed = resolve_run_database("shop", "production", True, False, environ)
    assert deployed == f"memory:kvshim/{instance_name}/shop-production"
