"""Small helpers shared by the conformance tests (not a test module)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterable, Awaitable, Sequence
from typing import Any, TypeVar

import kvshim

T = TypeVar("T")

TIMEOUT = 5.0
"""Upper bound for any single wait, so a hang fails the test instead of blocking the suite."""


def exact(message: str) -> str:
    """A ``pytest.raises(match=...)`` pattern for exactly ``message`` (Deno's verbatim text)."""
    return "^" + re.escape(message) + "$"


async def wait(awaitable: Awaitable[T], timeout: float = TIMEOUT) -> T:
    """Await with a timeout."""
    return await asyncio.wait_for(awaitable, timeout)


async def collect(iterable: AsyncIterable[T], timeout: float = TIMEOUT) -> list[T]:
    """Drain an async iterable (e.g. ``kv.list(...)``) into a list, with a timeout."""

    async def drain() -> list[T]:
        return [item async for item in iterable]

    return await asyncio.wait_for(drain(), timeout)


def keys_of(entries: Sequence[kvshim.KvEntry]) -> list[tuple[Any, ...]]:
    """The keys of some entries."""
    return [tuple(entry.key) for entry in entries]


def values_of(entries: Sequence[kvshim.KvEntry]) -> list[Any]:
    """The values of some entries."""
    return [entry.value for entry in entries]


async def seed_list_data(kv: kvshim.Kv) -> None:
    """The data set of Deno's ``kv_test.ts`` list tests."""
    result = await (
        kv.atomic()
        .set(["a"], -1)
        .set(["a", "a"], 0)
        .set(["a", "b"], 1)
        .set(["a", "c"], 2)
        .set(["a", "d"], 3)
        .set(["a", "e"], 4)
        .set(["b"], 99)
        .set(["b", "a"], 100)
        .commit()
    )
    assert result.ok


async def next_item(iterator: Any, timeout: float = TIMEOUT) -> Any:
    """``anext`` with a timeout."""
    return await asyncio.wait_for(anext(iterator), timeout)
