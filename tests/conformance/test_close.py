"""close() and what happens afterwards.

Spec: deno-kv-semantics.md §10.2.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

import kvshim

from .conformance_support import exact, next_item, wait

OpenDb = Callable[[], Awaitable[kvshim.Kv]]
BAD_RESOURCE = exact("Bad resource ID")


@pytest.fixture
async def closed(open_db: OpenDb) -> kvshim.Kv:
    kv = await open_db()
    await kv.set(["k"], 1)
    await kv.close()
    return kv


@pytest.mark.parametrize(
    "operation",
    [
        lambda kv: kv.get(["k"]),
        lambda kv: kv.get_many([["k"]]),
        lambda kv: kv.set(["k"], 2),
        lambda kv: kv.delete(["k"]),
        lambda kv: kv.enqueue("m"),
        lambda kv: kv.atomic().set(["k"], 2).commit(),
        lambda kv: kv.atomic().commit(),
    ],
    ids=["get", "get_many", "set", "delete", "enqueue", "commit", "empty-commit"],
)
async def test_operations_after_close(
    closed: kvshim.Kv, operation: Callable[[kvshim.Kv], Awaitable[Any]]
) -> None:
    with pytest.raises(kvshim.KvClosedError, match=BAD_RESOURCE):
        await wait(operation(closed))


async def test_double_close_raises(closed: kvshim.Kv) -> None:
    with pytest.raises(kvshim.KvClosedError, match=BAD_RESOURCE):
        await closed.close()


async def test_list_after_close_raises_on_first_step(closed: kvshim.Kv) -> None:
    it = closed.list(prefix=[])  # no error yet
    with pytest.raises(kvshim.KvClosedError, match=BAD_RESOURCE):
        await next_item(aiter(it))


async def test_atomic_builder_works_after_close(closed: kvshim.Kv) -> None:
    op = closed.atomic().set(["k"], 2).delete(["j"]).sum(["s"], 1)
    with pytest.raises(kvshim.KvClosedError, match=BAD_RESOURCE):
        await op.commit()


@pytest.mark.kv_feature("watch")
async def test_watch_after_close_raises_synchronously(closed: kvshim.Kv) -> None:
    with pytest.raises(kvshim.KvClosedError, match=BAD_RESOURCE):
        closed.watch([["k"]])


@pytest.mark.kv_feature("queues")
async def test_listen_queue_after_close(closed: kvshim.Kv) -> None:
    with pytest.raises(kvshim.QueueClosedError, match=exact("Queue already closed")):
        await wait(closed.listen_queue(lambda value: None))


async def test_closed_error_classes() -> None:
    assert issubclass(kvshim.KvClosedError, kvshim.KvError)
    assert issubclass(kvshim.QueueClosedError, kvshim.KvError)
    assert issubclass(kvshim.KvTypeError, TypeError)
    assert issubclass(kvshim.KvValueError, ValueError)
    assert issubclass(kvshim.KvRangeError, ValueError)


async def test_async_with_closes() -> None:
    async with await kvshim.open_kv(":memory:") as kv:
        await kv.set(["k"], 1)
        assert (await kv.get(["k"])).value == 1
    with pytest.raises(kvshim.KvClosedError, match=BAD_RESOURCE):
        await kv.get(["k"])


async def test_async_with_tolerates_explicit_close() -> None:
    # Deno's [Symbol.dispose] is a no-op on an already closed database.
    async with await kvshim.open_kv(":memory:") as kv:
        await kv.close()
    with pytest.raises(kvshim.KvClosedError):
        await kv.get(["k"])


async def test_async_with_closes_on_error() -> None:
    with pytest.raises(RuntimeError, match="inside"):
        async with await kvshim.open_kv(":memory:") as kv:
            raise RuntimeError("inside")
    with pytest.raises(kvshim.KvClosedError):
        await kv.get(["k"])


async def test_close_does_not_affect_other_databases(open_db: OpenDb) -> None:
    one = await open_db()
    two = await open_db()
    await two.set(["k"], 2)
    await one.close()
    assert (await two.get(["k"])).value == 2
