"""Backup, restore and copy through the real CLI: exact round trips, refusals, bad files."""

from __future__ import annotations

import json
from pathlib import Path

from tests.databases.conftest import Cli
from tests.databases.support import ALL_ENCODINGS, encodings, entries, fill


def _instance_with_data(cli: Cli, name: str) -> str:
    cli("provision", name, "--location", "memory:")
    cli("assign", name, "--app", "shop")
    url: str = cli.json("provision-timeline", "--app", "shop", "--timeline", "production")["url"]
    fill(url)
    return url


def test_backup_then_restore_gives_back_exactly_the_same_entries(
    cli: Cli, instance_name: str, tmp_path: Path
) -> None:
    source_url = _instance_with_data(cli, instance_name)
    original = entries(source_url)
    assert encodings(original) == ALL_ENCODINGS
    assert [e.expire_at_ms is not None for e in original].count(True) == 1

    out = tmp_path / "shop.ndjson"
    assert (
        "Backed up 8 entries"
        in cli("backup", instance_name, "--app", "shop", "-o", str(out)).output
    )
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert lines[0]["format"] == "kvshim-backup" and lines[0]["exact"] is True
    assert lines[-1] == {"end": True, "entries": 8}

    cli("restore", instance_name, str(out), "--app", "shop", "--timeline", "git-branch/restored")
    restored_url = cli.json("status", instance_name)["databases"][0]["url"]
    assert restored_url != source_url
    assert entries(restored_url) == original


def test_restore_refuses_a_non_empty_database_unless_replace(
    cli: Cli, instance_name: str, tmp_path: Path
) -> None:
    url = _instance_with_data(cli, instance_name)
    out = tmp_path / "b.ndjson"
    cli("backup", instance_name, "--app", "shop", "-o", str(out))
    original = entries(url)

    refused = cli(
        "restore", instance_name, str(out), "--app", "shop", "--timeline", "production", code=3
    )
    assert "--replace" in refused.output
    assert entries(url) == original

    cli(
        "restore", instance_name, str(out), "--app", "shop", "--timeline", "production", "--replace"
    )
    assert entries(url) == original


def test_truncated_or_foreign_backups_are_refused_before_writing(
    cli: Cli, instance_name: str, tmp_path: Path
) -> None:
    _instance_with_data(cli, instance_name)
    out = tmp_path / "b.ndjson"
    cli("backup", instance_name, "--app", "shop", "-o", str(out))
    truncated = tmp_path / "t.ndjson"
    truncated.write_text("\n".join(out.read_text().splitlines()[:-2]) + "\n")
    foreign = tmp_path / "f.ndjson"
    foreign.write_text('{"hello": 1}\n')
    for bad, message in ((truncated, "truncated"), (foreign, "Not a kvshim backup")):
        result = cli(
            "restore", instance_name, str(bad), "--app", "shop", "--timeline", "local", code=1
        )
        assert message in result.output
    timelines = [d["timeline"] for d in cli.json("status", instance_name)["databases"]]
    assert timelines == ["production"]


def test_backup_into_a_missing_folder_is_a_clear_error(
    cli: Cli, instance_name: str, tmp_path: Path
) -> None:
    _instance_with_data(cli, instance_name)
    out = tmp_path / "no-such-folder" / "b.ndjson"
    result = cli("backup", instance_name, "--app", "shop", "-o", str(out), code=1)
    assert f"Cannot write the backup to {out}: No such file or directory" in result.output
    assert "Traceback" not in result.output and not out.parent.exists()


def test_copy_seeds_a_branch_from_production(cli: Cli, instance_name: str) -> None:
    url = _instance_with_data(cli, instance_name)
    result = cli(
        "copy", instance_name, "--app", "shop", "--from", "production", "--to", "git-branch/x"
    )
    assert "Copied 8 entries" in result.output
    branch = next(
        d for d in cli.json("status", instance_name)["databases"] if d["name"] == "shop--x"
    )
    assert entries(branch["url"]) == entries(url)
    cli(
        "copy",
        instance_name,
        "--app",
        "shop",
        "--from",
        "production",
        "--to",
        "git-branch/x",
        code=3,
    )
    cli(
        "copy", instance_name, "--app", "shop", "--from", "git-branch/nope", "--to", "local", code=4
    )
