"""The value codec: golden V8 bytes (the spec's Appendix B and bytes captured from Deno 2.9.8),
the Python <-> JavaScript mapping, KvU64 and BigInt, error handling, and round-trip properties.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import os
import sqlite3
import struct
import subprocess
from collections import OrderedDict
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kvshim.errors import KvRangeError, KvTypeError
from kvshim.model import EncodedValue, ValueEncoding
from kvshim.runtime.deno import locate_deno
from kvshim.values import (
    BigInt,
    JSArrayBufferView,
    JSDate,
    JSError,
    JSRegExp,
    KvU64,
    decode_v8,
    decode_value,
    encode_v8,
    encode_value,
)

DENO_SCRIPT = Path(__file__).parent / "deno" / "v8_golden.ts"


@dataclasses.dataclass(frozen=True)
class StartsWith:
    """Matches a string with this prefix (a stack trace names the script's path)."""

    prefix: str


def assert_same(actual: object, expected: object, seen: set[tuple[int, int]] | None = None) -> None:
    """Strict equality: same types (``1`` is not ``1.0``), float bits, dict order; NaN == NaN."""
    seen = set() if seen is None else seen
    if (id(actual), id(expected)) in seen:
        return
    seen.add((id(actual), id(expected)))
    if isinstance(expected, StartsWith):
        assert isinstance(actual, str) and actual.startswith(expected.prefix), actual
        return
    assert type(actual) is type(expected), (actual, expected)
    if isinstance(expected, float):
        assert isinstance(actual, float)
        assert (math.isnan(actual) and math.isnan(expected)) or struct.pack(
            "<d", actual
        ) == struct.pack("<d", expected), (actual, expected)
    elif isinstance(expected, dict):
        assert isinstance(actual, dict) and list(actual) == list(expected), (actual, expected)
        for key in expected:
            assert_same(actual[key], expected[key], seen)
    elif isinstance(expected, list | tuple):
        assert isinstance(actual, list | tuple) and len(actual) == len(expected)
        for a, e in zip(actual, expected, strict=True):
            assert_same(a, e, seen)
    elif dataclasses.is_dataclass(expected):
        for field in dataclasses.fields(expected):
            assert_same(getattr(actual, field.name), getattr(expected, field.name), seen)
    else:
        assert actual == expected


# --- Appendix B of deno-kv-semantics.md --------------------------------------------------------

DECODE_ONLY = object()
APPENDIX_B: list[tuple[str, str, object, object]] = [
    # (JS value, hex Deno wrote, Python value read, Python value to write or DECODE_ONLY)
    ("0", "FF104900", 0, 0),
    ("-1", "FF104901", -1, -1),
    ("2**30", "FF10498080808008", 2**30, 2**30),
    ("2**31", "FF104E000000000000E041", 2**31, 2**31),
    ("-0", "FF104E0000000000000080", -0.0, -0.0),
    ("NaN", "FF104E000000000000F87F", math.nan, math.nan),
    ("42", "FF104954", 42, 42),
    ("1.5", "FF104E000000000000F83F", 1.5, 1.5),
    ('"hi"', "FF1022026869", "hi", "hi"),
    ('"hello"', "FF10220568656C6C6F", "hello", "hello"),
    ('"é"', "FF102201E9", "é", "é"),
    ('"α"', "FF106302B103", "α", "α"),
    ('"😀"', "FF1063043DD800DE", "😀", "😀"),
    ('""', "FF102200", "", ""),
    ("-5n", "FF105A110500000000000000", BigInt(-5), None),
    ("0n", "FF105A00", BigInt(0), None),
    ("42n", "FF105A102A00000000000000", BigInt(42), None),
    ("2n**64n", "FF105A2000000000000000000100000000000000", BigInt(2**64), 2**64),
    ("{}", "FF106F7B00", {}, {}),
    ("[]", "FF104100240000", [], []),
    ('[1,"a"]', "FF1041024902220161240002", [1, "a"], [1, "a"]),
    ('{a:1,b:"x"}', "FF106F22016149022201622201787B02", {"a": 1, "b": "x"}, {"a": 1, "b": "x"}),
    (
        "{a:[1,{b:null}]}",
        "FF106F220161410249026F220162307B012400027B01",
        {"a": [1, {"b": None}]},
        {"a": [1, {"b": None}]},
    ),
    ('{1:"x"}', "FF106F49022201787B01", {"1": "x"}, {"1": "x"}),
    ('new Map([["k",1]])', "FF103B22016B49023A02", {"k": 1}, DECODE_ONLY),
    ('new Set(["a"])', "FF10272201612C01", {"a"}, {"a"}),
    ("new Date(1000)", "FF10440000000000408F40", datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC), None),
    ("/a/g", "FF105222016101", JSRegExp("a", "g"), JSRegExp("a", "g")),
    ("[1,,3]", "FF1061034900490249044906400203", [1, None, 3], DECODE_ONLY),
    (
        "{b:Uint8Array[7,8]}",
        "FF106F2201624202070856420002007B01",
        {"b": b"\x07\x08"},
        {"b": b"\x07\x08"},
    ),
    ("undefined", "FF105F", None, DECODE_ONLY),
    ("false", "FF1046", False, False),
    ("true", "FF1054", True, True),
    ("null", "FF1030", None, None),
    ("new Number(1)", "FF106E000000000000F03F", 1, DECODE_ONLY),
    ("new ArrayBuffer(2)", "FF1042020000", b"\x00\x00", DECODE_ONLY),
]


