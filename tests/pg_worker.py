"""A separate client process for the PostgreSQL tests: ``python pg_worker.py COMMAND URL ARG``.

``increment URL N``: N optimistic increments of ``["counter"]`` (get, check, set, retry).
``listen URL -``: listen to the queue; each message value ``m`` adds 1 to ``["seen", m]``.
``hang URL -``: listen; the first message sets ``["started"]`` and the handler never returns.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import kvshim


async def increment(kv: kvshim.Kv, times: int) -> None:
    for _ in range(times):
        while True:
            entry = await kv.get(["counter"])
            value = entry.value or 0
            result = await kv.atomic().check(entry).set(["counter"], value + 1).commit()
            if result.ok:
                break


async def listen(kv: kvshim.Kv) -> None:
    async def handler(value: Any) -> None:
        await kv.atomic().sum(["seen", value], 1).commit()

    await kv.listen_queue(handler)


async def hang(kv: kvshim.Kv) -> None:
    async def handler(value: Any) -> None:
        await kv.set(["started"], value)
        await asyncio.Event().wait()

    await kv.listen_queue(handler)


async def main(command: str, url: str, arg: str) -> None:
    kv = await kvshim.open_kv(url)
    try:
        if command == "increment":
            await increment(kv, int(arg))
        elif command == "listen":
            await listen(kv)
        else:
            await hang(kv)
    finally:
        await kv.close()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
