"""Folder instances: one real SQLite file per timeline database, through separate processes.

These need the SQLite backend (another branch); until it is merged they skip.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.databases.conftest import kvshim_command, subprocess_env
from tests.databases.support import entries, fill, sqlite_available

pytestmark = pytest.mark.skipif(
    not sqlite_available(), reason="the SQLite backend is not merged into this branch yet"
)


def _db(home: Path, *args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        kvshim_command(*args), env=subprocess_env(home), capture_output=True, text=True
    )
    assert done.returncode == code, done.stderr
    return done


def test_files_per_timeline_backup_restore_and_delete(home: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    _db(home, "provision", "files", "--location", str(data))
    _db(home, "assign", "files", "--app", "shop")
    made = json.loads(
        _db(
            home, "provision-timeline", "--app", "shop", "--timeline", "production", "--json"
        ).stdout
    )
    assert made["url"] == str(data / "shop-production.sqlite3")
    fill(made["url"])
    original = entries(made["url"])

    status = json.loads(_db(home, "status", "files", "--json").stdout)
    assert status["state"] == "Connected" and status["databases"][0]["keys"] == len(original)

    out = tmp_path / "b.ndjson"
    _db(home, "backup", "files", "--app", "shop", "-o", str(out))
    _db(home, "restore", "files", str(out), "--app", "shop", "--timeline", "git-branch/r")
    assert entries(str(data / "shop--r.sqlite3")) == original

    _db(home, "delete", "files", code=3)
    _db(home, "delete", "files", "--yes")
    assert not data.exists()


def test_a_missing_database_file_is_an_error_not_a_silent_empty_database(
    home: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    _db(home, "provision", "files", "--location", str(data))
    _db(home, "assign", "files", "--app", "shop")
    _db(home, "provision-timeline", "--app", "shop", "--timeline", "production")
    (data / "shop-production.sqlite3").unlink()
    status = json.loads(_db(home, "status", "files", "--json", code=7).stdout)
    assert "missing" in status["databases"][0]["error"]
    assert "restore it from a backup" in _db(home, "fix", "files", code=1).stderr
    assert not (data / "shop-production.sqlite3").exists()
