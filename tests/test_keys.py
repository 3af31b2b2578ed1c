"""The key codec: golden bytes from Deno, round trips, and byte order equal to key order."""

from __future__ import annotations

import math
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kvshim import BigInt, KvTypeError
from kvshim.keys import decode_key, encode_key

GOLDEN = [
    ([b""], "0100"),
    ([b"\x00"], "0100ff00"),
    (["a"], "026100"),
    (["a\x00b"], "026100ff6200"),
    (["é"], "02c3a900"),
    ([BigInt(0)], "14"),
    ([BigInt(1)], "1501"),
    ([BigInt(256)], "160100"),
    ([BigInt(-255)], "1300"),
    ([BigInt(-256)], "12feff"),
    ([BigInt(2**64)], "1d09010000000000000000"),
    ([BigInt(-(2**64))], "0bf6fe" + "ff" * 8),
    ([-0.0], "217fffffffffffffff"),
    ([0.0], "218000000000000000"),
    ([1], "21bff0000000000000"),
    ([-1], "21400fffffffffffff"),
    ([math.nan], "21fff8000000000000"),
    ([False], "26"),
    ([True], "27"),
    (["users", 1], "02757365727300" + "21bff0000000000000"),
]


@pytest.mark.parametrize(("key", "hex_bytes"), GOLDEN, ids=[repr(k) for k, _ in GOLDEN])
def test_golden_bytes(key: list[object], hex_bytes: str) -> None:
    assert encode_key(key).hex() == hex_bytes
    decoded = decode_key(bytes.fromhex(hex_bytes))
    assert encode_key(decoded) == bytes.fromhex(hex_bytes)


def test_int_is_a_js_number_and_bigint_is_not() -> None:
    assert encode_key([1]) == encode_key([1.0])
    assert encode_key([1]) != encode_key([BigInt(1)])
    assert decode_key(encode_key([1.0])) == (1,)
    assert isinstance(decode_key(encode_key([1.0]))[0], int)
    assert decode_key(encode_key([BigInt(7)])) == (BigInt(7),)


def test_negative_zero_stays_a_distinct_float() -> None:
    (part,) = decode_key(encode_key([-0.0]))
    assert isinstance(part, float) and math.copysign(1, part) < 0
    assert encode_key([-0.0]) != encode_key([0])


def test_bool_is_not_int() -> None:
    assert encode_key([True]) != encode_key([1])
    assert decode_key(encode_key([True])) == (True,)


def test_unsafe_int_names_bigint_wrapper() -> None:
    with pytest.raises(KvTypeError, match="BigInt"):
        encode_key([2**53])
    assert encode_key([2**53 - 1])


@pytest.mark.parametrize("part", [None, {}, [], object(), 1j])
def test_invalid_parts(part: object) -> None:
    with pytest.raises(KvTypeError, match="expected string, number, bigint, ArrayBufferView"):
        encode_key([part])


def test_key_must_be_a_sequence() -> None:
    with pytest.raises(KvTypeError):
        encode_key("a")  # type: ignore[arg-type]


def test_bigint_magnitude_limit() -> None:
    assert encode_key([BigInt(2 ** (255 * 8) - 1)])
    with pytest.raises(KvTypeError, match="BigUint requires more than 255 bytes"):
        encode_key([BigInt(2 ** (255 * 8))])


def test_lone_surrogates_become_replacement_character() -> None:
    assert encode_key(["\ud800"]) == encode_key(["\ufffd"])


def test_unknown_tags_are_rejected() -> None:
    for tag in (0x00, 0x05, 0x20, 0x30):
        with pytest.raises(KvTypeError, match="invalid tag"):
            decode_key(bytes([tag]))


def test_documented_total_order() -> None:
    ordered = [
        [b""],
        [b"\x00"],
        [b"\x00\x00"],
        [b"\x01"],
        [""],
        ["B"],
        ["a"],
        ["b"],
        ["é"],
        [BigInt(-(2**100))],
        [BigInt(-5)],
        [BigInt(0)],
        [BigInt(1)],
        [BigInt(5)],
        [BigInt(2**100)],
        [-math.inf],
        [-1.5],
        [-1],
        [-0.0],
        [0],
        [1],
        [1.5],
        [math.inf],
        [math.nan],
        [False],
        [True],
    ]
    encoded = [encode_key(k) for k in ordered]
    assert encoded == sorted(encoded)
    assert len(set(encoded)) == len(encoded)


def test_prefix_sorts_first() -> None:
    assert encode_key(["a"]) < encode_key(["a", 0]) < encode_key(["a", True]) < encode_key(["b"])


parts = st.one_of(
    st.binary(max_size=20),
    st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=20),
    st.integers(-(2**53) + 1, 2**53 - 1),
    st.floats(allow_nan=False),
    st.booleans(),
    st.integers(-(2**300), 2**300).map(BigInt),
)


def _canonical(part: object) -> object:
    if (
        isinstance(part, float)
        and part.is_integer()
        and not (part == 0 and math.copysign(1, part) < 0)
    ):
        return int(part) if abs(part) <= 2**53 - 1 else part
    return part


@given(st.lists(parts, max_size=6))
def test_round_trip(key: list[object]) -> None:
    assert decode_key(encode_key(key)) == tuple(_canonical(p) for p in key)


def _sort_key(part: object) -> tuple[int, object]:
    if isinstance(part, bytes):
        return (0, part)
    if isinstance(part, str):
        return (1, part.encode())
    if isinstance(part, BigInt):
        return (2, part.value)
    if isinstance(part, bool):
        return (4, part)
    assert isinstance(part, int | float)
    return (3, struct.unpack(">d", struct.pack(">d", float(part)))[0] if part == part else 0)


@given(parts, parts)
def test_byte_order_is_key_order(a: object, b: object) -> None:
    ka, kb = _sort_key(a), _sort_key(b)
    if ka == kb and not (isinstance(a, float) and isinstance(b, float)):
        return
    ea, eb = encode_key([a]), encode_key([b])
    if ka < kb:
        assert ea < eb or (ea == eb and _canonical(a) == _canonical(b))
    elif ka > kb:
        assert ea > eb or (ea == eb and _canonical(a) == _canonical(b))
