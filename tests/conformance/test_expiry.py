"""expire_in: validation, visibility, TTL lifecycle.

Spec: deno-kv-semantics.md §7. Deviation from Deno (asserted here): kvshim hides an expired key
from get / get_many / list / check / watch as soon as it expires, whereas Deno keeps it visible
until a background sweep (up to ~60 s later).
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

import pytest

import kvshim
from kvshim import AtomicCheck

from .conformance_support import collect, exact, keys_of


@pytest.mark.parametrize(("expire_in", "shown"), [(-1, "-1"), (1.5, "1.5"), (True, "true")])
async def test_invalid_expire_in(kv: kvshim.Kv, expire_in: Any, shown: str) -> None:
    message = exact(f"expireIn must be a non-negative integer: received {shown}")
    with pytest.raises(kvshim.KvTypeError, match=message):
        await kv.set(["k"], 1, expire_in=expire_in)
    assert (await kv.get(["k"])).versionstamp is None


@pytest.mark.parametrize("expire_in", [math.nan, math.inf, "100"], ids=["nan", "inf", "str"])
async def test_invalid_expire_in_other_types(kv: kvshim.Kv, expire_in: Any) -> None:
    with pytest.raises(kvshim.KvTypeError, match="^expireIn must be a non-negative integer"):
        await kv.set(["k"], 1, expire_in=expire_in)


async def test_expire_in_too_large(kv: kvshim.Kv) -> None:
    with pytest.raises(
        kvshim.KvTypeError,
        match=exact("Invalid mutation: expireIn is too large: 9007199254740991"),
    ):
        await kv.set(["k"], 1, expire_in=9007199254740991)
    assert (await kv.get(["k"])).versionstamp is None


async def test_long_expiry_is_accepted(kv: kvshim.Kv) -> None:
    assert (await kv.set(["k"], 1, expire_in=365 * 24 * 3600 * 1000)).ok
    assert (await kv.get(["k"])).value == 1


async def test_expire_in_zero(kv: kvshim.Kv) -> None:
    # Accepted. kvshim deviation: the key is expired at once, so it is never visible.
    result = await kv.set(["k"], 1, expire_in=0)
    assert result.ok
    assert (await kv.get(["k"])).versionstamp is None


async def test_expired_key_is_invisible(kv: kvshim.Kv) -> None:
    await kv.set(["p", "ttl"], "short", expire_in=200)
    await kv.set(["p", "keep"], "long")
    assert (await kv.get(["p", "ttl"])).value == "short"
    assert keys_of(await collect(kv.list(prefix=["p"]))) == [("p", "keep"), ("p", "ttl")]
    await asyncio.sleep(0.4)
    # kvshim deviation: invisible at once (Deno keeps it until its sweep).
    entry = await kv.get(["p", "ttl"])
    assert entry.value is None and entry.versionstamp is None
    many = await kv.get_many([["p", "ttl"], ["p", "keep"]])
    assert [e.value for e in many] == [None, "long"]
    assert keys_of(await collect(kv.list(prefix=["p"]))) == [("p", "keep")]
    assert keys_of(await collect(kv.list(prefix=["p"], reverse=True))) == [("p", "keep")]


async def test_check_sees_expired_key_as_missing(kv: kvshim.Kv) -> None:
    res = await kv.set(["k"], 1, expire_in=200)
    assert res.versionstamp
    await asyncio.sleep(0.4)
    # kvshim deviation (§6.3 says Deno still sees it until the sweep)
    stale = AtomicCheck(["k"], res.versionstamp)
    assert not (await kv.atomic().check(stale).set(["x"], 1).commit()).ok
    assert (await kv.atomic().check(AtomicCheck(["k"], None)).set(["k"], 2).commit()).ok
    assert (await kv.get(["k"])).value == 2


async def test_sum_on_expired_key_starts_from_nothing(kv: kvshim.Kv) -> None:
    await kv.set(["k"], kvshim.KvU64(10), expire_in=200)
    await asyncio.sleep(0.4)
    await kv.atomic().sum(["k"], 1).commit()
    assert (await kv.get(["k"])).value == kvshim.KvU64(1)


async def test_overwrite_without_expire_in_clears_ttl(kv: kvshim.Kv) -> None:
    await kv.set(["k"], 1, expire_in=200)
    await kv.set(["k"], 2)
    await asyncio.sleep(0.4)
    assert (await kv.get(["k"])).value == 2


async def test_new_expire_in_replaces_ttl(kv: kvshim.Kv) -> None:
    await kv.set(["longer"], 1, expire_in=200)
    await kv.set(["longer"], 2, expire_in=60_000)
    await kv.set(["shorter"], 1, expire_in=60_000)
    await kv.set(["shorter"], 2, expire_in=200)
    await asyncio.sleep(0.4)
    assert (await kv.get(["longer"])).value == 2
    assert (await kv.get(["shorter"])).versionstamp is None


async def test_atomic_set_with_expire_in(kv: kvshim.Kv) -> None:
    res = await (
        kv.atomic().set(["a"], 1, expire_in=200).set(["b"], 2, expire_in=200).set(["c"], 3).commit()
    )
    assert res.ok
    assert [e.value for e in await kv.get_many([["a"], ["b"], ["c"]])] == [1, 2, 3]
    await asyncio.sleep(0.4)
    assert [e.value for e in await kv.get_many([["a"], ["b"], ["c"]])] == [None, None, 3]


async def test_expired_keys_do_not_count_towards_limit(kv: kvshim.Kv) -> None:
    for i in range(5):
        await kv.set(["k", i], i, expire_in=150 if i % 2 == 0 else None)
    await asyncio.sleep(0.35)
    assert [e.value for e in await collect(kv.list(prefix=["k"], limit=2))] == [1, 3]
    assert [e.value for e in await collect(kv.list(prefix=["k"], batch_size=1))] == [1, 3]


async def test_key_is_not_expired_early(kv: kvshim.Kv) -> None:
    await kv.set(["k"], 1, expire_in=1500)
    await asyncio.sleep(0.2)
    assert (await kv.get(["k"])).value == 1
