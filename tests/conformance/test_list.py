"""list(): selectors and their errors, limit, reverse, batches, cursors.

Spec: deno-kv-semantics.md §5.2. Mirrors the list tests of Deno's ``tests/unit/kv_test.ts``
(the data set is ``seed_list_data``). Cursor texts were also checked against deno 2.9.8.
"""

from __future__ import annotations

from typing import Any

import pytest

import kvshim

from .conformance_support import collect, exact, keys_of, next_item, seed_list_data, values_of

A_ALL = [("a", "a"), ("a", "b"), ("a", "c"), ("a", "d"), ("a", "e")]


@pytest.fixture
async def seeded(kv: kvshim.Kv) -> kvshim.Kv:
    await seed_list_data(kv)
    return kv


async def list_keys(kv: kvshim.Kv, **kwargs: Any) -> list[tuple[Any, ...]]:
    return keys_of(await collect(kv.list(**kwargs)))


# --- selectors ---------------------------------------------------------------------------


async def test_prefix(seeded: kvshim.Kv) -> None:
    entries = await collect(seeded.list(prefix=["a"]))
    assert keys_of(entries) == A_ALL
    assert values_of(entries) == [0, 1, 2, 3, 4]
    assert all(isinstance(e, kvshim.KvEntry) and e.versionstamp for e in entries)
    assert all(isinstance(e.key, tuple) for e in entries)


async def test_prefix_empty_result(seeded: kvshim.Kv) -> None:
    assert await list_keys(seeded, prefix=["c"]) == []


async def test_empty_prefix_lists_everything(seeded: kvshim.Kv) -> None:
    assert await list_keys(seeded, prefix=[]) == [("a",), *A_ALL, ("b",), ("b", "a")]


async def test_prefix_with_start(seeded: kvshim.Kv) -> None:
    assert await list_keys(seeded, prefix=["a"], start=["a", "c"]) == A_ALL[2:]
    assert await list_keys(seeded, prefix=["a"], start=["a", "f"]) == []
    # start need not exist; a deeper start skips the shallower key itself
    assert await list_keys(seeded, prefix=["a"], start=["a", "bb"]) == A_ALL[2:]
    assert await list_keys(seeded, prefix=["a"], start=["a", "c", "x"]) == A_ALL[3:]


async def test_prefix_with_end(seeded: kvshim.Kv) -> None:
    assert await list_keys(seeded, prefix=["a"], end=["a", "c"]) == A_ALL[:2]
    assert await list_keys(seeded, prefix=["a"], end=["a", "a"]) == []


@pytest.mark.parametrize("start", [["a"], ["b"], ["0"], []])
async def test_prefix_with_start_outside_keyspace(seeded: kvshim.Kv, start: Any) -> None:
    it = seeded.list(prefix=["a"], start=start)  # lazily: no error yet
    with pytest.raises(
        kvshim.KvTypeError, match=exact("Start key is not in the keyspace defined by prefix")
    ):
        await next_item(it)


@pytest.mark.parametrize("end", [["a"], ["b"], ["0"]])
async def test_prefix_with_end_outside_keyspace(seeded: kvshim.Kv, end: Any) -> None:
    it = seeded.list(prefix=["a"], end=end)
    with pytest.raises(
        kvshim.KvTypeError, match=exact("End key is not in the keyspace defined by prefix")
    ):
        await next_item(it)


async def test_range(seeded: kvshim.Kv) -> None:
    assert await list_keys(seeded, start=["a", "a"], end=["a", "z"]) == A_ALL
    assert await list_keys(seeded, start=["a", "b"], end=["a", "d"]) == A_ALL[1:3]
    # start inclusive, end exclusive, over whole keys (not prefixes)
    assert await list_keys(seeded, start=["a"], end=["b"]) == [("a",), *A_ALL]
    assert await list_keys(seeded, start=["a"], end=["b", "a"]) == [("a",), *A_ALL, ("b",)]


