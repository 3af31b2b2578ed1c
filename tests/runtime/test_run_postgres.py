"""``kvshim run`` on an app whose assigned database instance lives in PostgreSQL: the real CLI
(``kvshim db`` and ``kvshim run`` subprocesses) against a real embedded PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kvshim_process import Running

from tests.runtime.test_run_e2e import COUNTER, _db

Git = Callable[..., str]


def test_use_assigned_and_deployed_runs_land_on_postgres(
    repo: Path, git: Git, tmp_path: Path, postgres_server: Any
) -> None:
    (repo / "app.py").write_text(COUNTER)
    git("add", "app.py")
    git("commit", "-q", "-m", "counter")
    location = str(postgres_server.create_database("run"))
    home = tmp_path / "home"
    env = {"KVSHIM_HOME": str(home)}
    _db(repo, home, "provision", "pg", "--location", location)
    _db(repo, home, "assign", "pg", "--app", repo.name)

    runs = []
    try:
        runs.append(Running(repo, "app.py", "--use-assigned", env=env))
        assert [runs[-1].count() for _ in range(2)] == [1, 2]
        assert runs[-1].stop() == 0
        runs.append(Running(repo, "app.py", "--deployed", env=env))
        assert runs[-1].count() == 1  # production is a database (a schema) of its own
        assert runs[-1].stop() == 0
    finally:
        for run in runs:
            run.close()
    status = json.loads(_db(repo, home, "status", "pg", "--json"))
    keys = {d["timeline"]: d["keys"] for d in status["databases"]}
    assert keys == {"git-branch/main": 1, "production": 1}
    assert postgres_server.schemas(location) == {
        f"kv_{repo.name}__main",
        f"kv_{repo.name}_production",
    }
