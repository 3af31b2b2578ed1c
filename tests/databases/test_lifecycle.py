"""The instance lifecycle through the real CLI: provision, assign, status, unassign, delete."""

from __future__ import annotations

from pathlib import Path

import pytest

from kvshim.databases import Databases
from tests.databases.conftest import Cli
from tests.databases.support import fill, sqlite_available


def test_provision_assign_and_timeline_databases(cli: Cli, instance_name: str) -> None:
    cli("provision", instance_name, "--location", "memory:")
    listed = cli.json("list")
    assert [(i["name"], i["state"], i["apps"]) for i in listed] == [
        (instance_name, "Unassigned", [])
    ]

    cli("assign", instance_name, "--app", "shop")
    cli("provision-timeline", "--app", "shop", "--timeline", "production")
    made = cli.json("provision-timeline", "--app", "shop", "--timeline", "git-branch/feature/x")
    assert made["name"].startswith("shop--feature-x-") and made["state"] == "Connected"
    cli("provision-timeline", "--app", "shop", "--timeline", "preview/abc123")
    cli("provision-timeline", "--app", "shop", "--timeline", "preview/def456")

    fill(made["url"])
    status = cli.json("status", instance_name)
    assert status["state"] == "Connected" and status["apps"] == ["shop"]
    by_name = {d["name"]: d for d in status["databases"]}
    assert set(by_name) == {"shop-production", made["name"], "shop-preview"}
    assert by_name[made["name"]]["keys"] == 8 and by_name[made["name"]]["bytes"] > 0
    assert by_name["shop-production"]["keys"] == 0


def test_unassign_keeps_data_and_reassign_gets_it_back(cli: Cli, instance_name: str) -> None:
    cli("provision", instance_name, "--location", "memory:")
    cli("assign", instance_name, "--app", "shop")
    made = cli.json("provision-timeline", "--app", "shop", "--timeline", "production")
    fill(made["url"])

    cli("unassign", instance_name, "--app", "shop")
    status = cli.json("status", instance_name)
    assert status["state"] == "Unassigned"
    assert [(d["state"], d["keys"]) for d in status["databases"]] == [("Unassigned", 8)]
    not_assigned = cli("provision-timeline", "--app", "shop", "--timeline", "production", code=4)
    assert "no database assigned" in not_assigned.output

    cli("assign", instance_name, "--app", "shop")
    again = cli.json("provision-timeline", "--app", "shop", "--timeline", "production")
    assert again["url"] == made["url"]
    assert cli.json("status", instance_name)["databases"][0]["keys"] == 8


def test_app_has_one_instance_and_default_app_is_the_project(cli: Cli, instance_name: str) -> None:
    (cli.cwd / "pyproject.toml").write_text('[project]\nname = "My.Shop"\n')
    cli("provision", instance_name, "--location", "memory:")
    cli("provision", f"{instance_name}-2", "--location", "memory:")
    assert "Assigned" in cli("assign", instance_name).output
    app = cli.json("status", instance_name)["apps"][0]
    assert app.startswith("my-shop-")  # '.' and uppercase changed the name: hash appended
    refused = cli("assign", f"{instance_name}-2", code=2)
    assert "already assigned" in refused.output


def test_delete_refuses_without_yes_and_says_how_to_back_up(cli: Cli, instance_name: str) -> None:
    cli("provision", instance_name, "--location", "memory:")
    cli("assign", instance_name, "--app", "shop")
    made = cli.json("provision-timeline", "--app", "shop", "--timeline", "production")
    fill(made["url"])
    refused = cli("delete", instance_name, code=3)
    assert "--yes" in refused.output and "kvshim db backup" in refused.output
    assert cli.json("status", instance_name)["databases"][0]["keys"] == 8

    cli("delete", instance_name, "--yes")
    cli("status", instance_name, code=4)
    assert cli.json("list") == []


def test_errors_have_their_own_exit_codes(cli: Cli, instance_name: str) -> None:
    cli("status", "nope", code=4)
    cli("provision", "Bad Name!", code=2)
    cli("provision", instance_name, "--location", "memory:")
    cli("provision", instance_name, "--location", "memory:", code=5)
    cli("provision", "my", "--location", "mysql://x/y", code=2)
    cli("provision", "my", "--location", "http://", code=2)
    cli("provision-timeline", "--app", "a", "--timeline", "nonsense", code=2)


def test_creation_failure_shows_error_and_fix_retries(cli: Cli, tmp_path: Path) -> None:
    data = tmp_path / "data"
    cli("provision", "files", "--location", str(data))
    cli("assign", "files", "--app", "shop")
    data.rmdir()
    data.write_text("a file where the data folder should be")
    failed = cli("provision-timeline", "--app", "shop", "--timeline", "production", code=1)
    assert "could not be created" in failed.output and str(data) in failed.output
    status = cli.json("status", "files", code=7)
    assert status["state"] == "Error" and "data folder" in status["databases"][0]["error"]
    assert "Cannot create the data folder" in cli("fix", "files", code=1).output

    data.unlink()
    if not sqlite_available():
        pytest.skip("the SQLite backend is not merged yet: fix cannot create the file")
    assert "shop-production: Connected" in cli("fix", "files").output
    assert cli.json("status", "files")["state"] == "Connected"


def test_every_command_has_help(cli: Cli) -> None:
    commands = [
        "provision", "assign", "unassign", "list", "status", "provision-timeline", "fix",
        "delete", "backup", "restore", "copy", "prune", "token", "token create",
        "token list", "token revoke",
    ]  # fmt: skip
    for command in commands:
        result = cli(*command.split(), "--help")
        assert "Usage:" in result.output and len(result.output.splitlines()) > 4, command


def test_api_and_cli_agree(home: Path, cli: Cli, instance_name: str) -> None:
    dbs = Databases(home, environ={})
    dbs.provision(instance_name, location="memory:")
    dbs.assign(instance_name, "shop")
    url = dbs.database_url_for("shop", "git-branch/main")
    assert cli.json("status", instance_name)["databases"][0]["url"] == url
