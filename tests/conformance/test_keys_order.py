"""Keys: part types, the Python mapping, byte encodings (seen through cursors), ordering.

Spec: deno-kv-semantics.md §2.
"""

from __future__ import annotations

import base64
import datetime
import math
import random
import struct
from typing import Any

import pytest

import kvshim
from kvshim import AtomicCheck, BigInt

from .conformance_support import collect, exact, keys_of

INVALID_PART = "expected string, number, bigint, ArrayBufferView, boolean"


def _is_neg_zero(x: Any) -> bool:
    return isinstance(x, float) and x == 0.0 and math.copysign(1.0, x) < 0


# --- the Python mapping of part types (§2.1) ---------------------------------------------


async def test_int_and_float_parts_are_the_same_key(kv: kvshim.Kv) -> None:
    await kv.set(["a", 1], "int")
    entry = await kv.get(["a", 1.0])
    assert entry.value == "int"
    await kv.set(["a", 1.0], "float")
    assert (await kv.get(["a", 1])).value == "float"
    assert keys_of(await collect(kv.list(prefix=["a"]))) == [("a", 1)]


async def test_bigint_part_is_a_different_key_from_number(kv: kvshim.Kv) -> None:
    await kv.set(["a", 1], "number")
    await kv.set(["a", BigInt(1)], "bigint")
    assert (await kv.get(["a", 1])).value == "number"
    assert (await kv.get(["a", BigInt(1)])).value == "bigint"
    entries = await collect(kv.list(prefix=["a"]))
    assert values_in_order(entries) == ["bigint", "number"]  # bigint < number (§2.3)
    assert isinstance(entries[0].key[1], BigInt)
    assert entries[0].key[1] == BigInt(1)


def values_in_order(entries: list[kvshim.KvEntry]) -> list[Any]:
    return [e.value for e in entries]


async def test_bool_is_not_one(kv: kvshim.Kv) -> None:
    await kv.set(["a", True], "true")
    await kv.set(["a", 1], "one")
    await kv.set(["a", False], "false")
    await kv.set(["a", 0], "zero")
    assert (await kv.get(["a", True])).value == "true"
    assert (await kv.get(["a", 1])).value == "one"
    assert (await kv.get(["a", False])).value == "false"
    assert (await kv.get(["a", 0])).value == "zero"
    entries = await collect(kv.list(prefix=["a"]))
    assert [e.value for e in entries] == ["zero", "one", "false", "true"]
    parts = [e.key[1] for e in entries]
    assert [type(p) for p in parts] == [int, int, bool, bool]


async def test_negative_zero_is_a_different_key_and_round_trips(kv: kvshim.Kv) -> None:
    await kv.set(["z", -0.0], "neg")
    await kv.set(["z", 0], "pos")
    assert (await kv.get(["z", -0.0])).value == "neg"
    assert (await kv.get(["z", 0.0])).value == "pos"
    entries = await collect(kv.list(prefix=["z"]))
    assert [e.value for e in entries] == ["neg", "pos"]
    assert _is_neg_zero(entries[0].key[1])
    assert entries[1].key[1] == 0 and not _is_neg_zero(entries[1].key[1])


async def test_decoded_integral_numbers_are_int(kv: kvshim.Kv) -> None:
    await kv.set(["n", 3.0], 1)
    await kv.set(["n", 2.5], 2)
    entries = await collect(kv.list(prefix=["n"]))
    assert entries[0].key == ("n", 2.5) and type(entries[0].key[1]) is float
    assert entries[1].key == ("n", 3) and type(entries[1].key[1]) is int


@pytest.mark.parametrize("n", [2**53 - 1, -(2**53 - 1), 0, -1])
async def test_safe_integers_are_accepted(kv: kvshim.Kv, n: int) -> None:
    await kv.set(["i", n], "v")
    entry = await kv.get(["i", n])
    assert entry.value == "v"
    listed = await collect(kv.list(prefix=["i"]))
    assert listed[0].key == ("i", n) and type(listed[0].key[1]) is int


@pytest.mark.parametrize("n", [2**53, -(2**53), 2**64])
async def test_unsafe_integers_are_rejected_mentioning_bigint(kv: kvshim.Kv, n: int) -> None:
    with pytest.raises(kvshim.KvTypeError, match="BigInt"):
        await kv.set(["i", n], "v")
    with pytest.raises(kvshim.KvTypeError, match="BigInt"):
        await kv.get(["i", n])


