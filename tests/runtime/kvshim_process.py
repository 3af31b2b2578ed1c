"""A ``python -m kvshim ...`` subprocess whose output is read line by line in the background."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


class KvshimProcess:
    """``python -m kvshim ARGS`` in ``cwd``; ``wait_for`` reads its combined output."""

    def __init__(self, cwd: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "kvshim", *args],
            cwd=cwd,
            env={**os.environ, "PYTHONPATH": str(REPO_ROOT), **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))

    def wait_for(self, text: str, timeout: float = 20) -> str:
        """The next output line containing ``text``."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                break
            self.seen.append(line)
            if text in line:
                return line
        raise AssertionError(f"no line with {text!r} in {timeout}s; output so far: {self.seen}")

    def stop(self) -> int:
        """SIGTERM, then its exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=20)

    def close(self) -> None:
        """Kill it if it still runs, and release its pipe."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self._reader.join(timeout=5)
        assert self.process.stdout is not None
        self.process.stdout.close()


class Running(KvshimProcess):
    """A ``kvshim run`` subprocess, its output lines and its URL."""

    def __init__(self, cwd: Path, *args: str, env: dict[str, str] | None = None) -> None:
        super().__init__(cwd, "run", *args, "--port", "0", env=env)
        self.url = self.wait_for("Listening on ").removeprefix("Listening on ").strip()

    def get(self, path: str = "/") -> tuple[int, str]:
        """``GET path``: its status and body."""
        return self.request("GET", path)

    def request(
        self, method: str, path: str, body: object = None, *, raw: bytes | None = None
    ) -> tuple[int, str]:
        """``method path`` with ``body`` as JSON (or ``raw`` bytes said to be JSON): its status
        and body."""
        data = raw if raw is not None else None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def count(self) -> int:
        status, body = self.get()
        assert status == 200, body
        return int(json.loads(body)["count"])