async def test_range_start_equals_end(seeded: kvshim.Kv) -> None:
    assert await list_keys(seeded, start=["a", "b"], end=["a", "b"]) == []


async def test_range_start_greater_than_end(seeded: kvshim.Kv) -> None:
    it = seeded.list(start=["b"], end=["a"])
    with pytest.raises(kvshim.KvTypeError, match=exact("Start key is greater than end key")):
        await next_item(it)


async def test_range_reverse(seeded: kvshim.Kv) -> None:
    keys = await list_keys(seeded, start=["a", "a"], end=["a", "z"], reverse=True)
    assert keys == A_ALL[::-1]


async def test_selector_prefix_start_and_end(seeded: kvshim.Kv) -> None:
    message = "Selector can not specify both 'start' and 'end' key when specifying 'prefix'"
    with pytest.raises(kvshim.KvTypeError, match=exact(message)):
        seeded.list(prefix=["a"], start=["a", "b"], end=["a", "c"])  # synchronous


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"start": ["a"]}, {"end": ["b"]}],
    ids=["nothing", "start-only", "end-only"],
)
async def test_selector_incomplete(seeded: kvshim.Kv, kwargs: dict[str, Any]) -> None:
    message = "Selector must specify either 'prefix' or both 'start' and 'end' key"
    with pytest.raises(kvshim.KvTypeError, match=exact(message)):
        seeded.list(**kwargs)  # synchronous


async def test_selector_invalid_key_part(seeded: kvshim.Kv) -> None:
    with pytest.raises(kvshim.KvTypeError, match="expected string, number"):
        await collect(seeded.list(prefix=["a", None]))


async def test_prefix_size_limit(kv: kvshim.Kv) -> None:
    # prefix + 0x00 must fit in 2049 bytes: a 2048-byte prefix works, 2049 does not.
    assert await list_keys(kv, prefix=["x" * 2046]) == []
    with pytest.raises(kvshim.KvTypeError, match=exact("Key too large for read (max 2049 bytes)")):
        await collect(kv.list(prefix=["x" * 2047]))


async def test_list_does_no_io_until_iterated(kv: kvshim.Kv) -> None:
    it = kv.list(prefix=["a"])
    await kv.set(["a", 1], "written after list() but before the first step")
    assert keys_of(await collect(it)) == [("a", 1)]


# --- reverse, limit, batch size ----------------------------------------------------------


async def test_prefix_reverse(seeded: kvshim.Kv) -> None:
    assert await list_keys(seeded, prefix=["a"], reverse=True) == A_ALL[::-1]
    assert await list_keys(seeded, prefix=["a"], start=["a", "c"], reverse=True) == [
        ("a", "e"),
        ("a", "d"),
        ("a", "c"),
    ]
    assert await list_keys(seeded, prefix=["a"], end=["a", "c"], reverse=True) == [
        ("a", "b"),
        ("a", "a"),
    ]


async def test_limit(seeded: kvshim.Kv) -> None:
    assert await list_keys(seeded, prefix=["a"], limit=2) == A_ALL[:2]
    assert await list_keys(seeded, prefix=["a"], limit=2, reverse=True) == A_ALL[::-1][:2]
    assert await list_keys(seeded, prefix=["a"], limit=100) == A_ALL
    assert await list_keys(seeded, start=["a", "a"], end=["a", "z"], limit=3) == A_ALL[:3]
    assert (
        await list_keys(seeded, start=["a", "a"], end=["a", "z"], limit=3, reverse=True)
        == A_ALL[::-1][:3]
    )


@pytest.mark.parametrize("batch_size", [1, 2, 3, 5, 6, 1000])
async def test_batch_sizes(seeded: kvshim.Kv, batch_size: int) -> None:
    assert await list_keys(seeded, prefix=["a"], batch_size=batch_size) == A_ALL
    assert (
        await list_keys(seeded, prefix=["a"], batch_size=batch_size, reverse=True) == (A_ALL[::-1])
    )
    assert await list_keys(seeded, prefix=["a"], batch_size=batch_size, limit=3) == A_ALL[:3]