@pytest.mark.parametrize("number", [1e300, 2.0**60, -(2.0**70), 2.0**53])
async def test_listed_keys_can_be_used_again(kv: kvshim.Kv, number: float) -> None:
    # A decoded key must address the entry it came from, also for large integral doubles
    # (which are beyond the safe-integer range a Python int key part accepts).
    await kv.set(["big", number], "v")
    [entry] = await collect(kv.list(prefix=["big"]))
    assert entry.key[1] == number
    assert (await kv.get(list(entry.key))).value == "v"
    await kv.delete(list(entry.key))
    assert await collect(kv.list(prefix=["big"])) == []


async def test_bytes_like_parts(kv: kvshim.Kv) -> None:
    await kv.set([bytearray(b"ab")], 1)
    await kv.set([memoryview(b"cd")], 2)
    assert (await kv.get([b"ab"])).value == 1
    assert (await kv.get([b"cd"])).value == 2
    entries = await collect(kv.list(prefix=[]))
    assert [e.key for e in entries] == [(b"ab",), (b"cd",)]
    assert all(type(e.key[0]) is bytes for e in entries)


async def test_lone_surrogate_is_the_replacement_character(kv: kvshim.Kv) -> None:
    # §2.1: lone UTF-16 surrogates become U+FFFD, so "\uD800" and "\uFFFD" are the same key.
    await kv.set(["\ud800"], 1)
    assert (await kv.get(["\ufffd"])).value == 1


async def test_nan_key_round_trips(kv: kvshim.Kv) -> None:
    await kv.set([math.nan], "nan")
    assert (await kv.get([float("nan")])).value == "nan"
    [entry] = await collect(kv.list(prefix=[]))
    assert isinstance(entry.key[0], float) and math.isnan(entry.key[0])


@pytest.mark.parametrize(
    "part",
    [None, {}, {"a": 1}, ["nested"], datetime.datetime(2024, 1, 1), object(), 1j],
    ids=["None", "empty-dict", "dict", "list", "datetime", "object", "complex"],
)
async def test_invalid_part_types(kv: kvshim.Kv, part: Any) -> None:
    with pytest.raises(kvshim.KvTypeError, match=exact(INVALID_PART)):
        await kv.set(["a", part], 1)
    with pytest.raises(kvshim.KvTypeError, match=exact(INVALID_PART)):
        await kv.get(["a", part])
    with pytest.raises(kvshim.KvTypeError, match=exact(INVALID_PART)):
        await kv.delete([part])
    assert await collect(kv.list(prefix=[])) == []


@pytest.mark.parametrize("key", ["a", b"a", 1, None, {"a": 1}])
async def test_key_must_be_a_list_or_tuple(kv: kvshim.Kv, key: Any) -> None:
    with pytest.raises(kvshim.KvTypeError):
        await kv.set(key, 1)
    with pytest.raises(kvshim.KvTypeError):
        await kv.get(key)


async def test_tuple_and_list_keys_are_equivalent(kv: kvshim.Kv) -> None:
    await kv.set(("t", 1), "x")
    entry = await kv.get(["t", 1])
    assert entry.value == "x"
    assert entry.key == ("t", 1)
    assert isinstance(entry.key, tuple)


async def test_bigint_magnitude_limit(kv: kvshim.Kv) -> None:
    ok = BigInt(2 ** (8 * 255) - 1)  # 255 bytes
    await kv.set(["b", ok], 1)
    assert (await kv.get(["b", ok])).value == 1
    await kv.set(["b", BigInt(-(2 ** (8 * 255) - 1))], 2)
    message = "Invalid mutation: BigUint requires more than 255 bytes to be represented"
    with pytest.raises(kvshim.KvTypeError, match=exact(message)):
        await kv.set(["b", BigInt(2 ** (8 * 255))], 1)
    with pytest.raises(kvshim.KvTypeError, match=exact(message)):
        await kv.set(["b", BigInt(-(2 ** (8 * 255)))], 1)


async def test_bigint_too_large_message_depends_on_the_operation(kv: kvshim.Kv) -> None:
    # Deno 2.9.8: reads show the bare reason, writes prefix it, checks and enqueues say less.
    key = ["b", BigInt(2 ** (8 * 255))]
    reason = "BigUint requires more than 255 bytes to be represented"
    with pytest.raises(kvshim.KvTypeError, match=exact(reason)):
        await kv.get(key)
    with pytest.raises(kvshim.KvTypeError, match=exact(reason)):
        kv.list(prefix=key)
    with pytest.raises(kvshim.KvTypeError, match=exact(f"Invalid mutation: {reason}")):
        await kv.delete(key)
    with pytest.raises(kvshim.KvTypeError, match=exact(f"Invalid mutation: {reason}")):
        kv.atomic().sum(key, 1)
    with pytest.raises(kvshim.KvTypeError, match=exact("Invalid check")):
        kv.atomic().check(AtomicCheck(key, None))
    with pytest.raises(kvshim.KvTypeError, match=exact("Invalid enqueue")):
        kv.atomic().enqueue(1, keys_if_undelivered=[key])


