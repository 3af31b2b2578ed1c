"""The memory backend's exact export/import (``RawAccess``): entries, versionstamps and expiry
survive a copy into another in-memory database."""

from __future__ import annotations

from kvshim.backends.memory import MemoryBackend
from kvshim.backends.raw import iter_entries, write_entries
from kvshim.kv import Kv


async def test_copy_keeps_values_versionstamps_and_expiry() -> None:
    source = Kv(MemoryBackend())
    await source.set(["a"], {"n": 1})
    await source.set(["b"], b"raw", expire_in=3_600_000)
    await source.atomic().sum(["c"], 5).commit()
    await source.delete(["a"])
    await source.set(["a"], "again")

    exported = [entry async for entry in iter_entries(source._backend)]
    target_backend = MemoryBackend()
    await write_entries(target_backend, exported)
    target = Kv(target_backend)

    assert [e.key for e in exported] == [b"\x02a\x00", b"\x02b\x00", b"\x02c\x00"]
    assert exported[1].expire_at_ms is not None
    assert exported[0].expire_at_ms is None and exported[2].expire_at_ms is None
    for key in (["a"], ["b"], ["c"]):
        assert await target.get(key) == await source.get(key)
    again = [entry async for entry in iter_entries(target_backend)]
    assert again == exported
    # Later writes on the copy get versionstamps after every imported one.
    result = await target.set(["d"], 1)
    assert result.versionstamp is not None
    assert result.versionstamp > max(e.versionstamp.hex() for e in exported)
    await source.close()
    await target.close()