@pytest.mark.parametrize(
    ("js", "hex_", "decoded", "written"), APPENDIX_B, ids=[r[0] for r in APPENDIX_B]
)
def test_appendix_b_decode(js: str, hex_: str, decoded: object, written: object) -> None:
    assert_same(decode_v8(bytes.fromhex(hex_)), decoded)


@pytest.mark.parametrize(
    ("js", "hex_", "written"),
    [
        (js, h, decoded if w is None else w)
        for js, h, decoded, w in APPENDIX_B
        if w is not DECODE_ONLY
    ],
)
def test_appendix_b_encode(js: str, hex_: str, written: object) -> None:
    assert encode_v8(written).hex().upper() == hex_


def test_appendix_b_non_v8_encodings() -> None:
    assert encode_value(KvU64(258)) == EncodedValue(bytes.fromhex("0201000000000000"), 2)
    assert encode_value(b"\x01\x02\x03") == EncodedValue(b"\x01\x02\x03", 3)
    assert decode_value(EncodedValue(bytes.fromhex("0201000000000000"), 2)) == KvU64(258)
    assert decode_value(EncodedValue(b"\x01\x02\x03", 3)) == b"\x01\x02\x03"


# --- encode_value / decode_value ----------------------------------------------------------------


@pytest.mark.parametrize("raw", [b"ab", bytearray(b"ab"), memoryview(b"xaby")[1:3]])
def test_top_level_bytes_are_stored_raw(raw: bytes | bytearray | memoryview) -> None:
    encoded = encode_value(raw)
    assert encoded == EncodedValue(b"ab", ValueEncoding.BYTES)
    assert type(encoded.data) is bytes
    assert type(decode_value(encoded)) is bytes


def test_nested_kv_u64_is_an_object_holding_a_bigint() -> None:
    # Deno writes {u: new Deno.KvU64(5n)} as {u: {value: 5n}}.
    encoded = encode_value({"u": KvU64(5)})
    assert encoded.encoding == ValueEncoding.V8
    assert encoded.data.hex() == "ff106f2201756f220576616c75655a1005000000000000007b017b01"
    assert decode_value(encoded) == {"u": {"value": BigInt(5)}}


def test_everything_else_is_v8() -> None:
    assert encode_value("x") == EncodedValue(bytes.fromhex("ff10220178"), ValueEncoding.V8)
    assert encode_value(None).encoding == ValueEncoding.V8