# --- byte encodings, observed through list cursors (§2.2, §5.2) ---------------------------
# With prefix [] the common prefix is empty, so a cursor is the base64url of the whole key.


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode()


def _float_bytes(x: float) -> bytes:
    (bits,) = struct.unpack(">Q", struct.pack(">d", x))
    bits = bits ^ 0xFFFF_FFFF_FFFF_FFFF if bits >> 63 else bits ^ (1 << 63)
    return b"\x21" + bits.to_bytes(8, "big")


ENCODINGS: list[tuple[str, Any, bytes]] = [
    ("bytes", b"\x00a", b"\x01\x00\xffa\x00"),
    ("empty-bytes", b"", b"\x01\x00"),
    ("string", "a\x00b", b"\x02a\x00\xffb\x00"),
    ("utf8", "é", b"\x02\xc3\xa9\x00"),
    ("bigint-zero", BigInt(0), b"\x14"),
    ("bigint-1", BigInt(1), b"\x15\x01"),
    ("bigint-256", BigInt(256), b"\x16\x01\x00"),
    ("bigint--1", BigInt(-1), b"\x13\xfe"),
    ("bigint--255", BigInt(-255), b"\x13\x00"),
    ("bigint--256", BigInt(-256), b"\x12\xfe\xff"),
    ("bigint-2^64", BigInt(2**64), b"\x1d\x09\x01" + bytes(8)),
    ("bigint--2^100", BigInt(-(2**100)), b"\x0b\xf2\xef" + b"\xff" * 12),
    ("bigint-2^100", BigInt(2**100), b"\x1d\x0d\x10" + bytes(12)),
    ("number-1", 1, _float_bytes(1.0)),
    ("number--1.5", -1.5, _float_bytes(-1.5)),
    ("number-0", 0, b"\x21\x80" + bytes(7)),
    ("number--0", -0.0, b"\x21\x7f" + b"\xff" * 7),
    ("number-nan", math.nan, b"\x21\xff\xf8" + bytes(6)),
    ("number-inf", math.inf, b"\x21\xff\xf0" + bytes(6)),
    ("false", False, b"\x26"),
    ("true", True, b"\x27"),
]


@pytest.mark.parametrize(
    ("part", "encoded"), [(p, e) for _, p, e in ENCODINGS], ids=[name for name, _, _ in ENCODINGS]
)
async def test_part_encoding_via_cursor(kv: kvshim.Kv, part: Any, encoded: bytes) -> None:
    await kv.set([part], 1)
    it = kv.list(prefix=[], limit=1)
    entries = await collect(it)
    assert len(entries) == 1
    assert it.cursor == _b64(encoded)


async def test_multi_part_key_encoding_via_cursor(kv: kvshim.Kv) -> None:
    await kv.set(["a", 1, b"\x01", True], 1)
    it = kv.list(prefix=[], limit=1)
    await collect(it)
    assert it.cursor == _b64(b"\x02a\x00" + _float_bytes(1.0) + b"\x01\x01\x00\x27")


# --- ordering (§2.3) ---------------------------------------------------------------------


TOTAL_ORDER: list[Any] = [
    b"",
    b"\x00",
    b"\x00\x00",
    b"\x01",
    "",
    "B",
    "a",
    "b",
    "é",
    "\uffff",
    "😀",
    BigInt(-(2**100)),
    BigInt(-5),
    BigInt(0),
    BigInt(1),
    BigInt(5),
    BigInt(2**100),
    -math.inf,
    -1.5,
    -1,
    -0.0,
    0,
    1,
    1.5,
    math.inf,
    math.nan,
    False,
    True,
]


def _same_part(a: Any, b: Any) -> bool:
    if type(a) is not type(b) and not (
        isinstance(a, int | float)
        and isinstance(b, int | float)
        and not isinstance(a, bool)
        and not isinstance(b, bool)
    ):
        return False
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    if isinstance(a, float) and a == 0:
        return bool(b == 0 and _is_neg_zero(a) == _is_neg_zero(b))
    return bool(a == b)


