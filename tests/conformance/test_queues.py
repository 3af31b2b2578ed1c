"""Queues: enqueue validation, delivery, delays, retries, dead letters, listeners, close.

Spec: deno-kv-semantics.md §9 (and §10.2 for close). Short custom backoff schedules keep it fast.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable
from typing import Any

import pytest

import kvshim
from kvshim import AtomicCheck

from .conformance_support import TIMEOUT, collect, exact, wait

# Tests that need a queue consumer are marked kv_feature("queues"); enqueue itself works on
# every backend (KV Connect accepts enqueues but cannot dequeue, §9.4).


class Listener:
    """Runs ``kv.listen_queue`` in a task and records what the handler received."""

    def __init__(
        self, kv: kvshim.Kv, fail: Callable[[Any, int], bool] | None = None, sync: bool = False
    ) -> None:
        self.kv = kv
        self.received: list[Any] = []
        self.times: list[float] = []
        self.attempts: dict[str, int] = {}
        self.fail = fail
        self.changed = asyncio.Event()
        handler = self._sync_handler if sync else self._async_handler
        self.task = asyncio.create_task(kv.listen_queue(handler))

    def _record(self, value: Any) -> None:
        self.received.append(value)
        self.times.append(asyncio.get_running_loop().time())
        key = repr(value)
        self.attempts[key] = self.attempts.get(key, 0) + 1
        self.changed.set()
        if self.fail is not None and self.fail(value, self.attempts[key]):
            raise RuntimeError(f"handler failure for {value!r}")

    def _sync_handler(self, value: Any) -> None:
        self._record(value)

    async def _async_handler(self, value: Any) -> None:
        await asyncio.sleep(0)
        self._record(value)

    async def until(self, predicate: Callable[[], bool], timeout: float = TIMEOUT) -> None:
        async def loop() -> None:
            while not predicate():
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(loop(), timeout)

    async def stop(self) -> None:
        if not self.task.done():
            await self.kv.close()
        await asyncio.wait_for(self.task, TIMEOUT)


async def test_enqueue_returns_commit_result(kv: kvshim.Kv) -> None:
    res = await kv.enqueue("hello")
    assert isinstance(res, kvshim.CommitResult)
    assert res.ok and res.versionstamp is not None and len(res.versionstamp) == 20
    later = await kv.set(["k"], 1)
    assert later.versionstamp is not None and later.versionstamp > res.versionstamp


@pytest.mark.parametrize("sync", [False, True], ids=["async-handler", "sync-handler"])
@pytest.mark.kv_feature("queues")
async def test_delivery(kv: kvshim.Kv, sync: bool) -> None:
    listener = Listener(kv, sync=sync)
    message = {"n": 1, "tags": ["a", "b"], "data": b"\x00\x01"}
    await kv.enqueue(message)
    await kv.enqueue(b"raw bytes")
    await kv.enqueue(2.5)
    await listener.until(lambda: len(listener.received) >= 3)
    assert sorted(map(repr, listener.received)) == sorted(map(repr, [message, b"raw bytes", 2.5]))
    await listener.stop()


@pytest.mark.kv_feature("queues")
async def test_listener_started_after_enqueue(kv: kvshim.Kv) -> None:
    await kv.enqueue("early")
    listener = Listener(kv)
    await listener.until(lambda: listener.received == ["early"])
    await listener.stop()


@pytest.mark.kv_feature("queues")
async def test_many_messages_each_delivered_once(kv: kvshim.Kv) -> None:
    listener = Listener(kv)
    for i in range(30):
        await kv.enqueue(i)
    await listener.until(lambda: len(listener.received) >= 30)
    await asyncio.sleep(0.2)
    assert sorted(listener.received) == list(range(30))
    await listener.stop()


@pytest.mark.kv_feature("queues")
async def test_atomic_enqueues(kv: kvshim.Kv) -> None:
    listener = Listener(kv)
    res = await kv.atomic().set(["k"], 1).enqueue("a").enqueue("b").enqueue("c").commit()
    assert res.ok
    await listener.until(lambda: len(listener.received) >= 3)
    assert sorted(listener.received) == ["a", "b", "c"]
    await listener.stop()


@pytest.mark.kv_feature("queues")
async def test_failed_check_does_not_enqueue(kv: kvshim.Kv) -> None:
    await kv.set(["k"], 1)
    listener = Listener(kv)
    res = await kv.atomic().check(AtomicCheck(["k"], None)).enqueue("never").commit()
    assert not res.ok
    await kv.enqueue("after")
    await listener.until(lambda: "after" in listener.received)
    await asyncio.sleep(0.3)
    assert listener.received == ["after"]
    await listener.stop()


@pytest.mark.kv_feature("queues")
async def test_delay_is_respected(kv: kvshim.Kv) -> None:
    listener = Listener(kv)
    loop = asyncio.get_running_loop()
    start = loop.time()
    await kv.enqueue("late", delay=300)
    await listener.until(lambda: bool(listener.received))
    assert listener.times[0] - start >= 0.28
    await listener.stop()


@pytest.mark.kv_feature("queues")
async def test_delivery_order_follows_delays(kv: kvshim.Kv) -> None:
    listener = Listener(kv)
    await kv.enqueue(400, delay=400)
    await kv.enqueue(200, delay=200)
    await kv.enqueue(0, delay=0)
    await listener.until(lambda: len(listener.received) >= 3)
    assert listener.received == [0, 200, 400]
    await listener.stop()


@pytest.mark.kv_feature("queues")
async def test_retries_then_dead_letters(kv: kvshim.Kv) -> None:
    listener = Listener(kv, fail=lambda value, attempt: True)
    value = {"job": 42}
    await kv.enqueue(
        value, keys_if_undelivered=[["dead", 1], ("dead", 2)], backoff_schedule=[10, 10]
    )

    async def dead_letters() -> list[kvshim.KvEntry]:
        while True:
            entries = await kv.get_many([["dead", 1], ["dead", 2]])
            if all(e.versionstamp for e in entries):
                return entries
            await asyncio.sleep(0.02)

    entries = await wait(dead_letters())
    assert [e.value for e in entries] == [value, value]
    assert entries[0].versionstamp == entries[1].versionstamp
    await asyncio.sleep(0.2)
    assert listener.attempts[repr(value)] == 3  # n + 1 attempts
    await listener.stop()


@pytest.mark.kv_feature("queues")
async def test_empty_backoff_schedule_means_one_attempt(kv: kvshim.Kv) -> None:
    listener = Listener(kv, fail=lambda value, attempt: True)
    await kv.enqueue("once", keys_if_undelivered=[["dead"]], backoff_schedule=[])

    async def dead_letter() -> Any:
        while (entry := await kv.get(["dead"])).versionstamp is None:
            await asyncio.sleep(0.02)
        return entry.value

    assert await wait(dead_letter()) == "once"
    await asyncio.sleep(0.2)
    assert listener.attempts[repr("once")] == 1
    await listener.stop()


@pytest.mark.kv_feature("queues")
async def test_retry_then_success_writes_no_dead_letter(kv: kvshim.Kv) -> None:
    listener = Listener(kv, fail=lambda value, attempt: attempt == 1)
    await kv.enqueue("flaky", keys_if_undelivered=[["dead"]], backoff_schedule=[10, 10, 10])
    await listener.until(lambda: listener.attempts.get(repr("flaky"), 0) >= 2)
    await asyncio.sleep(0.2)
    assert listener.attempts[repr("flaky")] == 2
    assert (await kv.get(["dead"])).versionstamp is None
    await listener.stop()


@pytest.mark.kv_feature("queues")
async def test_undelivered_without_keys_is_dropped(kv: kvshim.Kv) -> None:
    listener = Listener(kv, fail=lambda value, attempt: value == "bad")
    await kv.enqueue("bad", backoff_schedule=[10])
    await listener.until(lambda: listener.attempts.get(repr("bad"), 0) >= 2)
    await kv.enqueue("good")
    await listener.until(lambda: "good" in listener.received)
    await asyncio.sleep(0.2)
    assert listener.attempts[repr("bad")] == 2
    assert await collect(kv.list(prefix=[])) == []  # nothing dead-lettered
    await listener.stop()


@pytest.mark.kv_feature("queues")
async def test_handler_exceptions_are_logged(
    kv: kvshim.Kv, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.WARNING)
    listener = Listener(kv, fail=lambda value, attempt: attempt == 1)
    await kv.enqueue("boom-7f3a", backoff_schedule=[10])
    await listener.until(lambda: listener.attempts.get(repr("boom-7f3a"), 0) >= 2)
    await listener.stop()
    text = caplog.text + capsys.readouterr().err
    assert "handler failure for 'boom-7f3a'" in text


@pytest.mark.kv_feature("queues")
async def test_handler_exceptions_do_not_stop_the_listener(kv: kvshim.Kv) -> None:
    listener = Listener(kv, fail=lambda value, attempt: value == "bad")
    await kv.enqueue("bad", backoff_schedule=[])
    await listener.until(lambda: "bad" in listener.received)
    await kv.enqueue("good")
    await listener.until(lambda: "good" in listener.received)
    assert not listener.task.done()
    await listener.stop()


@pytest.mark.kv_feature("queues")
async def test_handlers_run_concurrently(kv: kvshim.Kv) -> None:
    started = asyncio.Event()
    release = asyncio.Event()
    seen: list[Any] = []

    async def handler(value: Any) -> None:
        seen.append(value)
        if value == "slow":
            started.set()
            await release.wait()

    task = asyncio.create_task(kv.listen_queue(handler))
    await kv.enqueue("slow")
    await wait(started.wait())
    await kv.enqueue("fast")

    async def fast_seen() -> None:
        while "fast" not in seen:
            await asyncio.sleep(0.01)

    await wait(fast_seen())  # delivered while "slow" is still running
    release.set()
    await asyncio.sleep(0.05)
    await kv.close()
    await wait(task)


@pytest.mark.kv_feature("queues")
async def test_two_listeners_share_messages(kv: kvshim.Kv) -> None:
    first: list[Any] = []
    second: list[Any] = []

    async def one(value: Any) -> None:
        first.append(value)
        await asyncio.sleep(0.01)

    async def two(value: Any) -> None:
        second.append(value)
        await asyncio.sleep(0.01)

    tasks = [asyncio.create_task(kv.listen_queue(one)), asyncio.create_task(kv.listen_queue(two))]
    for i in range(20):
        await kv.enqueue(i)

    async def all_seen() -> None:
        while len(first) + len(second) < 20:
            await asyncio.sleep(0.01)

    await wait(all_seen())
    await asyncio.sleep(0.2)
    assert sorted(first + second) == list(range(20))  # each exactly once in total
    await kv.close()
    await wait(asyncio.gather(*tasks))


@pytest.mark.kv_feature("queues")
async def test_listen_queue_returns_after_close(open_db: Any) -> None:
    kv = await open_db()
    task = asyncio.create_task(kv.listen_queue(lambda value: None))
    await asyncio.sleep(0.05)
    assert not task.done()
    await kv.close()
    assert await wait(task) is None


@pytest.mark.kv_feature("queues")
async def test_listen_queue_after_close(open_db: Any) -> None:
    kv = await open_db()
    await kv.close()
    with pytest.raises(kvshim.QueueClosedError, match=exact("Queue already closed")):
        await wait(kv.listen_queue(lambda value: None))


@pytest.mark.kv_feature("queues")
async def test_listen_queue_returns_at_close_while_a_handler_still_runs(open_db: Any) -> None:
    # §9.2 / §10.2: close resolves listenQueue (Deno 2.9.8: ~80 ms after close, the handler
    # running on); it waits for acknowledgements under way, not for handlers.
    kv = await open_db()
    started, release = asyncio.Event(), asyncio.Event()
    finished: list[bool] = []

    async def handler(value: Any) -> None:
        started.set()
        await release.wait()
        finished.append(True)

    task = asyncio.create_task(kv.listen_queue(handler))
    await kv.enqueue("x")
    await wait(started.wait())
    await kv.close()
    await wait(task)
    assert finished == []  # still running: listen_queue did not wait for it
    release.set()
    await asyncio.sleep(0.05)
    assert finished == [True]


@pytest.mark.kv_feature("queues")
async def test_a_handler_raising_a_base_exception_is_a_failed_attempt(kv: kvshim.Kv) -> None:
    # A CancelledError from inside a handler (a timeout it set itself, say) is a failure like
    # any other: retried, then dead-lettered (§9.3), not lost.
    attempts: list[Any] = []

    async def handler(value: Any) -> None:
        attempts.append(value)
        raise asyncio.CancelledError

    task = asyncio.create_task(kv.listen_queue(handler))
    await kv.enqueue("m", backoff_schedule=[50], keys_if_undelivered=[["dead"]])

    async def dead_letter() -> Any:
        while (entry := await kv.get(["dead"])).versionstamp is None:
            await asyncio.sleep(0.02)
        return entry.value

    assert await wait(dead_letter()) == "m"
    assert attempts == ["m", "m"]
    await kv.close()
    await wait(task)


@pytest.mark.kv_feature("queues")
async def test_several_listeners_share_the_messages(kv: kvshim.Kv) -> None:
    got: dict[str, list[int]] = {"a": [], "b": []}

    def listener(name: str) -> Any:
        async def handler(value: int) -> None:
            got[name].append(value)
            await asyncio.sleep(0.01)

        return handler

    tasks = [asyncio.create_task(kv.listen_queue(listener(n))) for n in got]
    await asyncio.sleep(0.05)
    await kv.atomic().enqueue(0).enqueue(1).enqueue(2).enqueue(3).commit()
    for i in range(4, 10):
        await kv.enqueue(i)

    async def all_delivered() -> None:
        while len(got["a"]) + len(got["b"]) < 10:
            await asyncio.sleep(0.02)

    await wait(all_delivered())
    assert sorted(got["a"] + got["b"]) == list(range(10))  # each once
    assert got["a"] and got["b"]  # both took part (Deno 2.9.8 split 5/5)
    await kv.close()
    await wait(asyncio.gather(*tasks))


# --- enqueue validation (§9.1) ----------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"delay": -1}, "Delay must be >= 0: received -1"),
        ({"delay": 2_592_000_001}, "Delay cannot be greater than 30 days: received 2592000001"),
        ({"delay": math.nan}, "Delay cannot be NaN"),
        ({"backoff_schedule": [1] * 6}, "Invalid backoffSchedule, max 5 intervals allowed"),
        ({"backoff_schedule": [10, -1]}, "Invalid backoffSchedule, interval at index 1 is invalid"),
        (
            {"backoff_schedule": [3_600_001]},
            "Invalid backoffSchedule, interval at index 0 is invalid",
        ),
        (
            {"backoff_schedule": [1, 2, math.nan]},
            "Invalid backoffSchedule, interval at index 2 is invalid",
        ),
    ],
    ids=[
        "negative-delay",
        "delay-over-30-days",
        "nan-delay",
        "too-many-intervals",
        "negative-interval",
        "interval-too-long",
        "nan-interval",
    ],
)
async def test_enqueue_option_validation(
    kv: kvshim.Kv, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(kvshim.KvTypeError, match=exact(message)):
        await kv.enqueue("m", **options)
    with pytest.raises(kvshim.KvTypeError, match=exact(message)):
        kv.atomic().enqueue("m", **options)  # synchronous in the builder


@pytest.mark.parametrize(
    ("value", "options", "message"),
    [
        (print, {"delay": -1}, "Delay must be >= 0: received -1"),
        ("m", {"delay": -1, "backoff_schedule": [1] * 6}, "Delay must be >= 0: received -1"),
        (print, {"backoff_schedule": [1] * 6}, "Invalid backoffSchedule, max 5 intervals allowed"),
        (bytes(70000), {"delay": -1}, "Delay must be >= 0: received -1"),
    ],
    ids=["delay-before-clone", "delay-before-schedule", "schedule-before-clone", "delay-first"],
)
async def test_enqueue_validation_order(
    kv: kvshim.Kv, value: object, options: dict[str, Any], message: str
) -> None:
    # Deno checks the delay, then the schedule, then clones the value (checked with 2.9.8).
    with pytest.raises(kvshim.KvTypeError, match=exact(message)):
        await kv.enqueue(value, **options)


async def test_enqueue_infinite_delay(kv: kvshim.Kv) -> None:
    with pytest.raises(kvshim.KvTypeError, match="^Delay cannot be greater than 30 days"):
        await kv.enqueue("m", delay=math.inf)


async def test_enqueue_option_boundaries_are_accepted(kv: kvshim.Kv, backend_name: str) -> None:
    assert (await kv.enqueue("m", delay=2_592_000_000)).ok
    assert (await kv.enqueue("m", delay=1.5, backoff_schedule=[0, 3_600_000, 1.5, 1, 2])).ok
    # keys_if_undelivered: no count, emptiness or size check (§9.1)
    many_keys: list[Any] = [[], *(["k", i] for i in range(11))]
    if backend_name == "remote":  # the server applies denokv's limit (kv-connect.md §7.3)
        with pytest.raises(
            kvshim.KvTypeError, match=exact("Too many keys_if_undelivered (max 10)")
        ):
            await kv.enqueue("m", delay=10_000, keys_if_undelivered=many_keys)
        many_keys = many_keys[:10]
    assert (await kv.enqueue("m", delay=10_000, keys_if_undelivered=many_keys)).ok


async def test_enqueue_invalid_undelivered_key(kv: kvshim.Kv) -> None:
    with pytest.raises(
        kvshim.KvTypeError, match=exact("expected string, number, bigint, ArrayBufferView, boolean")
    ):
        await kv.enqueue("m", keys_if_undelivered=[["ok"], ["bad", None]])


async def test_enqueue_payload_size(kv: kvshim.Kv) -> None:
    assert (await kv.enqueue("a" * 65530, delay=10_000)).ok
    with pytest.raises(
        kvshim.KvTypeError, match=exact("enqueue payload too large (max 65536 bytes)")
    ):
        await kv.enqueue("a" * 65531)
    with pytest.raises(
        kvshim.KvTypeError, match=exact("enqueue payload too large (max 65536 bytes)")
    ):
        await kv.enqueue(bytes(65536))  # always V8: a Uint8Array has overhead