async def test_many_entries_across_default_batches(kv: kvshim.Kv) -> None:
    for start in range(0, 1234, 500):
        op = kv.atomic()
        for i in range(start, min(start + 500, 1234)):
            op.set(["n", i], i)
        assert (await op.commit()).ok
    values = values_of(await collect(kv.list(prefix=["n"])))
    assert values == list(range(1234))
    assert values_of(await collect(kv.list(prefix=["n"], limit=700))) == list(range(700))
    reverse = values_of(await collect(kv.list(prefix=["n"], reverse=True, batch_size=1000)))
    assert reverse == list(range(1233, -1, -1))


@pytest.mark.parametrize(("limit", "shown"), [(0, "0"), (-1, "-1"), (1.5, "1.5"), (True, "true")])
async def test_invalid_limit(kv: kvshim.Kv, limit: Any, shown: str) -> None:
    with pytest.raises(
        kvshim.KvValueError, match=exact(f"Limit must be a positive integer: received {shown}")
    ):
        kv.list(prefix=[], limit=limit)  # synchronous, plain Error


@pytest.mark.parametrize("batch_size", [0, -1, 2.3])
async def test_invalid_batch_size(kv: kvshim.Kv, batch_size: Any) -> None:
    with pytest.raises(
        kvshim.KvValueError,
        match=exact(f"batchSize must be a positive integer: received {batch_size}"),
    ):
        kv.list(prefix=[], batch_size=batch_size)


async def test_batch_size_too_large(seeded: kvshim.Kv) -> None:
    it = seeded.list(prefix=["a"], batch_size=1001)  # lazily
    with pytest.raises(kvshim.KvTypeError, match=exact("Too many entries (max 1000)")):
        await next_item(it)


async def test_each_batch_is_its_own_snapshot(seeded: kvshim.Kv) -> None:
    kv = seeded
    it = aiter(kv.list(prefix=["a"], batch_size=2))
    first = await next_item(it)  # fetches [a, b]
    assert first.key == ("a", "a")
    await kv.delete(["a", "b"])  # already fetched: still yielded
    await kv.set(["a", "bb"], "new")  # ahead of the scan: yielded
    rest = [e async for e in it]
    assert keys_of(rest) == [("a", "b"), ("a", "bb"), ("a", "c"), ("a", "d"), ("a", "e")]


async def test_exhausted_iterator_stays_done(seeded: kvshim.Kv) -> None:
    it = aiter(seeded.list(prefix=["a"], limit=1))
    assert (await next_item(it)).key == ("a", "a")
    for _ in range(3):
        with pytest.raises(StopAsyncIteration):
            await next_item(it)


# --- cursors ------------------------------------------------------------------------------


async def test_cursor_before_first_iteration(seeded: kvshim.Kv) -> None:
    it = seeded.list(prefix=["a"])
    with pytest.raises(
        kvshim.KvStateError, match=exact("Cannot get cursor before first iteration")
    ):
        _ = it.cursor


async def test_cursor_passed_in_is_returned_before_iteration(seeded: kvshim.Kv) -> None:
    it = seeded.list(prefix=["a"], cursor="AmIA")
    assert it.cursor == "AmIA"


async def test_cursor_follows_each_entry_and_is_empty_after_exhaustion(seeded: kvshim.Kv) -> None:
    it = seeded.list(prefix=["a"])
    cursors = []
    async for _ in it:
        cursors.append(it.cursor)
    # base64url of the key bytes after the encoded prefix 02 61 00
    assert cursors == ["AmEA", "AmIA", "AmMA", "AmQA", "AmUA"]
    assert it.cursor == ""


async def test_cursor_of_empty_listing(kv: kvshim.Kv) -> None:
    it = kv.list(prefix=["nothing"])
    assert await collect(it) == []
    assert it.cursor == ""