async def test_total_order_of_single_part_keys(kv: kvshim.Kv) -> None:
    for i, part in enumerate(reversed(TOTAL_ORDER)):
        await kv.set([part], i)
    entries = await collect(kv.list(prefix=[]))
    got = [e.key[0] for e in entries]
    assert len(got) == len(TOTAL_ORDER)
    for expected, actual in zip(TOTAL_ORDER, got, strict=True):
        assert _same_part(expected, actual), (expected, actual)
    reverse = await collect(kv.list(prefix=[], reverse=True))
    assert len(reverse) == len(entries)
    for forward, backward in zip(entries, reversed(reverse), strict=True):
        assert _same_part(forward.key[0], backward.key[0])


async def test_prefix_key_sorts_first_and_is_outside_its_prefix(kv: kvshim.Kv) -> None:
    for key in (["p"], ["p", "x"], ["p", 1], ["pq"], ["o"], ["p", "x", "y"]):
        await kv.set(key, 1)
    everything = keys_of(await collect(kv.list(prefix=[])))
    assert everything == [("o",), ("p",), ("p", "x"), ("p", "x", "y"), ("p", 1), ("pq",)]
    assert keys_of(await collect(kv.list(prefix=["p"]))) == [
        ("p", "x"),
        ("p", "x", "y"),
        ("p", 1),
    ]


async def test_bytes_order_is_unsigned(kv: kvshim.Kv) -> None:
    for part in (b"\xff", b"\x7f", b"\x80", b"\x00\xff", b"\x00"):
        await kv.set([part], 1)
    got = [e.key[0] for e in await collect(kv.list(prefix=[]))]
    assert got == [b"\x00", b"\x00\xff", b"\x7f", b"\x80", b"\xff"]


async def test_multi_part_ordering_is_part_by_part(kv: kvshim.Kv) -> None:
    keys: list[list[Any]] = [["a", 2, "z"], ["a", 1, "z"], ["a", 1], ["a", BigInt(9)], ["a", "b"]]
    for key in keys:
        await kv.set(key, 1)
    got = keys_of(await collect(kv.list(prefix=["a"])))
    assert got == [("a", "b"), ("a", BigInt(9)), ("a", 1), ("a", 1, "z"), ("a", 2, "z")]


_TYPE_RANK = {bytes: 0, str: 1, BigInt: 2, int: 3, float: 3}


def _model_part(part: Any) -> tuple[Any, ...]:
    """Where a part sorts, per §2.3, computed without the codec."""
    if isinstance(part, bool):
        return (4 + int(part),)
    if isinstance(part, BigInt):
        return (2, part.value)
    if isinstance(part, int | float):
        x = float(part)
        return (3, x, 0 if _is_neg_zero(x) else 1)
    if isinstance(part, str):
        return (1, part.encode())
    return (_TYPE_RANK[type(part)], part)


def _random_part(rng: random.Random) -> Any:
    kind = rng.randrange(7)
    if kind == 0:
        return bytes(rng.randrange(4) for _ in range(rng.randrange(4)))
    if kind == 1:
        return "".join(rng.choice("a\x00é😀\uffffZ") for _ in range(rng.randrange(4)))
    if kind == 2:
        return BigInt(rng.choice([-1, 1]) * rng.randrange(2 ** rng.choice([4, 40, 80, 200])))
    if kind == 3:
        return rng.choice([-1, 1]) * rng.randrange(2**53)
    if kind == 4:
        return rng.choice([-1.0, 1.0]) * rng.random() * 10 ** rng.randrange(-5, 300)
    if kind == 5:
        return rng.choice([math.inf, -math.inf, -0.0, 0.0, 0.5])
    return rng.random() < 0.5


async def test_random_keys_sort_like_the_model(kv: kvshim.Kv) -> None:
    rng = random.Random(20260801)
    keys: dict[tuple[Any, ...], tuple[Any, ...]] = {}
    for _ in range(400):
        key = tuple(_random_part(rng) for _ in range(rng.randrange(1, 4)))
        model = tuple(_model_part(p) for p in key)
        keys[model] = key  # dedupe by sort position (1 and 1.0 are the same key)
    op = kv.atomic()
    for i, key in enumerate(keys.values()):
        op.set(list(key), i)
        if i % 200 == 199:
            assert (await op.commit()).ok
            op = kv.atomic()
    assert (await op.commit()).ok
    entries = await collect(kv.list(prefix=[]))
    assert len(entries) == len(keys)
    got = [tuple(_model_part(p) for p in e.key) for e in entries]
    assert got == sorted(keys)
    index = {model: i for i, model in enumerate(keys)}
    for entry in entries:
        assert entry.value == index[tuple(_model_part(p) for p in entry.key)]
