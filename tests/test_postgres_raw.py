"""The PostgreSQL backend's exact export/import (``RawAccess``), used by backup, restore and
copy: versionstamps and expiry survive, watchers of other clients hear the import, and later
writes get larger versionstamps."""

from __future__ import annotations

import asyncio
from typing import Any

import kvshim
from kvshim.backends import open_backend
from kvshim.backends.base import RawAccess
from kvshim.backends.raw import iter_entries, write_entries
from kvshim.kv import Kv


async def test_copy_keeps_values_versionstamps_and_expiry(postgres_server: Any) -> None:
    source = await kvshim.open_kv(postgres_server.url())
    target_url = postgres_server.url()
    target_backend = await open_backend(target_url, {})
    watcher = await kvshim.open_kv(target_url)  # another client of the target database
    try:
        assert isinstance(target_backend, RawAccess)
        await source.set(["a"], {"n": 1})
        await source.set(["b"], b"raw", expire_in=3_600_000)
        await source.set(["gone"], 1, expire_in=1)
        await source.atomic().sum(["c"], kvshim.KvU64(5)).commit()
        for _ in range(3):
            await source.set(["a"], "again")
        await asyncio.sleep(0.01)

        exported = [entry async for entry in iter_entries(source._backend)]
        assert [e.key for e in exported] == [b"\x02a\x00", b"\x02b\x00", b"\x02c\x00"]
        assert [e.expire_at_ms is not None for e in exported] == [False, True, False]

        stream = watcher.watch([["a"]])
        assert (await anext(stream))[0].value is None
        await write_entries(target_backend, exported)
        seen = await asyncio.wait_for(anext(stream), 5)  # a client of the target heard it
        assert seen[0].value == "again"

        target = Kv(target_backend)
        for key in (["a"], ["b"], ["c"]):
            assert await target.get(key) == await source.get(key)
        assert [entry async for entry in iter_entries(target_backend)] == exported
        result = await target.set(["d"], 1)
        assert result.versionstamp > max(e.versionstamp.hex() for e in exported)
    finally:
        await source.close()
        await watcher.close()
        await target_backend.close()