def test_unknown_encoding() -> None:
    with pytest.raises(KvTypeError, match=r"^The value encoding 9 is unknown\.$"):
        decode_value(EncodedValue(b"", 9))


@pytest.mark.parametrize("data", [b"", b"\x49\x02", b"\xff", b"\xff\x10", b"\xff\x10\x6f"])
def test_bad_v8_bytes(data: bytes) -> None:
    with pytest.raises(KvRangeError, match=r"^could not deserialize value$"):
        decode_value(EncodedValue(data, ValueEncoding.V8))


def test_bad_le64_length() -> None:
    with pytest.raises(KvRangeError):
        decode_value(EncodedValue(b"\x01", ValueEncoding.LE64))


def test_encode_v8_writes_bytes_as_uint8array() -> None:
    # Queue payloads are always V8, even for bytes.
    assert encode_v8(b"\x01").hex() == "ff104201015642000100"


# --- KvU64 and BigInt --------------------------------------------------------------------------


def test_kv_u64() -> None:
    value = KvU64(5)
    assert value.value == 5 and int(value) == 5 and [0, 1, 2, 3, 4, 5][value] == 5
    assert value == KvU64(5) and value != KvU64(6) and hash(value) == hash(KvU64(5))
    assert repr(value) == "KvU64(5)"
    assert KvU64(2**64 - 1).value == 2**64 - 1 and KvU64(BigInt(3)) == KvU64(3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        value.value = 6  # type: ignore[misc]


@pytest.mark.parametrize(
    ("arg", "error", "message"),
    [
        (1.5, KvTypeError, "Value must be a bigint: received number"),
        ("5", KvTypeError, "Value must be a bigint: received string"),
        (True, KvTypeError, "Value must be a bigint: received boolean"),
        (None, KvTypeError, "Value must be a bigint: received object"),  # typeof null
        ([], KvTypeError, "Value must be a bigint: received object"),
        (-1, KvRangeError, "Value must be a positive bigint: received -1"),
        (2**64, KvRangeError, "Value must fit in a 64-bit unsigned integer"),
    ],
)
def test_kv_u64_validation(arg: Any, error: type[Exception], message: str) -> None:
    with pytest.raises(error) as info:
        KvU64(arg)
    assert str(info.value) == message


def test_bigint() -> None:
    assert BigInt(5).value == 5 and int(BigInt(5)) == 5
    five: object = 5
    assert BigInt(5) == BigInt(5) and hash(BigInt(5)) == hash(BigInt(5)) and BigInt(5) != five
    assert repr(BigInt(-5)) == "BigInt(-5)"
    with pytest.raises(KvTypeError):
        BigInt(1.0)  # type: ignore[arg-type]
    with pytest.raises(KvTypeError):
        BigInt(True)


# --- The mapping, rule by rule -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "hex_"),
    [
        (1.0, "ff104902"),  # JS 1.0 is 1, a Smi
        (-(2.0**31), "ff1049ffffffff0f"),
        (2.0**31, "ff104e000000000000e041"),
        (-(2**31), "ff1049ffffffff0f"),
        (2**53 - 1, "ff104effffffffffff3f43"),
        (2**53, "ff105a100000000000002000"),  # beyond the safe range: a bigint
        (-(2**53), "ff105a110000000000002000"),
        (math.inf, "ff104e000000000000f07f"),
        (math.inf - math.inf, "ff104e000000000000f87f"),  # NaN is written canonically
        ([1.5, 2], "ff1041024e000000000000f83f4e0000000000000040240002"),  # doubles array
        ([1, 2**40], "ff1041024e000000000000f03f4e0000000000007042240002"),
        ([1.5, 2, "a"], "ff1041034e000000000000f83f4904220161240003"),
        ([True, 1.5], "ff104102544e000000000000f83f240002"),
        ((1, 2), "ff10410249024904240002"),
        ({"ab": "α"}, "ff106f22026162006302b1037b01"),  # padding before two-byte text
        ({"2147483648": 1, "2147483647": 2}, "ff106f49feffffff0f49044e000000000000e04149027b02"),
        ({"01": 1, "-1": 2, "1.5": 3}, "ff106f22023031490222022d3149042203312e3549067b03"),
        ({1: "a"}, "ff103b49022201613a02"),  # a non-str key makes a Map
        (frozenset([1]), "ff102749022c01"),
        (JSDate(math.nan), "ff1044000000000000f87f"),
        (JSError("TypeError", "t"), "ff1072546d2201742e"),
        (JSError("MyError"), "ff10722e"),  # only the built-in names survive
        (JSArrayBufferView("Int32Array", b"\x01\0\0\0"), "ff104204010000005664000400"),
    ],
)
def test_encode_rules(value: object, hex_: str) -> None:
    assert encode_v8(value).hex() == hex_


