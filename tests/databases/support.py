"""Write known data into a database and read it back exactly, through the public layers."""

from __future__ import annotations

import asyncio

import kvshim
from kvshim.backends import open_backend
from kvshim.backends.raw import iter_entries
from kvshim.model import StoredEntry, ValueEncoding

HOUR_MS = 3_600_000


async def _fill(url: str) -> None:
    kv = await kvshim.open_kv(url)
    try:
        await kv.set(["text"], "héllo")
        await kv.set(["object", 1], {"a": [1, 2.5, None, True], "b": {"nested": "x"}})
        await kv.set(["big", kvshim.BigInt(2**70)], kvshim.BigInt(2**70))
        await kv.set(["u64"], kvshim.KvU64(2**64 - 1))
        await kv.set(["bytes"], b"\x00\xff\x10")
        await kv.set(["ttl"], "expires later", expire_in=HOUR_MS)
        await kv.atomic().set(["pair", "a"], 1).set(["pair", "b"], 2).commit()
        await kv.set(["text"], "rewritten")  # newest versionstamp on the smallest-ish key
    finally:
        await kv.close()


def fill(url: str) -> None:
    """Entries of every value encoding, one with an expiry, two sharing a versionstamp."""
    asyncio.run(_fill(url))


async def _entries(url: str) -> list[StoredEntry]:
    backend = await open_backend(url, {})
    try:
        return [entry async for entry in iter_entries(backend)]
    finally:
        await backend.close()


def entries(url: str) -> list[StoredEntry]:
    """Every stored entry exactly as stored (versionstamp and expiry included)."""
    return asyncio.run(_entries(url))


def encodings(found: list[StoredEntry]) -> set[int]:
    return {e.value.encoding for e in found}


ALL_ENCODINGS = {int(e) for e in ValueEncoding}


def sqlite_available() -> bool:
    """Whether ``open_kv(path)`` opens SQLite files yet (the backend lands in another branch)."""
    import tempfile

    async def probe(path: str) -> None:
        kv = await kvshim.open_kv(path)
        await kv.close()

    with tempfile.TemporaryDirectory() as folder:
        try:
            asyncio.run(probe(f"{folder}/probe.sqlite3"))
        except kvshim.KvValueError:
            return False
    return True
