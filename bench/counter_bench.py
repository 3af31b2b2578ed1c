"""HTTP request-counter benchmark: ``kvshim run examples/counter.py`` against Deno's
``deno_counter_app.ts`` under ``wrk``, at 1, 16 and 64 connections, in memory and on a file.

The two servers alternate (kvshim, Deno, kvshim, Deno, ...) within one run, because absolute
figures on a shared machine drift; compare the ratios. Each cell is the median of ``--rounds``
runs. "lost" is the share of requests wrk completed whose increment is missing from the stored
count (read with one last request after the run).

    python bench/counter_bench.py [--seconds 5] [--rounds 3] [--deno PATH]
        [--storage memory file] [--connections 1 16 64]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DENO_APP = (
    Path(os.environ.get("KVSHIM_SHARED", ROOT.parent / "shared")) / "bench" / "deno_counter_app.ts"
)
CONNECTIONS = (1, 16, 64)


@dataclass
class Sample:
    rps: float
    p50_ms: float
    p99_ms: float
    lost: float


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_up(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        host, port = url.removeprefix("http://").rsplit(":", 1)
        try:
            with socket.create_connection((host, int(port)), 0.2):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def start_kvshim(storage: str, folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    args = [
        sys.executable,
        "-m",
        "kvshim",
        "run",
        str(ROOT / "examples" / "counter.py"),
        "--port",
        str(port),
        "--no-reload",
        "--timeline",
        "local",
    ]
    if storage == "file":
        args += ["--database", str(folder / "kvshim.sqlite3")]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(args, cwd=folder, env=env, stdout=subprocess.DEVNULL)
    return process, f"http://127.0.0.1:{port}"


def start_deno(storage: str, folder: Path, deno: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    path = ":memory:" if storage == "memory" else str(folder / "deno.sqlite3")
    args = [
        deno,
        "run",
        "--unstable-kv",
        "--allow-net=127.0.0.1",
        "--allow-read",
        "--allow-write",
        str(DENO_APP),
        str(port),
        path,
    ]
    process = subprocess.Popen(
        args, cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    return process, f"http://127.0.0.1:{port}"


def read_count(url: str) -> int:
    with urllib.request.urlopen(url, timeout=10) as response:
        body = json.loads(response.read())
    return int(body["requests"] if isinstance(body, dict) else body)


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    found = re.fullmatch(r"([\d.]+)([a-z]+)", text)
    if found is None or found.group(2) not in _UNITS:
        raise ValueError(f"unexpected latency from wrk: {text!r}")
    return float(found.group(1)) * _UNITS[found.group(2)]


def run_wrk(url: str, connections: int, seconds: int) -> tuple[int, float, float, float]:
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    if "Non-2xx" in out or "Socket errors" in out:
        print(f"  warning from wrk at {url}: {out.strip().splitlines()[-3:]}", file=sys.stderr)
    return requests, rps, p50, p99


def measure(server: str, storage: str, connections: int, seconds: int, deno: str) -> Sample:
    with tempfile.TemporaryDirectory() as folder:
        if server == "kvshim":
            process, url = start_kvshim(storage, Path(folder))
        else:
            process, url = start_deno(storage, Path(folder), deno)
        try:
            wait_up(url, process)
            before = read_count(url)  # warms the server up; counts as one request
            requests, rps, p50, p99 = run_wrk(url, connections, seconds)
            after = read_count(url)
            stored = after - before - 1  # increments wrk's requests left in the database
            lost = max(0.0, (requests - stored) / requests) if requests else 0.0
            return Sample(rps, p50, p99, lost)
        finally:
            process.terminate()
            process.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--deno", default=shutil.which("deno") or str(Path(sys.executable).parent / "deno")
    )
    parser.add_argument("--storage", nargs="+", default=["memory", "file"])
    parser.add_argument("--connections", nargs="+", type=int, default=list(CONNECTIONS))
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (apt-get install wrk)")
    print(
        "| storage | conns | kvshim req/s | Deno req/s | ratio | kvshim p50/p99 ms | "
        "Deno p50/p99 ms | kvshim lost | Deno lost |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for storage in args.storage:
        for connections in args.connections:
            samples: dict[str, list[Sample]] = {"kvshim": [], "deno": []}
            for _ in range(args.rounds):
                for server in ("kvshim", "deno"):
                    samples[server].append(
                        measure(server, storage, connections, args.seconds, args.deno)
                    )
            k, d = (_median(samples[s]) for s in ("kvshim", "deno"))
            print(
                f"| {storage} | {connections} | {k.rps:,.0f} | {d.rps:,.0f} | "
                f"{k.rps / d.rps:.2f}x | {k.p50_ms:.2f} / {k.p99_ms:.2f} | "
                f"{d.p50_ms:.2f} / {d.p99_ms:.2f} | {k.lost:.1%} | {d.lost:.1%} |",
                flush=True,
            )


def _median(samples: list[Sample]) -> Sample:
    return Sample(
        *(
            statistics.median(getattr(s, f) for s in samples)
            for f in ("rps", "p50_ms", "p99_ms", "lost")
        )
    )


if __name__ == "__main__":
    main()