def test_index_keys_come_first_like_in_javascript() -> None:
    value = {"b": 1, "2": 2, "1": 3, "4294967295": 4}
    assert list(decode_v8(encode_v8(value))) == ["1", "2", "b", "4294967295"]  # type: ignore[call-overload]


def test_two_byte_strings_are_aligned_at_any_offset() -> None:
    for prefix in range(6):
        data = encode_v8(["x" * prefix, "αβ"])
        start = data.index(b"c\x04")
        assert (start + 2) % 2 == 0  # the UTF-16 data starts at an even offset
        assert decode_v8(data) == ["x" * prefix, "αβ"]


def test_datetimes() -> None:
    aware = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=timezone(timedelta(hours=2)))
    decoded = decode_v8(encode_v8(aware))
    assert decoded == aware.replace(microsecond=123000)
    assert isinstance(decoded, datetime) and decoded.tzinfo is UTC
    assert decode_v8(encode_v8(datetime(2024, 5, 6))) == datetime(2024, 5, 6, tzinfo=UTC)
    # Sub-millisecond parts are truncated towards zero, as JS TimeClip does.
    before_epoch = datetime(1969, 12, 31, 23, 59, 59, 999500, tzinfo=UTC)
    assert encode_v8(before_epoch) == encode_v8(JSDate(0.0))
    assert encode_v8(datetime(1970, 1, 1, 0, 0, 0, 1500, tzinfo=UTC)) == encode_v8(JSDate(1.0))


class Color(enum.IntEnum):
    RED = 1


class Name(enum.StrEnum):
    ADA = "ada"


def test_subclasses_encode_as_their_base() -> None:
    assert encode_v8(Color.RED) == encode_v8(1)
    assert encode_v8(Name.ADA) == encode_v8("ada")
    assert encode_v8(OrderedDict(a=1)) == encode_v8({"a": 1})
    assert encode_v8({Name.ADA: 1}) == encode_v8({"ada": 1})


@pytest.mark.parametrize(
    ("value", "name"),
    [
        (object(), "object"),
        (lambda: 1, "function"),
        (date(2024, 1, 1), "datetime.date"),
        (1j, "complex"),
    ],
)
def test_unsupported_values(value: object, name: str) -> None:
    with pytest.raises(KvTypeError, match=rf"^<class '{name}'> could not be cloned\.$"):
        encode_v8({"nested": [value]})


def test_bad_js_types() -> None:
    with pytest.raises(KvTypeError):
        encode_v8(JSRegExp("a", "z"))
    with pytest.raises(KvTypeError):
        encode_v8(JSArrayBufferView("Int128Array", b""))


def test_too_deep_to_encode() -> None:
    value: list[object] = []
    for _ in range(100_000):
        value = [value]
    with pytest.raises(KvRangeError):
        encode_v8(value)


