"""get / get_many / set / delete: entry shape, versionstamps, consistency, key limits.

Spec: deno-kv-semantics.md §2.4, §4, §5.1, §6.1.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

import kvshim

from .conformance_support import collect, exact, keys_of, values_of

VERSIONSTAMP = re.compile(r"^[0-9a-f]{20}$")


async def test_get_missing(kv: kvshim.Kv) -> None:
    entry = await kv.get(["users", 1])
    assert isinstance(entry, kvshim.KvEntry)
    assert entry.key == ("users", 1)
    assert isinstance(entry.key, tuple)
    assert entry.value is None
    assert entry.versionstamp is None


async def test_set_then_get(kv: kvshim.Kv) -> None:
    result = await kv.set(["users", 1], {"name": "Ada"})
    assert isinstance(result, kvshim.CommitResult)
    assert result.ok is True
    assert result.versionstamp is not None
    assert VERSIONSTAMP.match(result.versionstamp)
    assert result.versionstamp != "0" * 20
    entry = await kv.get(["users", 1])
    assert entry.key == ("users", 1)
    assert entry.value == {"name": "Ada"}
    assert entry.versionstamp == result.versionstamp


async def test_set_overwrites_with_new_versionstamp(kv: kvshim.Kv) -> None:
    first = await kv.set(["k"], "a")
    second = await kv.set(["k"], "a")  # same value still gets a new versionstamp
    assert first.versionstamp is not None and second.versionstamp is not None
    assert second.versionstamp > first.versionstamp
    entry = await kv.get(["k"])
    assert entry.versionstamp == second.versionstamp
    await kv.set(["k"], "b")
    assert (await kv.get(["k"])).value == "b"


async def test_delete(kv: kvshim.Kv) -> None:
    await kv.set(["k"], 1)
    await kv.set(["k2"], 2)
    assert await kv.delete(["k"]) is None  # type: ignore[func-returns-value]
    entry = await kv.get(["k"])
    assert entry.value is None and entry.versionstamp is None
    assert (await kv.get(["k2"])).value == 2
    # deleting a missing key is fine
    assert await kv.delete(["missing"]) is None  # type: ignore[func-returns-value]


async def test_versionstamps_strictly_increase_across_operations(kv: kvshim.Kv) -> None:
    stamps = []
    for i in range(30):
        result = await kv.set(["k", i % 3], i)
        assert result.versionstamp is not None
        stamps.append(result.versionstamp)
        if i % 5 == 0:
            await kv.delete(["k", 0])
    assert stamps == sorted(stamps)
    assert len(set(stamps)) == len(stamps)


async def test_get_many(kv: kvshim.Kv) -> None:
    await kv.set(["a"], 1)
    await kv.set(["c"], 3)
    entries = await kv.get_many([["a"], ["b"], ("c",), ["a"]])
    assert keys_of(entries) == [("a",), ("b",), ("c",), ("a",)]
    assert values_of(entries) == [1, None, 3, 1]
    assert entries[1].versionstamp is None
    assert entries[0].versionstamp == entries[3].versionstamp is not None
    assert all(isinstance(e.key, tuple) for e in entries)


async def test_get_many_empty(kv: kvshim.Kv) -> None:
    assert await kv.get_many([]) == []


async def test_get_many_limit(kv: kvshim.Kv) -> None:
    await kv.set(["k", 9], "x")
    entries = await kv.get_many([["k", i] for i in range(10)])
    assert len(entries) == 10 and entries[9].value == "x"
    with pytest.raises(kvshim.KvTypeError, match=exact("Too many ranges (max 10)")):
        await kv.get_many([["k", i] for i in range(11)])


@pytest.mark.parametrize("consistency", ["strong", "eventual"])
async def test_consistency_accepted(kv: kvshim.Kv, consistency: Any) -> None:
    await kv.set(["k"], 1)
    assert (await kv.get(["k"], consistency=consistency)).value == 1
    assert values_of(await kv.get_many([["k"]], consistency=consistency)) == [1]
    entries = await collect(kv.list(prefix=[], consistency=consistency))
    assert values_of(entries) == [1]


async def test_consistency_invalid(kv: kvshim.Kv) -> None:
    message = exact("unknown variant `bogus`, expected `strong` or `eventual`")
    with pytest.raises(kvshim.KvTypeError, match=message):
        await kv.get(["k"], consistency="bogus")  # type: ignore[arg-type]
    with pytest.raises(kvshim.KvTypeError, match=message):
        await kv.get_many([["k"]], consistency="bogus")  # type: ignore[arg-type]
    listing = kv.list(prefix=[], consistency="bogus")  # type: ignore[arg-type]
    with pytest.raises(kvshim.KvTypeError, match=message):  # as in Deno: at the first next()
        await collect(listing)


# --- empty keys and key size limits (§2.4) ------------------------------------------------


async def test_empty_key(kv: kvshim.Kv) -> None:
    entry = await kv.get([])
    assert entry.key == () and entry.value is None and entry.versionstamp is None
    [many] = await kv.get_many([[]])
    assert many.key == () and many.value is None
    with pytest.raises(kvshim.KvTypeError, match=exact("key cannot be empty")):
        await kv.set([], 1)
    with pytest.raises(kvshim.KvTypeError, match=exact("key cannot be empty")):
        await kv.delete([])


@pytest.mark.parametrize(
    ("key", "value", "expire_in", "message"),
    [
        ([], bytes(70000), None, "key cannot be empty"),
        ([b"\x01" * 3000], bytes(70000), None, "Key too large for write (max 2048 bytes)"),
        ([], print, None, "<class 'builtin_function_or_method'> could not be cloned."),
        (["k"], print, -1, "expireIn must be a non-negative integer: received -1"),
        ([], 1, -1, "expireIn must be a non-negative integer: received -1"),
    ],
    ids=[
        "empty-key-before-value-size",
        "key-size-before-value-size",
        "clone-before-key",
        "expire-in-before-clone",
        "expire-in-before-key",
    ],
)
async def test_set_validation_order(
    kv: kvshim.Kv, key: list[object], value: object, expire_in: int | None, message: str
) -> None:
    # Deno checks expireIn, then clones the value, then the key, then the value's size
    # (checked with 2.9.8); atomic().set() checks in the same order.
    with pytest.raises(kvshim.KvTypeError, match=exact(message)):
        await kv.set(key, value, expire_in=expire_in)
    with pytest.raises(kvshim.KvTypeError, match=exact(message)):
        kv.atomic().set(key, value, expire_in=expire_in)


WRITE_TOO_LARGE = exact("Key too large for write (max 2048 bytes)")
READ_TOO_LARGE = exact("Key too large for read (max 2049 bytes)")


@pytest.mark.parametrize(
    ("ok_key", "bad_key"),
    [
        (["x" * 2046], ["x" * 2047]),  # string: 1 + n + 1 bytes
        ([b"\x01" * 2046], [b"\x01" * 2047]),  # non-zero bytes
        ([bytes(1023)], [bytes(1024)]),  # zero bytes are escaped to two bytes
        (["\0" * 1023], ["\0" * 1024]),  # escaped NULs count twice
        (["ab", "x" * 2042], ["ab", "x" * 2043]),  # multi-part: 4 + 1 + n + 1
    ],
    ids=["str", "bytes", "zero-bytes", "nul-str", "multi-part"],
)
async def test_write_key_size_boundary(kv: kvshim.Kv, ok_key: Any, bad_key: Any) -> None:
    await kv.set(ok_key, "ok")
    assert (await kv.get(ok_key)).value == "ok"
    with pytest.raises(kvshim.KvTypeError, match=WRITE_TOO_LARGE):
        await kv.set(bad_key, "bad")
    with pytest.raises(kvshim.KvTypeError, match=WRITE_TOO_LARGE):
        await kv.delete(bad_key)
    await kv.delete(ok_key)
    assert (await kv.get(ok_key)).value is None


async def test_read_key_size_limit(kv: kvshim.Kv) -> None:
    # get reads [key, key + 0x00): a 2048-byte key works, a 2049-byte key already fails.
    entry = await kv.get(["x" * 2046])
    assert entry.value is None
    with pytest.raises(kvshim.KvTypeError, match=READ_TOO_LARGE):
        await kv.get(["x" * 2047])
    with pytest.raises(kvshim.KvTypeError, match=READ_TOO_LARGE):
        await kv.get_many([["a"], ["x" * 2048]])


async def test_versionstamped_key_in_plain_get_is_invalid(kv: kvshim.Kv) -> None:
    marker = kv.commit_versionstamp()
    with pytest.raises(
        kvshim.KvTypeError, match=exact("expected string, number, bigint, ArrayBufferView, boolean")
    ):
        await kv.get(["a", marker])
    with pytest.raises(
        kvshim.KvTypeError, match=exact("expected string, number, bigint, ArrayBufferView, boolean")
    ):
        await kv.delete(["a", marker])


async def test_set_versionstamped_key(kv: kvshim.Kv) -> None:
    marker = kv.commit_versionstamp()
    assert kv.commit_versionstamp() is marker
    result = await kv.set(["log", marker], "x")
    assert result.ok and result.versionstamp is not None
    entry = await kv.get(["log", result.versionstamp])
    assert entry.value == "x"
    assert entry.versionstamp == result.versionstamp
    [listed] = await collect(kv.list(prefix=["log"]))
    assert listed.key == ("log", result.versionstamp)


async def test_unsupported_value_writes_nothing(kv: kvshim.Kv) -> None:
    with pytest.raises(kvshim.KvTypeError, match="object"):
        await kv.set(["k"], object())
    with pytest.raises(kvshim.KvTypeError, match="function"):
        await kv.set(["k"], lambda: None)
    assert (await kv.get(["k"])).versionstamp is None


async def test_value_size_limit(kv: kvshim.Kv) -> None:
    await kv.set(["k"], bytes(65536))
    assert (await kv.get(["k"])).value == bytes(65536)
    with pytest.raises(kvshim.KvTypeError, match=exact("Value too large (max 65536 bytes)")):
        await kv.set(["k2"], bytes(65537))
    assert (await kv.get(["k2"])).value is None


async def test_get_returns_the_key_as_stored(kv: kvshim.Kv) -> None:
    # get's key is the stored key decoded, whatever form of it was passed: the same parts,
    # of the same types, as listing gives (1.0 reads back as 1, a bytearray as bytes...).
    class Name(str):
        pass

    keys: list[list[Any]] = [
        ["plain", 1, -7, 2**53 - 1],
        ["nul\x00inside", 0],
        ["naïve", 2],
        [1.0],
        [2.5, True],
        [bytearray(b"raw"), b"b"],
        [kvshim.BigInt(3)],
        [Name("sub")],
    ]
    for key in keys:
        await kv.set(key, "v")
        got = (await kv.get(key)).key
        listed = [e.key async for e in kv.list(prefix=[]) if e.key == got]
        assert len(listed) == 1, key
        assert [(type(p), p) for p in got] == [(type(p), p) for p in listed[0]], key
