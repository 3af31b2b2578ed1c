"""Start and stop a real ``kvshim serve`` subprocess (shared by conftest and the server tests)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import IO

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class KvConnectServer:
    """A running ``kvshim serve`` subprocess: its base URL and server-wide access token."""

    url: str
    token: str
    process: subprocess.Popen[str]


def start_kv_connect_server(
    *args: str, token: str | None = None, stderr: IO[str] | None = None
) -> KvConnectServer:
    """Start ``python -m kvshim serve --port 0 ARGS`` and wait for its ``Listening on`` line."""
    token = token or f"test-{uuid.uuid4().hex}"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "KVSHIM_ACCESS_TOKEN": token}
    process = subprocess.Popen(
        [sys.executable, "-m", "kvshim", "serve", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        env=env,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line.startswith("Listening on "):
        process.kill()
        raise RuntimeError(f"kvshim serve did not start: {line!r}")
    return KvConnectServer(line.removeprefix("Listening on ").strip(), token, process)


def stop_kv_connect_server(server: KvConnectServer) -> None:
    """Terminate the server subprocess and wait for it."""
    server.process.terminate()
    try:
        server.process.wait(10)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()
    assert server.process.stdout is not None
    server.process.stdout.close()