def test_python_cycles_and_sharing() -> None:
    cyclic: dict[str, object] = {"a": 1}
    cyclic["self"] = cyclic
    assert encode_v8(cyclic).hex() == "ff106f2201614902220473656c665e007b02"  # as Deno writes
    decoded = decode_v8(encode_v8(cyclic))
    assert isinstance(decoded, dict) and decoded["self"] is decoded
    inner = [1]
    decoded = decode_v8(encode_v8([inner, b"x", inner]))
    assert isinstance(decoded, list) and decoded[0] is decoded[2] and decoded[1] == b"x"


# --- Decoding details --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hex_", "expected"),
    [
        ("ff0f4902", 1),  # format 15, as the denokv npm package and v8serialize write
        ("ff0d4202010256420101", b"\x02"),  # format 13: views have no flags
        ("ff103f0241014902240001", [1]),  # a verify-count tag is skipped
        ("ff10558080808010", 2**32),  # 'U' uint32
        ("ff105303c3a978", "éx"),  # 'S' UTF-8
        ("ff100063020000", "\0"),  # padding
        ("ff104e000000000000e07f", 2.0**1023),  # integral but unsafe: stays a float
        ("ff106f4e000000000000e83f49027b01", {"0.75": 1}),
        ("ff107922", True),  # true object, then ignored trailing bytes
        ("ff1073006302b103", "α"),  # String object holding a two-byte string (padded)
        # Two views of one buffer: the second refers to the buffer ('^' 1) before its 'V'.
        (
            "ff1041024202010256420002005e015662000200240002",
            [b"\x01\x02", JSArrayBufferView("Int8Array", b"\x01\x02")],
        ),
    ],
)
def test_decode_details(hex_: str, expected: object) -> None:
    assert_same(decode_v8(bytes.fromhex(hex_)), expected)


@pytest.mark.parametrize(
    "hex_",
    [
        "ff114902",  # a format newer than Deno's
        "ff0c4902",  # a format older than 13
        "ff105e00",  # a reference to nothing
        "ff1072635e002e",  # an error whose cause refers to the error itself
        "ff1061ffffffff0f4000ffffffff0f",  # a sparse array too long to build
        "ff1041ff0149",  # a dense array longer than its data
        "ff105c00",  # a transferred host object
        "ff106301b1",  # an odd two-byte length
        "ff10420201025664000200",  # an Int32Array not a multiple of 4
        "ff10420201025642010200",  # a view outside its buffer
        "ff10522201618004",  # unknown RegExp flags
        "ff106f5449027b01",  # a boolean object key
        "ff102d",  # a hole outside an array
        "ff106f220161",  # truncated
    ],
)
def test_decode_rejects(hex_: str) -> None:
    with pytest.raises(KvRangeError, match=r"^could not deserialize value$"):
        decode_v8(bytes.fromhex(hex_))


def test_map_with_unhashable_keys_reads_as_pairs_and_keeps_its_identity() -> None:
    # [{}, new Map([[{a: 1}, "x"]]), <the same Map>]
    data = bytes.fromhex("ff1041036f7b003b6f22016149027b012201783a025e02240003")
    decoded = decode_v8(data)
    assert decoded == [{}, [({"a": 1}, "x")], [({"a": 1}, "x")]]
    assert isinstance(decoded, list) and decoded[2] is decoded[1]


def test_set_with_unhashable_members_reads_as_a_list() -> None:
    # [{}, new Set([[1]]), <the same Set>]
    data = bytes.fromhex("ff1041036f7b0027410149022400012c015e02240003")
    decoded = decode_v8(data)
    assert decoded == [{}, [[1]], [[1]]]
    assert isinstance(decoded, list) and decoded[2] is decoded[1]


def test_decode_accepts_bytearray_and_memoryview() -> None:
    assert decode_v8(bytearray(b"\xff\x10\x49\x02")) == 1
    assert decode_v8(memoryview(b"\xff\x10\x49\x02")) == 1


