"""``kvshim run app.ts``: examples/counter.ts under the real runtime, in a real Git repository,
with a real Deno, real edits and a real ``git checkout``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from kvshim_process import REPO_ROOT, KvshimProcess

import kvshim
from kvshim.runtime.deno import find_deno

COUNTER = REPO_ROOT / "examples" / "counter.ts"


class DenoRun(KvshimProcess):
    """A ``kvshim run app.ts --persist --port 0`` subprocess and its output lines."""

    def __init__(self, cwd: Path) -> None:
        env = {"NO_COLOR": "1", "DENO_DIR": str(cwd.parent / "deno_dir")}
        super().__init__(cwd, "run", "app.ts", "--persist", "--port", "0", env=env)
        line = self.wait_for("Deno app app.ts on port ", timeout=30)
        self.url = f"http://127.0.0.1:{line.rsplit(' ', 1)[1]}/"

    def get(self) -> dict[str, int]:
        with urllib.request.urlopen(self.url, timeout=10) as response:
            return dict(json.loads(response.read()))

    def close(self) -> None:
        self.stop()
        super().close()


def database_of(repo: Path) -> str:
    """The database ``kvshim timeline --persist`` reports for the checkout (as a Python app
    under ``kvshim run --persist`` would use)."""
    result = subprocess.run(
        [sys.executable, "-m", "kvshim", "timeline", "--persist"],
        cwd=repo,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.split("database: ", 1)[1].strip()


@pytest.mark.deno
async def test_counter_ts_under_kvshim_run(repo: Path, git: Any) -> None:
    try:
        find_deno()
    except kvshim.AppLoadError:
        pytest.skip("the deno binary is not installed (pip install deno)")
    shutil.copy(COUNTER, repo / "app.ts")
    git("add", "app.ts")
    git("commit", "-q", "-m", "counter")
    run = DenoRun(repo)
    try:
        run.wait_for("Listening on")  # Deno.serve's own line
        assert run.get() == {"requests": 1}
        assert run.get() == {"requests": 2}
        # A Python program on the same timeline sees the Deno app's data, and the other way.
        kv = await kvshim.open_kv(database_of(repo))
        assert (await kv.get(["requests"])).value == 2
        await kv.set(["requests"], 10)
        await kv.close()
        assert run.get() == {"requests": 11}
        # An edit restarts the Deno app on the same database.
        source = (repo / "app.ts").read_text()
        (repo / "app.ts").write_text(source.replace("({ requests })", "({ requests, v: 2 })"))
        run.wait_for("Reloaded")
        run.wait_for("Listening on")
        assert run.get() == {"requests": 12, "v": 2}
        # A branch switch moves it to the new timeline's (empty) database.
        git("checkout", "-q", "-b", "feature")
        run.wait_for("Branch switched: Timeline git-branch/feature")
        run.wait_for("Listening on")
        assert run.get() == {"requests": 1, "v": 2}
    finally:
        run.close()
