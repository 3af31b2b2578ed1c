"""open_kv(): in-memory databases, the process-wide default database, invalid names.

Spec: deno-kv-semantics.md §10.1 and the brief's default-database rule (``KVSHIM_KV_URL``,
else in-memory; one object per process). Backend-independent, so not parametrised.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import kvshim

from .conformance_support import exact


async def test_memory_databases_are_private() -> None:
    one = await kvshim.open_kv(":memory:")
    two = await kvshim.open_kv(":memory:")
    try:
        assert one is not two
        await one.set(["k"], "one")
        assert (await two.get(["k"])).versionstamp is None
        assert (await one.get(["k"])).value == "one"
    finally:
        await one.close()
        await two.close()


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "Filename cannot be empty"),
        (":foo", "Filename cannot start with ':' unless prefixed with './'"),
        (":", "Filename cannot start with ':' unless prefixed with './'"),
        (":memory", "Filename cannot start with ':' unless prefixed with './'"),
    ],
)
async def test_invalid_names(name: str, message: str) -> None:
    with pytest.raises(kvshim.KvTypeError, match=exact(message)):
        await kvshim.open_kv(name)


async def test_default_database() -> None:
    # One test on purpose: the default database lives for the whole process.
    # It is never closed here, since other tests may use it too.
    a = await kvshim.open_kv(environ={})
    b = await kvshim.open_kv(environ={})
    assert a is b
    assert isinstance(a, kvshim.Kv)
    res = await a.set(["conformance-default-db"], "shared")
    assert res.ok
    assert (await b.get(["conformance-default-db"])).value == "shared"

    c = await kvshim.open_kv(environ={"KVSHIM_KV_URL": ":memory:"})
    d = await kvshim.open_kv(environ={"KVSHIM_KV_URL": ":memory:"})
    assert c is d
    await c.set(["conformance-default-db-2"], 1)
    assert (await d.get(["conformance-default-db-2"])).value == 1

    assert await kvshim.open_kv() is await kvshim.open_kv()
    # an explicit ":memory:" is never the default database
    private = await kvshim.open_kv(":memory:")
    try:
        assert private is not a
        assert (await private.get(["conformance-default-db"])).versionstamp is None
    finally:
        await private.close()
    await a.delete(["conformance-default-db"])
    await c.delete(["conformance-default-db-2"])


async def test_default_follows_the_environment_and_reopens_when_closed(tmp_path: Path) -> None:
    # What `kvshim run` relies on when the branch changes: the default is the database the
    # environment names now, and a default that was closed is opened again, not handed out.
    env_a = {"KVSHIM_KV_URL": str(tmp_path / "a.sqlite3")}
    env_b = {"KVSHIM_KV_URL": str(tmp_path / "b.sqlite3")}
    a = await kvshim.open_kv(environ=env_a)
    b = await kvshim.open_kv(environ=env_b)
    again: kvshim.Kv | None = None
    try:
        assert a is not b
        assert await kvshim.open_kv(environ=env_a) is a
        assert await kvshim.open_kv(environ=env_b) is b
        await a.set(["which"], "a")
        await a.close()
        again = await kvshim.open_kv(environ=env_a)
        assert again is not a and not again.closed
        assert (await again.get(["which"])).value == "a"
        assert await kvshim.open_kv(environ=env_a) is again
    finally:
        for kv in (a, b, again):
            if kv is not None and not kv.closed:
                await kv.close()
