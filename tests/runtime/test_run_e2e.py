"""End to end: the real ``kvshim run`` in a subprocess, in a real Git repository, driven with
real HTTP requests, real ``git checkout`` and real file edits."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kvshim_process import REPO_ROOT, Running

Git = Callable[..., str]

COUNTER = """
import kvshim
from aiohttp import web

ONE = kvshim.KvU64(1)

async def handler(request):
    kv = await kvshim.open_kv()
    await kv.atomic().sum(["requests"], ONE).commit()
    res = await kv.get(["requests"])
    return web.json_response({"count": int(res.value), "tag": "v1"})
"""


@pytest.fixture
def start(repo: Path) -> Iterator[Callable[..., Running]]:
    started: list[Running] = []

    def start_(*args: str, env: dict[str, str] | None = None) -> Running:
        running = Running(repo, *args, env=env)
        started.append(running)
        return running

    yield start_
    for running in started:
        running.close()


@pytest.fixture
def app(repo: Path, git: Git) -> Path:
    path = repo / "app.py"
    path.write_text(COUNTER)
    git("add", "app.py")
    git("commit", "-q", "-m", "counter")
    git("branch", "feature")
    return path


def test_each_branch_keeps_its_own_database(start: Callable[..., Running], git: Git, app: Path):
    running = start("app.py")
    assert running.wait_for("Timeline ") == (
        "Timeline git-branch/main, database memory:git-branch/main"
    )
    assert [running.count() for _ in range(3)] == [1, 2, 3]
    git("checkout", "-q", "feature")
    running.wait_for("Branch switched: Timeline git-branch/feature", timeout=1.5)
    assert running.count() == 1
    git("checkout", "-q", "main")
    running.wait_for("Branch switched: Timeline git-branch/main", timeout=1.5)
    assert running.count() == 4
    assert running.stop() == 0


def test_reload_after_edit_and_recovery_from_a_broken_edit(
    start: Callable[..., Running], app: Path
) -> None:
    running = start("app.py")
    assert running.count() == 1
    app.write_text(COUNTER.replace('"v1"', '"v2"'))
    running.wait_for("Reloaded")
    status, body = running.get()
    assert json.loads(body) == {"count": 2, "tag": "v2"}  # new code, same database

    app.write_text(COUNTER.replace('"v1"', '"v3"') + "\ndef broken(:\n")
    running.wait_for("SyntaxError")
    running.wait_for("Still serving the last version")
    assert json.loads(running.get()[1]) == {"count": 3, "tag": "v2"}

    app.write_text(COUNTER.replace('"v1"', '"v4"').replace("import kvshim", "import kvshim, nope"))
    running.wait_for("ModuleNotFoundError: No module named 'nope'")

    app.write_text(COUNTER.replace('"v1"', '"v5"'))
    running.wait_for("Reloaded")
    assert json.loads(running.get()[1]) == {"count": 4, "tag": "v5"}
    assert running.stop() == 0


def test_app_shapes_and_a_sibling_module_edit(start: Callable[..., Running], repo: Path) -> None:
    (repo / "greeting.py").write_text("TEXT = 'hello'\n")
    (repo / "web_app.py").write_text(
        "from aiohttp import web\nimport greeting\n\n"
        "def create_app():\n"
        "    app = web.Application()\n"
        "    async def hi(request):\n"
        "        return web.Response(text=greeting.TEXT)\n"
        "    app.router.add_get('/hi', hi)\n"
        "    return app\n"
    )
    running = start("web_app:create_app")
    assert running.get("/hi") == (200, "hello")
    assert running.get("/nope")[0] == 404
    (repo / "greeting.py").write_text("TEXT = 'bonjour'\n")
    running.wait_for("Reloading: greeting.py changed")
    running.wait_for("Reloaded")
    assert running.get("/hi") == (200, "bonjour")


def test_the_app_is_told_its_database_timeline_and_name(
    start: Callable[..., Running], repo: Path
) -> None:
    (repo / "pyproject.toml").write_text('[project]\nname = "env-demo"\n')
    (repo / "env_app.py").write_text(
        "import os\nfrom aiohttp import web\n\n"
        "async def handler(request):\n"
        "    names = ('KVSHIM_KV_URL', 'KVSHIM_TIMELINE', 'KVSHIM_APP')\n"
        "    return web.json_response({n: os.environ.get(n) for n in names})\n"
    )
    status, body = start("env_app.py").get()
    assert status == 200
    assert json.loads(body) == {
        "KVSHIM_KV_URL": "memory:git-branch/main",
        "KVSHIM_TIMELINE": "git-branch/main",
        "KVSHIM_APP": "env-demo",  # the name `kvshim db --app` uses, not the file served
    }


def test_broken_app_at_start_serves_an_error_page(start: Callable[..., Running], repo: Path):
    (repo / "app.py").write_text("raise RuntimeError('boom at import')\n")
    running = start("app.py")
    status, body = running.get()
    assert status == 500 and "boom at import" in body
    (repo / "app.py").write_text(COUNTER)
    running.wait_for("Reloaded")
    assert running.count() == 1


def test_deployed_without_a_database_refuses_to_start(repo: Path, app: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "kvshim", "run", "app.py", "--deployed", "--port", "0"],
        cwd=repo,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode != 0
    assert "needs a persistent database" in done.stderr
    assert "--database URL" in done.stderr


def test_timeline_command(repo: Path, git: Git) -> None:
    git("checkout", "-q", "-b", "feat/x")

    def timeline(*args: str) -> str:
        return subprocess.run(
            [sys.executable, "-m", "kvshim", "timeline", *args],
            cwd=repo,
            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout

    assert timeline() == "timeline: git-branch/feat/x\ndatabase: memory:git-branch/feat/x\n"
    persisted = timeline("--persist").splitlines()[1]
    assert persisted.startswith(f"database: {repo.resolve() / '.kvshim' / 'git-branch--feat--x-'}")


@pytest.mark.skipif(
    importlib.util.find_spec("kvshim.backends.sqlite") is None,
    reason="the SQLite backend (kvshim.backends.sqlite) is not in this checkout yet",
)
def test_persist_keeps_each_timeline_in_its_own_file(
    start: Callable[..., Running], repo: Path, git: Git, app: Path
) -> None:
    running = start("app.py", "--persist")
    assert [running.count() for _ in range(2)] == [1, 2]
    git("checkout", "-q", "feature")
    running.wait_for("Branch switched", timeout=1.5)
    assert running.count() == 1
    assert running.stop() == 0
    files = sorted(p.name for p in (repo / ".kvshim").glob("*.sqlite3"))
    assert len(files) == 2 and files[0].startswith("git-branch--feature-")
    assert git("status", "--porcelain") == ""  # .kvshim/ is ignored by Git

    restarted = start("app.py", "--persist")  # on feature: its file still holds 1
    assert restarted.count() == 2


def _db(repo: Path, home: Path, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "kvshim", "db", *args],
        cwd=repo,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT), "KVSHIM_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_use_assigned_database_and_deployed_runs(
    app: Path, repo: Path, tmp_path: Path, start: Callable[..., Running]
) -> None:
    home, location = tmp_path / "home", tmp_path / "dbs"
    env = {"KVSHIM_HOME": str(home)}
    refused = subprocess.run(
        [sys.executable, "-m", "kvshim", "run", "app.py", "--deployed", "--port", "0"],
        cwd=repo,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode != 0
    assert "--database" in refused.stderr and "kvshim db assign" in refused.stderr

    _db(repo, home, "provision", "shop", "--location", str(location))
    _db(repo, home, "assign", "shop", "--app", repo.name)
    local = start("app.py", "--use-assigned", env=env)
    assert [local.count() for _ in range(2)] == [1, 2]
    assert local.stop() == 0
    deployed = start("app.py", "--deployed", env=env)
    assert deployed.count() == 1  # production is a database of its own
    assert deployed.stop() == 0
    status = json.loads(_db(repo, home, "status", "shop", "--json"))
    assert len(list(location.glob("*.sqlite3"))) == 2, status
