"""``python -m kvshim serve`` as a process: options, persistence in --data, quiet about secrets."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from kv_connect_support import REPO_ROOT, start_kv_connect_server, stop_kv_connect_server

import kvshim


async def test_data_dir_persists_and_logs_no_secrets(tmp_path: Path) -> None:
    data = tmp_path / "data"
    log_path = tmp_path / "server.log"
    token = "very-secret-token-value"
    with log_path.open("w") as log:
        server = start_kv_connect_server("--data", str(data), "-v", token=token, stderr=log)
        try:
            kv = await kvshim.open_kv(f"{server.url}/app", environ={"DENO_KV_ACCESS_TOKEN": token})
            await kv.set(["k"], "kept")
            await kv.close()
        finally:
            stop_kv_connect_server(server)
        assert (data / "app.sqlite3").exists()
        server = start_kv_connect_server("--data", str(data), "-v", token=token, stderr=log)
        try:
            kv = await kvshim.open_kv(f"{server.url}/app", environ={"DENO_KV_ACCESS_TOKEN": token})
            assert (await kv.get(["k"])).value == "kept"
            await kv.close()
        finally:
            stop_kv_connect_server(server)
    text = log_path.read_text()
    assert "POST /app/v2/atomic_write -> 200" in text  # one debug line per request ...
    assert token not in text  # ... and never the token


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "give --data DIR, --memory, --postgres URL or at least one --db NAME=URL"),
        (["--memory", "--postgres", "postgresql://h/d"], "exclude each other"),
        (["--memory", "--db", "novalue"], "expected NAME=URL"),
        (["--db", "../x=memory:x"], "Invalid database name"),
        (["--db", "a=memory:one", "--db", "a=memory:two"], "database 'a' is given twice"),
        # Checked before listening, not on first use:
        (["--db", "a=ftp://x"], "Cannot open database 'a' (ftp://x): Unsupported database URL"),
        (
            ["--db", "n=/nonexistent/dir/x.sqlite3"],
            "Cannot open database 'n' (/nonexistent/dir/x.sqlite3): unable to open database file",
        ),
    ],
)
def test_bad_options(args: list[str], message: str) -> None:
    result = _serve("--port", "0", *args)
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr and "Listening on" not in result.stdout


def test_a_port_in_use_is_a_clear_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = _serve("--memory", "--port", str(port), "--access-token", "t")
    assert result.returncode == 1
    assert f"Error: Cannot listen on 127.0.0.1:{port}: [Errno 98] Address already in use" in (
        result.stderr
    )
    assert "Traceback" not in result.stderr


def _serve(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kvshim", "serve", *args],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/bin:/bin"},
        timeout=60,
    )


def test_serve_mounts_the_dashboard(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "KVSHIM_HOME": str(tmp_path / "home")}
    command = [sys.executable, "-m", "kvshim", "serve", "--memory", "--port", "0"]
    process = subprocess.Popen(
        [*command, "--dashboard-port", "0", "--access-token", "t"],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline().strip() for _ in range(2)]
        dashboard = next(line for line in lines if line.startswith("Dashboard on "))
        assert any(line.startswith("Listening on http://127.0.0.1:") for line in lines)
        url = dashboard.removeprefix("Dashboard on ")
        with urllib.request.urlopen(url, timeout=10) as response:
            assert response.status == 200
            assert "Databases" in response.read().decode()
    finally:
        process.terminate()
        assert process.wait(timeout=20) == 0
        assert process.stdout is not None
        process.stdout.close()
