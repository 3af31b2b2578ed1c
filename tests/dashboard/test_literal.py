"""The typed literal syntax: keys and values shown unambiguously and parsed back strictly."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest

from kvshim import BigInt, KvU64, KvValueError
from kvshim.dashboard.literal import format_key, format_value, parse_key, parse_value, type_name
from kvshim.keys import decode_key, encode_key


def test_key_parts_of_every_type_parse_and_stay_distinct() -> None:
    key = parse_key('["users", 1, 1n, b"0102", true, "1", -2.5]')
    assert key == ("users", 1, BigInt(1), b"\x01\x02", True, "1", -2.5)
    assert [type(p) for p in key] == [str, int, BigInt, bytes, bool, str, float]
    assert format_key(key) == '["users", 1, 1n, b"0102", true, "1", -2.5]'


def test_lookalike_key_parts_are_shown_differently() -> None:
    shown = {format_key((part,)) for part in ("1", 1, BigInt(1), b"\x01", True)}
    assert shown == {'["1"]', "[1]", "[1n]", '[b"01"]', "[true]"}


@pytest.mark.parametrize(
    "key",
    [
        ("a", 0, -0.0, math.inf, -math.inf, BigInt(-(2**70)), b"", b"\x00\xff", False),
        ('quote " backslash \\ newline \n tab \t é 𝄞',),
        (),
    ],
)
def test_keys_round_trip_through_their_text_and_encoding(key: tuple[object, ...]) -> None:
    text = format_key(key)  # type: ignore[arg-type]
    assert encode_key(parse_key(text)) == encode_key(key)
    assert format_key(decode_key(encode_key(parse_key(text)))) == text


def test_nan_key_parts_parse() -> None:
    (part,) = parse_key("[NaN]")
    assert isinstance(part, float) and math.isnan(part)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ('["a",]', "position 6"),
        ("[1 2]", "expected ','"),
        ('["a"] x', "the end of the input"),
        ("users", "a key as an array"),
        ("[null]", "Invalid key part 1"),
        ('[{"a": 1}]', "Invalid key part 1"),
        ('[b"123"]', "bytes"),
        ("[1.5n]", "Invalid bigint"),
        ("['a']", "expected a value"),
        ("[undefined]", "expected a value"),
        ('["unterminated]', "Invalid string"),
        ("[01]", "expected ','"),
    ],
)
def test_bad_keys_are_refused_with_the_position(text: str, fragment: str) -> None:
    with pytest.raises(KvValueError) as caught:
        parse_key(text)
    assert fragment in str(caught.value)


def test_values_of_every_type_round_trip() -> None:
    value = {
        "s": "x",
        "n": 1,
        "f": 0.5,
        "big": BigInt(10**30),
        "b": b"\x00\x01",
        "t": True,
        "nothing": None,
        "list": [1, "a", [2]],
        "when": datetime(2024, 5, 1, 12, 0, tzinfo=UTC),
        "set": {1, 2},
        "map": {1: "one"},
    }
    assert parse_value(format_value(value)) == value
    assert parse_value(format_value(KvU64(7))) == KvU64(7)
    assert format_value(KvU64(7)) == "u64(7)"


def test_long_values_are_indented_and_still_parse() -> None:
    value = {"items": [{"name": f"item {i}", "price": i * 1.5} for i in range(5)]}
    text = format_value(value)
    assert "\n" in text
    assert parse_value(text) == value


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty"),
        ("u64(-1)", "u64"),
        ("u64(1.5)", "u64"),
        ('date("not a date")', "date"),
        ("map([1])", "map"),
        ("set(1)", "set"),
        ("{a: 1}", "property name"),
        ("[1,]", "expected a value"),
        ("regexp(1)", "expected a value"),
    ],
)
def test_bad_values_are_refused(text: str, fragment: str) -> None:
    with pytest.raises(KvValueError) as caught:
        parse_value(text)
    assert fragment in str(caught.value)


def test_type_names() -> None:
    names = [type_name(v) for v in ("", 1, BigInt(1), b"", True, None, KvU64(1), [], {})]
    assert names == [
        "string",
        "number",
        "bigint",
        "bytes",
        "boolean",
        "null",
        "KvU64",
        "array",
        "object",
    ]