def test_every_truncation_is_rejected() -> None:
    data = encode_v8({"a": [1, "αβ", b"x", {1, 2}, datetime(2020, 1, 1), 2**70], "b": 1.5})
    for end in range(len(data)):
        with pytest.raises(KvRangeError):
            decode_v8(data[:end])


@given(st.binary(max_size=64))
def test_decode_garbage_raises_only_range_errors(tail: bytes) -> None:
    try:
        decode_v8(b"\xff\x10" + tail)
    except KvRangeError:
        pass


# --- Bytes captured from Deno 2.9.8 --------------------------------------------------------------

SAME = object()


@dataclasses.dataclass(frozen=True)
class Golden:
    """What kvshim reads from Deno's bytes, and what it must write to get those bytes back:
    ``SAME`` (the value read), another value, or ``None`` when Python cannot express it."""

    read: object
    write: object = SAME


def _stack(prefix: str) -> Any:  # a StartsWith where JSError wants a str
    return StartsWith(prefix + "\n    at file://")


_cyclic: dict[str, object] = {"a": 1}
_cyclic["self"] = _cyclic
_shared = {"s": 1}
_deep: object = "bottom"
for _ in range(50):
    _deep = [_deep]

DENO_GOLDENS: dict[str, Golden] = {
    "int_small": Golden(7),
    "int_negative": Golden(-123456),
    "smi_min": Golden(-(2**31)),
    "smi_max": Golden(2**31 - 1),
    "int_2_31": Golden(2**31),
    "max_safe": Golden(2**53 - 1),
    "min_safe": Golden(-(2**53) + 1),
    "int_2_53": Golden(2.0**53),
    "float": Golden(3.14159),
    "float_tiny": Golden(5e-324),
    "float_huge": Golden(1e300),
    "negative_zero": Golden(-0.0),
    "nan": Golden(math.nan),
    "infinity": Golden(math.inf),
    "negative_infinity": Golden(-math.inf),
    "string_long": Golden("x" * 200),
    "string_latin1": Golden("café ÿ"),
    "string_two_byte_long": Golden("α" * 100),
    "string_emoji": Golden("😀 hi"),
    "object_two_byte_padded": Golden({"ab": "α"}),
    "object_two_byte_key": Golden({"ключ": 1, "é": 2}),
    "array_two_byte": Golden(["a", "β", "γγ", "δ", {"k": "ε"}]),
    "nested": Golden({"a": {"b": {"c": [1, "x", None, True, False]}}}),
    "index_keys": Golden(
        {"1": 3, "2": 2, "10": 5, "4294967294": 7, "b": 1, "a": 4, "01": 6, "4294967295": 8}
    ),
    "index_key_2_31": Golden({"2147483647": 2, "2147483648": 1}),
    "bigint_small": Golden(BigInt(123)),
    "bigint_huge": Golden(BigInt(2**100)),
    "bigint_negative_huge": Golden(BigInt(-(2**64) - 1)),
    "bigint_in_object": Golden({"n": BigInt(2**53 + 1)}),
    "date": Golden(datetime(2023, 11, 14, 22, 13, 20, 123000, tzinfo=UTC)),
    "date_before_epoch": Golden(datetime(1969, 12, 30, 23, 59, 59, 999000, tzinfo=UTC)),
    "date_invalid": Golden(JSDate(math.nan)),
    "date_far": Golden(JSDate(8.64e15)),
    "map_mixed_keys": Golden({1: "a", "1": "b", 2.5: "c", None: "d"}),
    "map_object_key": Golden([({"a": 1}, "x")], None),
    "set_single": Golden({"only"}),
    "set_mixed": Golden({1, "a", 2.5}, None),  # Python's set order is not JS insertion order
    "set_unhashable": Golden([[1], {"a": 1}], None),
    "uint8_nested": Golden({"data": b"\x01\x02\x03"}),
    "uint8_offset": Golden({"v": b"\x03\x04\x05"}, None),
    "uint8_two_views": Golden([b"\x01\x02", b"\x05\x06"], None),
    "array_buffer": Golden(bytes(range(1, 9)), None),
    "int32_array": Golden(JSArrayBufferView("Int32Array", b"\x01\0\0\0\xff\xff\xff\xff")),
    "float64_array": Golden(JSArrayBufferView("Float64Array", struct.pack("<d", 1.5))),
    "bigint64_array": Golden(JSArrayBufferView("BigInt64Array", b"\xff" * 8)),
    "data_view": Golden(JSArrayBufferView("DataView", b"\x03\x04\x05"), None),
    "resizable_view": Golden({"r": b"\0\0\0\0"}, None),
    "cyclic": Golden(_cyclic),
    "shared": Golden([_shared, _shared]),
    "sparse": Golden([1, None, 3], None),
    "sparse_tail": Golden([None] * 5 + ["x"], None),
    "holey_filled": Golden([1, 2, 3], None),
    "array_named_property": Golden([1, 2], None),
    "undefined_in_object": Golden({"u": None}, None),
    "regexp": Golden(JSRegExp("ab+c", "gi")),
    "regexp_all_flags": Golden(JSRegExp("x", "dgimsuy")),
    "regexp_unicode_sets": Golden(JSRegExp("[\\p{L}]", "v")),
    "error": Golden(JSError("Error", "boom", _stack("Error: boom"))),
    "error_no_message": Golden(JSError("Error", None, _stack("Error"))),
    "type_error_with_cause": Golden(
        JSError("TypeError", "bad", _stack("TypeError: bad"), {"code": 1})
    ),
    "range_error": Golden(JSError("RangeError", "r", _stack("RangeError: r"))),
    "boxed": Golden([1.5, "s", False, BigInt(7)], None),
    "kv_u64_nested": Golden({"u": {"value": BigInt(5)}}, {"u": KvU64(5)}),
    "double_array": Golden([1.5, 2, 3]),
    "double_array_large_int": Golden([1, 2**40]),
    "mixed_array": Golden([1.5, 2, "a"]),
    "empty_containers": Golden({"a": [], "b": {}, "d": set(), "e": ""}),
    "long_array": Golden(list(range(300))),
    "deep": Golden(_deep),
    "dom_exception": Golden(
        {
            "type": "DOMException",
            "message": "m",
            "name": "AbortError",
            "stack": _stack("AbortError: m"),
        },
        None,
    ),
}


