"""bench/kv_bench.py still runs: every workload, its correctness checks, the side-by-side table.

These check that the benchmark works (a tiny n), never how fast anything is.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from kvshim.runtime.deno import locate_deno

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "bench" / "kv_bench.py"
WORKLOADS = [
    "set_seq",
    "get_seq",
    "get_many",
    "list_all",
    "atomic_counter_seq",
    "sum_concurrent",
    "set_concurrent",
    "delete_seq",
]


def _run(*args: str) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DENO_NO_UPDATE_CHECK": "1"}
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--n", "64", "--rounds", "2", "--json", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=100,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_kvshim_side_runs_every_workload_with_its_checks() -> None:
    result = _run("--no-deno")
    assert [row["workload"] for row in result["summary"]] == WORKLOADS
    assert all(
        row["ok"] and row["kvshim"] > 0 and row["ratio"] is None for row in result["summary"]
    )
    first = result["rounds"][0]["kvshim"]
    assert first["list_all"]["ops"] == 64
    assert first["get_many"]["keys"] == 60
    assert first["sum_concurrent"]["final"] == "64"


def test_file_url_gives_each_side_a_fresh_file_and_removes_it(tmp_path: Path) -> None:
    result = _run("--no-deno", "--url", str(tmp_path / "kv.sqlite3"))
    assert all(row["ok"] for row in result["summary"])
    assert list(tmp_path.iterdir()) == []


@pytest.mark.deno
def test_deno_side_runs_alongside_and_gives_ratios() -> None:
    if locate_deno() is None:
        pytest.skip("the deno binary is not installed (pip install deno)")
    result = _run()
    assert len(result["rounds"]) == 2 and all("deno" in r for r in result["rounds"])
    for row in result["summary"]:
        assert row["ok"] and row["deno"] > 0
        ratios = [
            r["kvshim"][row["workload"]]["ops_per_s"] / r["deno"][row["workload"]]["ops_per_s"]
            for r in result["rounds"]
        ]
        assert row["ratio"] == pytest.approx(sum(ratios) / 2)  # the median of two rounds


def test_writer_processes_on_postgres(postgres_server: Any) -> None:
    url = postgres_server.url()
    result = _run("--no-deno", "--url", url, "--processes", "2")
    assert all(row["ok"] for row in result["summary"])
    for round_ in result["rounds"]:
        for workload in ("sum_concurrent", "set_concurrent"):
            assert round_["kvshim"][workload]["processes"] == 2
        assert round_["kvshim"]["sum_concurrent"]["final"] == "64"  # both writers' sums


def test_processes_need_a_shared_database() -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--processes", "2"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "--processes needs a database" in done.stderr