async def test_cursor_stays_when_limit_reached(seeded: kvshim.Kv) -> None:
    it = seeded.list(prefix=["a"], limit=5)
    assert keys_of(await collect(it)) == A_ALL
    assert it.cursor == "AmUA"  # stopped by the limit, not exhausted
    it2 = seeded.list(prefix=["a"], limit=5, cursor=it.cursor)
    assert await collect(it2) == []
    assert it2.cursor == ""


async def test_range_cursor_uses_byte_level_common_prefix(seeded: kvshim.Kv) -> None:
    # start 02 61 00 02 62 00, end 02 61 00 02 7a 00: common prefix 02 61 00 02 (not part-aligned)
    it = seeded.list(start=["a", "b"], end=["a", "z"], limit=2)
    assert keys_of(await collect(it)) == [("a", "b"), ("a", "c")]
    assert it.cursor == "YwA="  # bytes 63 00, padded


async def test_manual_paging_prefix(seeded: kvshim.Kv) -> None:
    it = seeded.list(prefix=["a"], limit=2)
    assert keys_of(await collect(it)) == A_ALL[:2]
    assert it.cursor == "AmIA"
    it = seeded.list(prefix=["a"], limit=2, cursor=it.cursor)
    assert keys_of(await collect(it)) == A_ALL[2:4]
    assert it.cursor == "AmQA"
    it = seeded.list(prefix=["a"], limit=2, cursor=it.cursor)
    assert keys_of(await collect(it)) == A_ALL[4:]
    assert it.cursor == ""


async def test_manual_paging_prefix_reverse(seeded: kvshim.Kv) -> None:
    it = seeded.list(prefix=["a"], limit=2, reverse=True)
    assert keys_of(await collect(it)) == [("a", "e"), ("a", "d")]
    assert it.cursor == "AmQA"
    it = seeded.list(prefix=["a"], limit=2, reverse=True, cursor=it.cursor)
    assert keys_of(await collect(it)) == [("a", "c"), ("a", "b")]
    assert it.cursor == "AmIA"
    it = seeded.list(prefix=["a"], limit=2, reverse=True, cursor=it.cursor)
    assert keys_of(await collect(it)) == [("a", "a")]
    assert it.cursor == ""


async def test_manual_paging_range(seeded: kvshim.Kv) -> None:
    pages = []
    cursor: str | None = None
    for _ in range(5):
        it = seeded.list(start=["a", "a"], end=["a", "z"], limit=2, cursor=cursor)
        pages.append(keys_of(await collect(it)))
        cursor = it.cursor
        if cursor == "":
            break
    assert pages == [A_ALL[:2], A_ALL[2:4], A_ALL[4:]]


async def test_manual_paging_range_reverse(seeded: kvshim.Kv) -> None:
    pages = []
    cursor: str | None = None
    for _ in range(5):
        it = seeded.list(start=["a", "a"], end=["a", "z"], limit=2, reverse=True, cursor=cursor)
        pages.append(keys_of(await collect(it)))
        cursor = it.cursor
        if cursor == "":
            break
    assert pages == [A_ALL[::-1][:2], A_ALL[::-1][2:4], A_ALL[::-1][4:]]


async def test_cursor_with_small_batches_and_limit(seeded: kvshim.Kv) -> None:
    it = seeded.list(prefix=["a"], limit=3, batch_size=2)
    assert keys_of(await collect(it)) == A_ALL[:3]
    assert it.cursor == "AmMA"
    rest = seeded.list(prefix=["a"], batch_size=2, cursor=it.cursor)
    assert keys_of(await collect(rest)) == A_ALL[3:]


async def test_cursor_across_directions(seeded: kvshim.Kv) -> None:
    # The reverse cursor "AmQA" (key ["a","d"]) used forward yields ["a","e"].
    assert await list_keys(seeded, prefix=["a"], cursor="AmQA") == [("a", "e")]
    # A forward cursor used in reverse scans down from that key (exclusive).
    assert await list_keys(seeded, prefix=["a"], cursor="AmIA", reverse=True) == [("a", "a")]