@pytest.fixture(scope="module")
def deno_values(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, bytes]]:
    binary = locate_deno()
    if binary is None:
        pytest.skip("the deno binary is not installed (pip install deno)")
    tmp = tmp_path_factory.mktemp("deno_golden")
    path = tmp / "golden.sqlite"
    env = {
        **os.environ,
        "DENO_DIR": str(tmp / "deno_dir"),
        "DENO_NO_UPDATE_CHECK": "1",
        "NO_COLOR": "1",
    }
    command = [binary, "run", "-A", "--unstable-kv", str(DENO_SCRIPT), str(path)]
    subprocess.run(command, check=True, env=env, timeout=120, capture_output=True)
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT k, v, v_encoding FROM kv").fetchall()
    db.close()
    assert all(encoding == ValueEncoding.V8 for _, _, encoding in rows)
    # Each key is the one-part key [name]: 02, the UTF-8 name, 00.
    yield {key[1:-1].decode(): value for key, value, _ in rows}


@pytest.mark.deno
def test_deno_wrote_every_golden(deno_values: dict[str, bytes]) -> None:
    assert sorted(deno_values) == sorted(DENO_GOLDENS)


@pytest.mark.deno
@pytest.mark.parametrize("name", list(DENO_GOLDENS))
def test_deno_golden(name: str, deno_values: dict[str, bytes]) -> None:
    golden = DENO_GOLDENS[name]
    data = deno_values[name]
    decoded = decode_v8(data)
    assert_same(decoded, golden.read)
    if golden.write is not None:
        written = decoded if golden.write is SAME else golden.write
        assert encode_v8(written).hex() == data.hex()


