"""A separate process acting on a SQLite database, driven by tests/backends/test_sqlite.py.

Usage: ``python sqlite_worker.py MODE PATH [ARG]``; it prints one line per finished step and
flushes, so the test can follow (and kill) it.
"""

from __future__ import annotations

import asyncio
import sys

import kvshim
from kvshim.backends import sqlite


async def storm(kv: kvshim.Kv, at_once: int) -> None:
    """Atomic writes of two equal keys, ``at_once`` at a time, forever; prints each returned
    one (one at a time, each commits on the event loop; several, on the writer thread)."""
    i = 0
    while True:
        batch = range(i, i + at_once)
        results = await asyncio.gather(
            *(kv.atomic().set(["a", n], n).set(["b", n], n).commit() for n in batch)
        )
        for n, result in zip(batch, results, strict=True):
            print(n, result.versionstamp, flush=True)
        i += at_once


async def increment(kv: kvshim.Kv, times: int) -> None:
    """Optimistic read-check-write increments of ``["counter"]``."""
    print("ready", flush=True)
    for _ in range(times):
        while True:
            entry = await kv.get(["counter"])
            ok = await kv.atomic().check(entry).set(["counter"], (entry.value or 0) + 1).commit()
            if ok.ok:
                break
    print("done", flush=True)


async def hold(kv: kvshim.Kv) -> None:
    """Take a queue message and never finish it (the test kills this process)."""
    sqlite.LEASE_MS = 500
    sqlite.HEARTBEAT_S = 0.1

    async def handler(value: object) -> None:
        print("got", value, flush=True)
        await asyncio.Event().wait()

    await kv.listen_queue(handler)


async def main(mode: str, path: str, arg: str) -> None:
    kv = await kvshim.open_kv(path)
    if mode == "storm":
        await storm(kv, int(arg))
    elif mode == "increment":
        await increment(kv, int(arg))
    elif mode == "set":
        print((await kv.set(["x"], arg)).versionstamp, flush=True)
    elif mode == "enqueue":
        print((await kv.enqueue(arg)).versionstamp, flush=True)
    elif mode == "hold":
        await hold(kv)
    await kv.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else ""))