async def test_empty_cursor_means_no_cursor(seeded: kvshim.Kv) -> None:
    assert await list_keys(seeded, prefix=["a"], cursor="") == A_ALL


async def test_cursor_with_prefix_and_start(seeded: kvshim.Kv) -> None:
    it = seeded.list(prefix=["a"], start=["a", "b"], limit=1)
    assert keys_of(await collect(it)) == [("a", "b")]
    assert it.cursor == "AmIA"  # relative to the prefix, not the start key
    assert await list_keys(seeded, prefix=["a"], start=["a", "b"], cursor=it.cursor) == A_ALL[2:]


@pytest.mark.parametrize(
    "cursor",
    ["YwA", "!!!!", "a+b/", "YwA==", "@", "AmQA\n", "AB==", "AmR=", " AmQA"],
    # a trailing newline, and stray bits in the last character, are not base64url to Deno
)
async def test_invalid_cursor(seeded: kvshim.Kv, cursor: str) -> None:
    it = seeded.list(prefix=["a"], cursor=cursor)
    with pytest.raises(kvshim.KvTypeError, match=exact("invalid cursor")):
        await next_item(it)


async def test_prefix_cursor_only_has_to_stay_under_the_prefix(seeded: kvshim.Kv) -> None:
    # Deno checks a prefix selector's cursor range by "starts with the prefix", not against
    # P+FF: cursor bytes FF 01 (past every real key) read backwards list the whole prefix.
    assert await list_keys(seeded, prefix=["a"], cursor="_wE=", reverse=True) == A_ALL[::-1]
    assert await list_keys(seeded, prefix=["a"], cursor="_wE=") == []


async def test_cursor_beyond_the_read_key_limit(seeded: kvshim.Kv) -> None:
    it = seeded.list(prefix=["a"], cursor="A" * 4000)  # 3000 zero bytes after the prefix
    with pytest.raises(kvshim.KvTypeError, match=exact("Key too large for read (max 2049 bytes)")):
        await next_item(it)


@pytest.mark.parametrize(
    ("cursor", "reverse"),
    [("YQA=", False), ("ewA=", True)],
    ids=["before-start-forward", "after-end-reverse"],
)
async def test_cursor_out_of_bounds(seeded: kvshim.Kv, cursor: str, reverse: bool) -> None:
    # common prefix of start/end is 02 61 00 02; YQA= is key ["a","a"] (< start),
    # ewA= is ["a","{"] (> end).
    it = seeded.list(start=["a", "b"], end=["a", "z"], cursor=cursor, reverse=reverse)
    with pytest.raises(kvshim.KvTypeError, match=exact("cursor out of bounds")):
        await next_item(it)


async def test_cursor_past_end_forward_is_just_empty(seeded: kvshim.Kv) -> None:
    it = seeded.list(start=["a", "b"], end=["a", "z"], cursor="ewA=")
    assert await collect(it) == []
    assert it.cursor == ""


@pytest.mark.parametrize(
    ("options", "batch"),
    [({}, 100), ({"limit": 50}, 50), ({"limit": 700}, 500), ({"batch_size": 7}, 7)],
    ids=["default-100", "limit-50", "clamped-500", "explicit-7"],
)
async def test_batch_size_defaults(kv: kvshim.Kv, options: dict[str, Any], batch: int) -> None:
    # §5.2 / §12: batchSize defaults to limit ?? 100, clamped to 500 when unspecified. Observed
    # through per-batch snapshots: after the first entry, the last key of the first batch is
    # already fetched (still yielded once deleted), the first key of the second batch is not.
    op = kv.atomic()
    for i in range(600):
        op.set(["n", i], i)
    assert (await op.commit()).ok
    it = aiter(kv.list(prefix=["n"], **options))
    assert (await next_item(it)).value == 0
    await kv.delete(["n", batch - 1])
    await kv.delete(["n", batch])
    rest = [e.value async for e in it]
    assert batch - 1 in rest
    assert batch not in rest
