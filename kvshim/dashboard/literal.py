"""Typed literals: how the dashboard shows keys and values, and parses what users type.

A JSON-like syntax where every type is visible, so ``"1"``, ``1``, ``1n`` and ``b"01"`` never
look alike. Keys are arrays of parts; values may be any of:

==========================  ===============================================================
``"text"``                  string (JSON escapes: ``"\\n"``, ``"\\u00e9"``)
``1``, ``-2.5``, ``1e9``    number (a Python ``int`` when integral, else ``float``);
                            ``NaN``, ``Infinity``, ``-Infinity``
``1n``, ``-7n``             bigint (``kvshim.BigInt``)
``b"01ff"``                 bytes, as hex digits (an even number of them)
``true`` ``false`` ``null``
``[1, "a"]``                array
``{"name": "Ada"}``         object (keys are strings)
``u64(5)``                  ``Deno.KvU64`` (``kvshim.KvU64``)
``date("2024-05-01T12:00:00.000Z")``  Date (ISO 8601, UTC)
``set([1, 2])``             Set
``map([[1, "one"]])``       Map, as a list of ``[key, value]`` pairs
==========================  ===============================================================

Key parts are limited to strings, numbers, bigints, bytes and booleans:
``["users", 1, 1n, b"0102", true]``. Parsing is strict: anything else, trailing text or a
trailing comma is a ``KvValueError`` naming the position. Values of other JavaScript types
(RegExp, Error, typed arrays other than ``Uint8Array``) are shown as ``regexp(...)``,
``error(...)``, ``typed_array(...)`` but cannot be typed in.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from kvshim.bigint import BigInt, KvU64
from kvshim.errors import KvValueError
from kvshim.keys import Key
from kvshim.v8 import JSArrayBufferView, JSDate, JSError, JSRegExp

Token = tuple[str, str]
"""``(kind, text)``: kind is a CSS-friendly type name (``string``, ``number``, ``bigint``,
``bytes``, ``bool``, ``null``, ``u64``, ``date``, ``other``) or ``punct``."""

_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?(n?)")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_HEX = re.compile(r'b"((?:[0-9a-fA-F]{2})*)"')
_SPACE = re.compile(r"\s*")
_CONSTANTS: dict[str, object] = {
    "true": True,
    "false": False,
    "null": None,
    "NaN": math.nan,
    "Infinity": math.inf,
}
_STRING_DECODER = json.JSONDecoder()
_COMPACT_WIDTH = 60


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def fail(self, expected: str) -> KvValueError:
        found = self.text[self.pos : self.pos + 12] or "the end"
        return KvValueError(
            f"Invalid literal at position {self.pos + 1}: expected {expected}, found {found!r}"
        )

    def skip(self) -> None:
        self.pos = _SPACE.match(self.text, self.pos).end()  # type: ignore[union-attr]

    def peek(self) -> str:
        self.skip()
        return self.text[self.pos : self.pos + 1]

    def expect(self, char: str) -> None:
        if self.peek() != char:
            raise self.fail(repr(char))
        self.pos += 1

    def end(self) -> None:
        if self.peek():
            raise self.fail("the end of the input")

    def value(self) -> object:
        char = self.peek()
        if char == "[":
            return self.sequence("]", self.value)
        if char == "{":
            return self.mapping()
        if char == '"':
            return self.string()
        if self.text.startswith('b"', self.pos):
            return self.byte_string()
        if char == "-" or char.isdigit():
            return self.number()
        return self.word()

    def sequence(self, close: str, item: Callable[[], Any]) -> list[Any]:
        self.pos += 1
        items: list[Any] = []
        if self.peek() == close:
            self.pos += 1
            return items
        while True:
            items.append(item())
            if self.peek() == close:
                self.pos += 1
                return items
            self.expect(",")

    def mapping(self) -> dict[str, object]:
        def member() -> tuple[str, object]:
            if self.peek() != '"':
                raise self.fail("a string property name")
            name = self.string()
            self.expect(":")
            return name, self.value()

        return dict(self.sequence("}", member))

    def string(self) -> str:
        try:
            found, self.pos = _STRING_DECODER.raw_decode(self.text, self.pos)
        except json.JSONDecodeError as exc:
            raise KvValueError(f"Invalid string at position {self.pos + 1}: {exc.msg}") from exc
        assert isinstance(found, str)
        return found

    def byte_string(self) -> bytes:
        match = _HEX.match(self.text, self.pos)
        if match is None:
            raise self.fail('bytes as b"<pairs of hex digits>"')
        self.pos = match.end()
        return bytes.fromhex(match.group(1))

    def number(self) -> int | float | BigInt:
        if self.text.startswith("-Infinity", self.pos):
            self.pos += len("-Infinity")
            return -math.inf
        match = _NUMBER.match(self.text, self.pos)
        if match is None:
            raise self.fail("a number")
        self.pos = match.end()
        text = match.group(0)
        if match.group(1):
            if not re.fullmatch(r"-?[0-9]+n", text):
                raise KvValueError(f"Invalid bigint {text!r}: a bigint is an integer such as 5n")
            return BigInt(int(text[:-1]))
        return int(text) if re.fullmatch(r"-?[0-9]+", text) else float(text)

    def word(self) -> object:
        match = _WORD.match(self.text, self.pos)
        if match is None:
            raise self.fail("a value")
        name = match.group(0)
        self.pos = match.end()
        if name in _CONSTANTS:
            return _CONSTANTS[name]
        if name not in _CALLS:
            self.pos = match.start()
            raise self.fail("a value")
        self.expect("(")
        argument = self.value()
        self.expect(")")
        return _CALLS[name](argument)


def _u64(argument: object) -> KvU64:
    if isinstance(argument, bool) or not isinstance(argument, int | BigInt):
        raise KvValueError("u64(...) takes a non-negative integer, such as u64(5)")
    try:
        return KvU64(argument)
    except (TypeError, ValueError) as exc:
        raise KvValueError(f"u64(...): {exc}") from exc


def _date(argument: object) -> datetime | JSDate:
    if isinstance(argument, int | float) and not isinstance(argument, bool):
        return JSDate(float(argument))
    if not isinstance(argument, str):
        raise KvValueError('date(...) takes an ISO 8601 string, such as date("2024-05-01T12:00Z")')
    try:
        found = datetime.fromisoformat(argument)
    except ValueError as exc:
        raise KvValueError(f"date(...): {exc}") from exc
    return found if found.tzinfo else found.replace(tzinfo=UTC)


def _set(argument: object) -> set[Any]:
    if not isinstance(argument, list):
        raise KvValueError("set(...) takes an array, such as set([1, 2])")
    try:
        return set(argument)
    except TypeError as exc:
        raise KvValueError("set(...) members must be strings, numbers, bigints or bytes") from exc


def _map(argument: object) -> dict[Any, Any]:
    pairs = argument if isinstance(argument, list) else None
    if pairs is None or not all(isinstance(p, list) and len(p) == 2 for p in pairs):
        raise KvValueError('map(...) takes [key, value] pairs, such as map([[1, "one"]])')
    try:
        return {key: value for key, value in pairs}
    except TypeError as exc:
        raise KvValueError("map(...) keys must be strings, numbers, bigints or bytes") from exc


_CALLS: dict[str, Callable[[object], object]] = {
    "u64": _u64,
    "date": _date,
    "set": _set,
    "map": _map,
}


def parse_value(text: str) -> object:
    """The value ``text`` spells (see the module docstring); ``KvValueError`` if it is not one."""
    parser = _Parser(text)
    if not parser.peek():
        raise KvValueError('The value is empty: type a value such as "text", 1 or {}')
    found = parser.value()
    parser.end()
    return found


def parse_key(text: str) -> Key:
    """The key ``text`` spells, such as ``["users", 1, 1n, b"0102", true]``; ``KvValueError``
    if it is not an array of key parts."""
    parser = _Parser(text)
    if parser.peek() != "[":
        raise parser.fail('a key as an array, such as ["users", 1]')
    parts = parser.sequence("]", parser.value)
    parser.end()
    for index, part in enumerate(parts):
        if not isinstance(part, str | bytes | int | float | BigInt):
            raise KvValueError(
                f"Invalid key part {index + 1}: {format_value(part)} is not a string, number, "
                "bigint, bytes or boolean"
            )
    return tuple(parts)


def format_key(key: Key) -> str:
    """``key`` in the literal syntax, on one line."""
    return "".join(text for _, text in key_tokens(key))


def key_tokens(key: Key) -> list[Token]:
    """``key`` as typed tokens, on one line."""
    tokens: list[Token] = [("punct", "[")]
    for index, part in enumerate(key):
        if index:
            tokens.append(("punct", ", "))
        tokens += value_tokens(part)
    return [*tokens, ("punct", "]")]


def format_value(value: object) -> str:
    """``value`` in the literal syntax (indented when long); ``parse_value`` reads it back."""
    return "".join(text for _, text in value_tokens(value))


def type_name(value: object) -> str:
    """A short name for ``value``'s JavaScript type (``string``, ``bigint``, ``KvU64``…)."""
    return _kind(value)[1]


