"""Values: round-trips through the database, KvU64, unsupported values, size limits.

Spec: deno-kv-semantics.md §3 and the Python mapping in the brief: top-level bytes stay bytes,
KvU64 stays KvU64, everything else is V8 (tuples read back as lists, datetimes as aware UTC).
"""

from __future__ import annotations

import datetime
import math
from typing import Any

import pytest

import kvshim
from kvshim import BigInt, KvU64

from .conformance_support import exact

UTC = datetime.UTC

ROUND_TRIPS: list[tuple[str, Any]] = [
    ("none", None),
    ("true", True),
    ("false", False),
    ("zero", 0),
    ("minus-one", -1),
    ("int-2^30", 2**30),
    ("int-2^31", 2**31),
    ("int-max-safe", 2**53 - 1),
    ("int-min-safe", -(2**53 - 1)),
    ("float", 1.5),
    ("float-neg", -2.25),
    ("inf", math.inf),
    ("-inf", -math.inf),
    ("empty-str", ""),
    ("ascii", "hello"),
    ("latin1", "é"),
    ("two-byte", "α"),
    ("astral", "😀"),
    ("mixed-str", "aé😀\x00z"),
    ("long-str", "x" * 10_000),
    ("empty-list", []),
    ("list", [1, "a", None, True, 2.5]),
    ("dict", {"a": 1, "b": "x"}),
    ("empty-dict", {}),
    ("nested", {"a": [1, {"b": None}], "c": {"d": {"e": [[]]}}}),
    ("dict-int-like-key", {"1": "x"}),
    ("set", {"a", "b"}),
    ("empty-set", set()),
    ("bigint", BigInt(-5)),
    ("bigint-big", BigInt(2**64)),
    ("bigint-zero", BigInt(0)),
    ("nested-bigint", {"n": BigInt(5), "l": [BigInt(-1)]}),
    ("datetime", datetime.datetime(2024, 5, 6, 7, 8, 9, 123000, tzinfo=UTC)),
    ("epoch", datetime.datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC)),
    ("nested-bytes", {"b": b"\x07\x08"}),
    ("list-of-bytes", [b"", b"\x00\xff"]),
]


@pytest.mark.parametrize("value", [v for _, v in ROUND_TRIPS], ids=[n for n, _ in ROUND_TRIPS])
async def test_round_trip(kv: kvshim.Kv, value: Any) -> None:
    await kv.set(["v"], value)
    got = (await kv.get(["v"])).value
    assert got == value
    assert type(got) is type(value) or (
        isinstance(value, int) and isinstance(got, int | float) and not isinstance(value, bool)
    )


async def test_bool_values_stay_bool(kv: kvshim.Kv) -> None:
    await kv.set(["t"], True)
    await kv.set(["l"], [True, False, 1, 0])
    assert (await kv.get(["t"])).value is True
    got = (await kv.get(["l"])).value
    assert [type(x) for x in got[:2]] == [bool, bool]
    assert [type(x) for x in got[2:]] != [bool, bool]


async def test_negative_zero_and_nan_values(kv: kvshim.Kv) -> None:
    await kv.set(["z"], -0.0)
    await kv.set(["n"], math.nan)
    z = (await kv.get(["z"])).value
    assert z == 0 and math.copysign(1.0, z) < 0
    assert math.isnan((await kv.get(["n"])).value)


async def test_nested_kvu64_becomes_an_object(kv: kvshim.Kv) -> None:
    # §3.2: only a top-level KvU64 gets the LE64 encoding; nested, it is {value: 5n}.
    await kv.set(["k"], {"u": KvU64(5)})
    assert (await kv.get(["k"])).value == {"u": {"value": BigInt(5)}}


async def test_number_and_bigint_values_stay_distinct(kv: kvshim.Kv) -> None:
    # A JS number and a JS bigint are different values; reading and writing back an entry
    # must not turn one into the other (Deno code doing `count + 1n` depends on it).
    await kv.set(["k"], {"number": 5, "bigint": BigInt(5)})
    value = (await kv.get(["k"])).value
    assert type(value["number"]) is int
    assert isinstance(value["bigint"], BigInt)
    await kv.set(["k2"], value)
    again = (await kv.get(["k2"])).value
    assert type(again["number"]) is int and isinstance(again["bigint"], BigInt)


async def test_tuple_reads_back_as_list(kv: kvshim.Kv) -> None:
    await kv.set(["t"], (1, "a", (2, 3)))
    assert (await kv.get(["t"])).value == [1, "a", [2, 3]]


