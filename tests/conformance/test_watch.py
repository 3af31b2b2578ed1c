"""watch(): initial emission, change detection, coalescing, raw mode, limits, end on close.

Spec: deno-kv-semantics.md §8 (and §7 for expiry notifications, where kvshim emits at expiry).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

import kvshim
from kvshim import AtomicCheck

from .conformance_support import TIMEOUT, exact, next_item

pytestmark = pytest.mark.kv_feature("watch")

Chunk = list[kvshim.KvEntry]
QUIET = 0.25
"""How long to wait to be reasonably sure that no chunk is coming."""


def watch(kv: kvshim.Kv, keys: list[Any], raw: bool = False) -> AsyncIterator[Chunk]:
    return aiter(kv.watch(keys, raw=raw))


def values(chunk: Chunk) -> list[Any]:
    return [e.value for e in chunk]


async def assert_quiet(pending: asyncio.Future[Any]) -> None:
    done, _ = await asyncio.wait({pending}, timeout=QUIET)
    assert not done, f"unexpected emission: {pending.result() if done else None}"


async def test_initial_emission(kv: kvshim.Kv) -> None:
    res = await kv.set(["a"], 1)
    stream = watch(kv, [["a"], ["b"]])
    chunk = await next_item(stream)
    assert [tuple(e.key) for e in chunk] == [("a",), ("b",)]
    assert values(chunk) == [1, None]
    assert chunk[0].versionstamp == res.versionstamp
    assert chunk[1].versionstamp is None
    assert all(isinstance(e, kvshim.KvEntry) for e in chunk)


async def test_initial_emission_when_all_missing(kv: kvshim.Kv) -> None:
    chunk = await next_item(watch(kv, [["x"]]))
    assert values(chunk) == [None] and chunk[0].versionstamp is None


async def test_emits_on_set(kv: kvshim.Kv) -> None:
    stream = watch(kv, [["a"], ["b"]])
    await next_item(stream)
    res = await kv.set(["b"], "v")
    chunk = await next_item(stream)
    assert values(chunk) == [None, "v"]
    assert chunk[1].versionstamp == res.versionstamp


async def test_emits_on_same_value_and_sum_and_delete(kv: kvshim.Kv) -> None:
    await kv.set(["a"], 1)
    stream = watch(kv, [["a"]])
    first = await next_item(stream)
    res = await kv.set(["a"], 1)  # same value, new versionstamp
    chunk = await next_item(stream)
    assert values(chunk) == [1] and chunk[0].versionstamp == res.versionstamp
    assert chunk[0].versionstamp != first[0].versionstamp
    await kv.atomic().sum(["a2"], 1).commit()  # unrelated
    await kv.delete(["a"])
    assert values(await next_item(stream)) == [None]
    await kv.atomic().sum(["a"], 5).commit()
    assert values(await next_item(stream)) == [kvshim.KvU64(5)]


async def test_no_emission_for_unrelated_writes(kv: kvshim.Kv) -> None:
    stream = watch(kv, [["p"]])
    await next_item(stream)
    pending = asyncio.ensure_future(anext(stream))
    try:
        await kv.set(["q"], 1)
        await kv.set(["p", 1], 1)  # no prefix watch
        await kv.set(["pp"], 1)
        await kv.delete(["q"])
        await assert_quiet(pending)
        await kv.set(["p"], "now")
        chunk = await asyncio.wait_for(pending, TIMEOUT)
        assert values(chunk) == ["now"]
    finally:
        pending.cancel()


async def test_no_emission_for_failed_check(kv: kvshim.Kv) -> None:
    await kv.set(["a"], 1)
    stream = watch(kv, [["a"]])
    await next_item(stream)
    pending = asyncio.ensure_future(anext(stream))
    try:
        res = await kv.atomic().check(AtomicCheck(["a"], None)).set(["a"], 2).commit()
        assert not res.ok
        await assert_quiet(pending)
        await kv.set(["a"], 3)
        assert values(await asyncio.wait_for(pending, TIMEOUT)) == [3]
    finally:
        pending.cancel()


async def test_no_emission_for_deleting_missing_key(kv: kvshim.Kv) -> None:
    stream = watch(kv, [["a"]])
    await next_item(stream)
    pending = asyncio.ensure_future(anext(stream))
    try:
        await kv.delete(["a"])
        await assert_quiet(pending)
        await kv.set(["a"], 1)
        assert values(await asyncio.wait_for(pending, TIMEOUT)) == [1]
    finally:
        pending.cancel()


async def test_raw_emits_for_delete_of_missing_key(kv: kvshim.Kv) -> None:
    stream = watch(kv, [["a"]], raw=True)
    first = await next_item(stream)
    assert values(first) == [None]
    await kv.delete(["a"])
    chunk = await next_item(stream)
    assert values(chunk) == [None] and chunk[0].versionstamp is None


async def test_raw_does_not_emit_for_unrelated_keys(kv: kvshim.Kv) -> None:
    stream = watch(kv, [["a"]], raw=True)
    await next_item(stream)
    pending = asyncio.ensure_future(anext(stream))
    try:
        await kv.set(["b"], 1)
        await assert_quiet(pending)
    finally:
        pending.cancel()


async def test_multi_key_write_emits_one_chunk(kv: kvshim.Kv) -> None:
    stream = watch(kv, [["a"], ["b"]])
    await next_item(stream)
    res = await kv.atomic().set(["a"], 1).set(["b"], 2).commit()
    chunk = await next_item(stream)
    assert values(chunk) == [1, 2]
    assert [e.versionstamp for e in chunk] == [res.versionstamp] * 2
    pending = asyncio.ensure_future(anext(stream))
    try:
        await assert_quiet(pending)
    finally:
        pending.cancel()


async def test_coalescing_ends_with_final_state(kv: kvshim.Kv) -> None:
    stream = watch(kv, [["c"]])
    await next_item(stream)
    for i in range(20):
        await kv.set(["c"], i)
    seen = []
    while True:
        chunk = await next_item(stream)
        seen.append(chunk[0].value)
        if chunk[0].value == 19:
            break
    assert 1 <= len(seen) <= 20
    assert seen == sorted(seen)  # never goes back to an older state


async def test_duplicate_keys_fill_both_slots(kv: kvshim.Kv) -> None:
    stream = watch(kv, [["a"], ["a"]])
    assert values(await next_item(stream)) == [None, None]
    await kv.set(["a"], 1)
    assert values(await next_item(stream)) == [1, 1]


async def test_empty_watch_ends_without_emitting(kv: kvshim.Kv) -> None:
    stream = watch(kv, [])
    with pytest.raises(StopAsyncIteration):
        await next_item(stream)


async def test_two_watchers_on_the_same_key(kv: kvshim.Kv) -> None:
    one = watch(kv, [["a"]])
    two = watch(kv, [["a"], ["b"]])
    await next_item(one)
    await next_item(two)
    await kv.set(["a"], "x")
    assert values(await next_item(one)) == ["x"]
    assert values(await next_item(two)) == ["x", None]


async def test_watch_ends_on_close(open_db: Any) -> None:
    kv = await open_db()
    stream = watch(kv, [["a"]])
    await next_item(stream)
    pending = asyncio.ensure_future(anext(stream))
    await asyncio.sleep(0.05)
    await kv.close()
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(pending, TIMEOUT)


async def test_async_for_loop_ends_on_close(open_db: Any) -> None:
    kv = await open_db()
    chunks: list[Chunk] = []

    async def consume() -> None:
        async for chunk in kv.watch([["a"]]):
            chunks.append(chunk)

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.1)
    await kv.set(["a"], 1)
    await asyncio.sleep(0.1)
    await kv.close()
    await asyncio.wait_for(task, TIMEOUT)
    assert [values(c) for c in chunks] == [[None], [1]]


async def test_watch_limits_are_synchronous(kv: kvshim.Kv) -> None:
    with pytest.raises(kvshim.KvTypeError, match=exact("Too many keys (max 10)")):
        kv.watch([["k", i] for i in range(11)])
    assert await next_item(watch(kv, [["k", i] for i in range(10)])) is not None
    with pytest.raises(
        kvshim.KvTypeError, match=exact("expected string, number, bigint, ArrayBufferView, boolean")
    ):
        kv.watch([["k", None]])
    with pytest.raises(kvshim.KvTypeError, match=exact("Key too large for read (max 2049 bytes)")):
        kv.watch([["x" * 2048]])  # 2050 bytes
    # 2049 bytes is within the read limit
    assert values(await next_item(watch(kv, [["x" * 2047]]))) == [None]


async def test_watch_emits_at_expiry(kv: kvshim.Kv) -> None:
    # kvshim deviation: emitted when the key expires (Deno: at its next sweep, up to ~60 s).
    await kv.set(["t"], "v", expire_in=300)
    stream = watch(kv, [["t"]])
    assert values(await next_item(stream)) == ["v"]
    loop = asyncio.get_running_loop()
    start = loop.time()
    chunk = await next_item(stream, timeout=3)
    assert values(chunk) == [None] and chunk[0].versionstamp is None
    assert loop.time() - start < 1.5


async def test_watch_of_expired_key_starts_with_none(kv: kvshim.Kv) -> None:
    await kv.set(["t"], "v", expire_in=100)
    await asyncio.sleep(0.3)
    assert values(await next_item(watch(kv, [["t"]]))) == [None]