def value_tokens(value: object, depth: int = 0) -> list[Token]:
    """``value`` as typed tokens, indented by ``depth`` levels when it does not fit a line."""
    if isinstance(value, list | tuple):
        return _container("[", "]", [value_tokens(v, depth + 1) for v in value], depth)
    if isinstance(value, dict):
        if all(isinstance(k, str) for k in value):
            members = [
                [("string", json.dumps(k)), ("punct", ": "), *value_tokens(v, depth + 1)]
                for k, v in value.items()
            ]
            return _container("{", "}", members, depth)
        pairs = [[k, v] for k, v in value.items()]
        return [("punct", "map("), *value_tokens(pairs, depth), ("punct", ")")]
    if isinstance(value, set | frozenset):
        members = sorted(value, key=lambda v: (type(v).__name__, repr(v)))
        return [("punct", "set("), *value_tokens(members, depth), ("punct", ")")]
    return [(_kind(value)[0], _scalar(value))]


def _container(open_: str, close: str, items: list[list[Token]], depth: int) -> list[Token]:
    flat = [t for item in items for t in item]
    compact = sum(len(text) for _, text in flat) + 2 * len(items) < _COMPACT_WIDTH
    if compact and not any("\n" in text for _, text in flat):
        tokens: list[Token] = [("punct", open_)]
        for index, item in enumerate(items):
            tokens += [("punct", ", ")] * bool(index) + item
        return [*tokens, ("punct", close)]
    inner, outer = "\n" + "  " * (depth + 1), "\n" + "  " * depth
    tokens = [("punct", open_)]
    for index, item in enumerate(items):
        tokens += [("punct", ("," if index else "") + inner), *item]
    return [*tokens, ("punct", outer + close)]