async def test_top_level_bytes(kv: kvshim.Kv) -> None:
    for i, value in enumerate([b"", b"\x00\x01\x02", bytes(range(256))]):
        await kv.set(["b", i], value)
        got = (await kv.get(["b", i])).value
        assert type(got) is bytes and got == value


async def test_bytes_like_values_read_back_as_bytes(kv: kvshim.Kv) -> None:
    await kv.set(["ba"], bytearray(b"xyz"))
    await kv.set(["mv"], memoryview(b"abcdef")[1:3])
    assert (await kv.get(["ba"])).value == b"xyz"
    assert (await kv.get(["mv"])).value == b"bc"  # only the view's range


async def test_datetime_reads_back_aware_utc(kv: kvshim.Kv) -> None:
    plus2 = datetime.timezone(datetime.timedelta(hours=2))
    moment = datetime.datetime(2024, 5, 6, 9, 8, 9, 500000, tzinfo=plus2)
    await kv.set(["d"], moment)
    got = (await kv.get(["d"])).value
    assert isinstance(got, datetime.datetime)
    assert got == moment
    assert got.utcoffset() == datetime.timedelta(0)


async def test_kvu64_value(kv: kvshim.Kv) -> None:
    for n in (0, 1, 258, 2**63, 2**64 - 1):
        await kv.set(["u"], KvU64(n))
        got = (await kv.get(["u"])).value
        assert isinstance(got, KvU64)
        assert got.value == n
        assert got == KvU64(n)


def test_kvu64_construction() -> None:
    u = KvU64(7)
    assert u.value == 7
    assert KvU64(7) == KvU64(7)
    assert KvU64(7) != KvU64(8)
    assert KvU64(0).value == 0 and KvU64(2**64 - 1).value == 2**64 - 1
    with pytest.raises(
        kvshim.KvRangeError, match=exact("Value must be a positive bigint: received -1")
    ):
        KvU64(-1)
    with pytest.raises(
        kvshim.KvRangeError, match=exact("Value must fit in a 64-bit unsigned integer")
    ):
        KvU64(2**64)
    with pytest.raises(kvshim.KvTypeError, match="Value must be a bigint"):
        KvU64(1.5)  # type: ignore[arg-type]
    with pytest.raises(kvshim.KvTypeError, match="Value must be a bigint"):
        KvU64("5")  # type: ignore[arg-type]


def test_kvu64_is_immutable() -> None:
    u = KvU64(7)
    with pytest.raises((AttributeError, TypeError)):
        u.value = 8  # type: ignore[misc]
    assert u.value == 7


def test_bigint_wrapper() -> None:
    assert BigInt(5) == BigInt(5)
    assert BigInt(5) != BigInt(6)
    assert hash(BigInt(5)) == hash(BigInt(5))


class _Custom:
    pass


@pytest.mark.parametrize(
    ("value", "type_name"),
    [
        (object(), "object"),
        (lambda: None, "function"),
        (_Custom(), "_Custom"),
        ({"nested": object()}, "object"),
        ([1, _Custom()], "_Custom"),
    ],
    ids=["object", "lambda", "instance", "nested-object", "nested-instance"],
)
async def test_unsupported_values(kv: kvshim.Kv, value: Any, type_name: str) -> None:
    with pytest.raises(kvshim.KvTypeError, match=type_name):
        await kv.set(["u"], value)
    assert (await kv.get(["u"])).versionstamp is None
    with pytest.raises(kvshim.KvTypeError, match=type_name):
        await kv.enqueue(value)


async def test_value_size_limits(kv: kvshim.Kv) -> None:
    message = exact("Value too large (max 65536 bytes)")
    await kv.set(["b"], bytes(65536))
    with pytest.raises(kvshim.KvTypeError, match=message):
        await kv.set(["b"], bytes(65537))
    assert (await kv.get(["b"])).value == bytes(65536)
    await kv.set(["s"], "a" * 65530)
    with pytest.raises(kvshim.KvTypeError, match=message):
        await kv.set(["s"], "a" * 65531)
    with pytest.raises(kvshim.KvTypeError, match=message):
        await kv.set(["l"], ["a" * 40000, "b" * 40000])


async def test_stored_value_is_a_copy(kv: kvshim.Kv) -> None:
    value: dict[str, Any] = {"a": [1, 2]}
    await kv.set(["k"], value)
    value["a"].append(3)
    got = (await kv.get(["k"])).value
    assert got == {"a": [1, 2]}
    got["a"].append(4)
    assert (await kv.get(["k"])).value == {"a": [1, 2]}