@pytest.mark.deno
def test_deno_cyclic_object_refers_to_itself(deno_values: dict[str, bytes]) -> None:
    decoded = decode_v8(deno_values["cyclic"])
    assert isinstance(decoded, dict) and decoded["self"] is decoded
    shared = decode_v8(deno_values["shared"])
    assert isinstance(shared, list) and shared[0] is shared[1]


# --- Properties --------------------------------------------------------------------------------

_safe_ints = st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
_hashable = (
    st.none()
    | st.booleans()
    | _safe_ints
    | st.builds(BigInt, st.integers())
    | st.floats(allow_nan=False)
    | st.text()
    | st.binary(max_size=8)
)
_datetimes = st.datetimes(timezones=st.just(UTC)).map(
    lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000)
)
_leaves = _hashable | _datetimes
_trees_without_sets = st.recursive(
    _leaves,
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(st.text(max_size=5), children, max_size=5)
        | st.dictionaries(_safe_ints | st.text(max_size=3), children, max_size=5)
    ),
    max_leaves=30,
)
_trees = st.recursive(
    _leaves | st.frozensets(_hashable, max_size=5) | st.sets(_hashable, max_size=5),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=5), children, max_size=5)
    ),
    max_leaves=30,
)


@given(_trees)
def test_round_trip(value: object) -> None:
    assert decode_v8(encode_v8(value)) == value
    assert decode_value(encode_value(value)) == value


@given(_trees_without_sets)
def test_reencoding_is_stable(value: object) -> None:
    data = encode_v8(value)
    assert encode_v8(decode_v8(data)) == data


@given(st.integers(min_value=0, max_value=2**64 - 1))
def test_kv_u64_round_trip(n: int) -> None:
    encoded = encode_value(KvU64(n))
    assert encoded.encoding == ValueEncoding.LE64 and len(encoded.data) == 8
    assert decode_value(encoded) == KvU64(n)


@given(st.binary())
def test_bytes_round_trip(data: bytes) -> None:
    assert decode_value(encode_value(data)) == data
    assert decode_v8(encode_v8(data)) == data


@given(st.floats())
def test_floats_keep_their_number_value(x: float) -> None:
    decoded = decode_v8(encode_v8(x))
    assert isinstance(decoded, int | float)
    if math.isnan(x):
        assert isinstance(decoded, float) and math.isnan(decoded)
    else:
        assert decoded == x and math.copysign(1, decoded) == math.copysign(1, x)


@given(st.integers())
def test_ints_round_trip(n: int) -> None:
    # Safe integers are JS numbers; larger ones become bigints, which read back as BigInt.
    expected = n if abs(n) <= 2**53 - 1 else BigInt(n)
    assert_same(decode_v8(encode_v8(n)), expected)
    assert_same(decode_v8(encode_v8(BigInt(n))), BigInt(n))


def test_numbers_and_bigints_stay_distinct() -> None:
    value = {"number": 5, "bigint": BigInt(5), "map": {1: "number", BigInt(1): "bigint"}}
    data = encode_v8(value)
    assert_same(decode_v8(data), value)
    assert encode_v8(decode_v8(data)) == data


@given(st.text())
def test_text_round_trips_at_every_offset(text: str) -> None:
    for prefix in ("", "a", "ab"):
        assert decode_v8(encode_v8([prefix, text])) == [prefix, text]


def test_js_types_round_trip() -> None:
    values: list[object] = [
        JSRegExp("a.b", "dgimsuvy"),
        JSError("SyntaxError", "m", "stack", [1, {"x": None}]),
        JSError(),
        JSDate(8.64e15),
        JSArrayBufferView("Float16Array", b"\x00\x3e"),
    ]
    for value in values:
        assert decode_v8(encode_v8(value)) == value