def _kind(value: object) -> tuple[str, str]:
    for types, kind, name in _KINDS:
        if isinstance(value, types):
            return kind, name
    return "other", type(value).__name__


_KINDS: tuple[tuple[type | tuple[type, ...], str, str], ...] = (
    (type(None), "null", "null"),
    (bool, "bool", "boolean"),
    ((int, float), "number", "number"),
    (BigInt, "bigint", "bigint"),
    (str, "string", "string"),
    (bytes, "bytes", "bytes"),
    (KvU64, "u64", "KvU64"),
    ((datetime, JSDate), "date", "Date"),
    ((list, tuple), "other", "array"),
    (dict, "other", "object"),
    ((set, frozenset), "other", "Set"),
)


def _scalar(value: object) -> str:
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, int | float):
        return _number(value)
    if isinstance(value, BigInt):
        return f"{value.value}n"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bytes):
        return f'b"{value.hex()}"'
    if isinstance(value, KvU64):
        return f"u64({value.value})"
    if isinstance(value, datetime):
        stamp = value.astimezone(UTC).isoformat(timespec="milliseconds")
        return f'date("{stamp.replace("+00:00", "Z")}")'
    return _foreign(value)


def _number(value: int | float) -> str:
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return repr(value)


def _foreign(value: object) -> str:
    if isinstance(value, JSDate):
        return f"date({_number(value.epoch_ms)})"
    if isinstance(value, JSRegExp):
        return f"regexp({json.dumps(value.source)}, {json.dumps(value.flags)})"
    if isinstance(value, JSError):
        return f"error({json.dumps(value.name)}, {json.dumps(value.message)})"
    if isinstance(value, JSArrayBufferView):
        return f'typed_array({json.dumps(value.kind)}, b"{value.data.hex()}")'
    return repr(value)
