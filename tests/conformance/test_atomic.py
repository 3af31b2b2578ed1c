"""Atomic writes: checks, versionstamps, ordered mutations, sum/min/max, limits, rollback.

Spec: deno-kv-semantics.md §4, §6, §12.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import kvshim
from kvshim import AtomicCheck, BigInt, KvU64

from .conformance_support import collect, exact, keys_of

U64_MAX = 0xFFFF_FFFF_FFFF_FFFF


# --- checks ------------------------------------------------------------------------------


async def test_check_with_entry_passes_then_fails(kv: kvshim.Kv) -> None:
    await kv.set(["k"], 1)
    entry = await kv.get(["k"])
    result = await kv.atomic().check(entry).set(["k"], 2).commit()
    assert result.ok is True and result.versionstamp is not None
    # the entry is now stale
    stale = await kv.atomic().check(entry).set(["k"], 3).commit()
    assert isinstance(stale, kvshim.CommitResult)
    assert stale.ok is False
    assert stale.versionstamp is None
    assert (await kv.get(["k"])).value == 2


async def test_check_missing_key(kv: kvshim.Kv) -> None:
    missing = await kv.get(["k"])
    assert (await kv.atomic().check(missing).set(["k"], 1).commit()).ok
    # now it exists, so the "must not exist" check fails
    assert not (await kv.atomic().check(missing).set(["k"], 2).commit()).ok
    assert not (await kv.atomic().check(AtomicCheck(["k"], None)).set(["k"], 2).commit()).ok
    assert (await kv.get(["k"])).value == 1


async def test_check_with_atomic_check_objects(kv: kvshim.Kv) -> None:
    res = await kv.set(["k"], 1)
    assert res.versionstamp is not None
    ok = await kv.atomic().check(AtomicCheck(["k"], res.versionstamp)).set(["k"], 2).commit()
    assert ok.ok
    bad = await kv.atomic().check(AtomicCheck(["k"], res.versionstamp)).set(["k"], 3).commit()
    assert not bad.ok


async def test_check_versionstamp_hex_is_case_insensitive(kv: kvshim.Kv) -> None:
    res = await kv.set(["k"], 1)
    assert res.versionstamp is not None
    upper = res.versionstamp.upper()
    assert (await kv.atomic().check(AtomicCheck(["k"], upper)).set(["k"], 2).commit()).ok


@pytest.mark.parametrize(
    "versionstamp", ["", "zz", "0" * 19, "0" * 21, "g" * 20, "0000000000000000000x"]
)
async def test_invalid_check(kv: kvshim.Kv, versionstamp: str) -> None:
    with pytest.raises(kvshim.KvTypeError, match=exact("Invalid check")):
        await kv.atomic().check(AtomicCheck(["k"], versionstamp)).commit()


async def test_non_string_check_versionstamp(kv: kvshim.Kv) -> None:
    with pytest.raises(kvshim.KvTypeError):
        await kv.atomic().check(AtomicCheck(["k"], 123)).commit()  # type: ignore[arg-type]


async def test_check_with_entries_from_get_many(kv: kvshim.Kv) -> None:
    await kv.set(["a"], 1)
    entries = await kv.get_many([["a"], ["b"]])
    assert (await kv.atomic().check(*entries).set(["b"], 2).commit()).ok
    assert not (await kv.atomic().check(*entries).set(["c"], 3).commit()).ok
    assert (await kv.get(["c"])).versionstamp is None


async def test_several_checks_all_must_pass(kv: kvshim.Kv) -> None:
    a = await kv.set(["a"], 1)
    b = await kv.set(["b"], 1)
    assert a.versionstamp and b.versionstamp
    checks = [AtomicCheck(["a"], a.versionstamp), AtomicCheck(["b"], b.versionstamp)]
    assert (await kv.atomic().check(*checks).set(["c"], 1).commit()).ok
    wrong = [AtomicCheck(["a"], a.versionstamp), AtomicCheck(["b"], a.versionstamp)]
    assert not (await kv.atomic().check(*wrong).set(["d"], 1).commit()).ok
    assert (await kv.get(["d"])).value is None


async def test_contradictory_checks_on_same_key(kv: kvshim.Kv) -> None:
    res = await kv.set(["k"], 1)
    assert res.versionstamp
    both = kv.atomic().check(AtomicCheck(["k"], res.versionstamp), AtomicCheck(["k"], None))
    assert not (await both.commit()).ok
    same_twice = kv.atomic().check(
        AtomicCheck(["k"], res.versionstamp), AtomicCheck(["k"], res.versionstamp)
    )
    assert (await same_twice.commit()).ok


async def test_failed_check_applies_nothing(kv: kvshim.Kv) -> None:
    await kv.set(["a"], 1)
    before = await kv.get(["a"])
    result = await (
        kv.atomic()
        .check(AtomicCheck(["a"], None))
        .set(["a"], 2)
        .set(["b"], 2)
        .delete(["a"])
        .sum(["c"], 1)
        .commit()
    )
    assert not result.ok
    after = await kv.get(["a"])
    assert after.value == 1 and after.versionstamp == before.versionstamp
    assert (await kv.get(["b"])).versionstamp is None
    assert (await kv.get(["c"])).versionstamp is None


async def test_check_empty_key(kv: kvshim.Kv) -> None:
    with pytest.raises(kvshim.KvTypeError, match=exact("key cannot be empty")):
        await kv.atomic().check(AtomicCheck([], None)).commit()


# --- versionstamps -----------------------------------------------------------------------


async def test_versionstamp_shared_by_all_keys_of_a_commit(kv: kvshim.Kv) -> None:
    result = await kv.atomic().set(["a"], 1).set(["b"], 2).sum(["c"], 3).commit()
    assert result.ok and result.versionstamp
    entries = await kv.get_many([["a"], ["b"], ["c"]])
    assert [e.versionstamp for e in entries] == [result.versionstamp] * 3


async def test_empty_commit_consumes_a_versionstamp(kv: kvshim.Kv) -> None:
    first = await kv.set(["a"], 1)
    empty = await kv.atomic().commit()
    assert empty.ok is True and empty.versionstamp is not None
    assert first.versionstamp is not None
    assert empty.versionstamp > first.versionstamp
    third = await kv.set(["a"], 2)
    assert third.versionstamp is not None and third.versionstamp > empty.versionstamp


async def test_check_only_commit_gets_a_versionstamp(kv: kvshim.Kv) -> None:
    first = await kv.set(["a"], 1)
    assert first.versionstamp
    res = await kv.atomic().check(AtomicCheck(["a"], first.versionstamp)).commit()
    assert res.ok and res.versionstamp and res.versionstamp > first.versionstamp
    # a check-only commit writes nothing
    assert (await kv.get(["a"])).versionstamp == first.versionstamp


async def test_failed_check_does_not_break_monotonicity(kv: kvshim.Kv) -> None:
    # (§4: a failed check consumes no version. Deno's random 1-9 increments make that
    # unobservable through the public API; we check the observable part.)
    first = await kv.set(["a"], 1)
    assert not (await kv.atomic().check(AtomicCheck(["a"], None)).commit()).ok
    second = await kv.set(["a"], 2)
    assert first.versionstamp and second.versionstamp and second.versionstamp > first.versionstamp


async def test_a_commit_moves_the_version_by_a_random_1_to_9(kv: kvshim.Kv) -> None:
    # §4: Deno's local backends add a random 1-9 per commit, so that nobody relies on
    # consecutive versionstamps; 150 commits all within 1..9 and not all the same step.
    versions = []
    for i in range(150):
        stamp = (await kv.set(["step"], i)).versionstamp
        assert stamp is not None and stamp.endswith("0000")
        versions.append(int(stamp[:16], 16))
    steps = [b - a for a, b in zip(versions, versions[1:], strict=False)]
    assert all(1 <= step <= 9 for step in steps), steps
    assert len(set(steps)) >= 5, steps


async def test_versionstamps_increase_under_concurrency(kv: kvshim.Kv) -> None:
    results = await asyncio.gather(*(kv.set(["k", i], i) for i in range(50)))
    stamps = [r.versionstamp for r in results]
    assert all(s is not None for s in stamps)
    assert len(set(stamps)) == 50
    for i, r in enumerate(results):
        assert (await kv.get(["k", i])).versionstamp == r.versionstamp


# --- ordered mutations -------------------------------------------------------------------


async def test_set_then_delete_leaves_key_absent(kv: kvshim.Kv) -> None:
    assert (await kv.atomic().set(["k"], 1).delete(["k"]).commit()).ok
    assert (await kv.get(["k"])).versionstamp is None


async def test_delete_then_set_leaves_key_present(kv: kvshim.Kv) -> None:
    await kv.set(["k"], 0)
    res = await kv.atomic().delete(["k"]).set(["k"], 1).commit()
    entry = await kv.get(["k"])
    assert entry.value == 1 and entry.versionstamp == res.versionstamp


async def test_set_then_sum_sums_the_new_value(kv: kvshim.Kv) -> None:
    await kv.atomic().set(["k"], KvU64(5)).sum(["k"], 2).commit()
    assert (await kv.get(["k"])).value == KvU64(7)


async def test_last_set_wins(kv: kvshim.Kv) -> None:
    await kv.atomic().set(["k"], 1).set(["k"], 2).set(["k"], 3).commit()
    assert (await kv.get(["k"])).value == 3


async def test_builder_returns_itself(kv: kvshim.Kv) -> None:
    op = kv.atomic()
    assert isinstance(op, kvshim.AtomicOperation)
    assert op.set(["a"], 1) is op
    assert op.delete(["b"]) is op
    assert op.sum(["c"], 1) is op
    assert op.min(["d"], 1) is op
    assert op.max(["e"], 1) is op
    assert op.check(AtomicCheck(["f"], None)) is op
    assert op.enqueue("m", backoff_schedule=[]) is op


async def test_await_atomic_is_a_type_error(kv: kvshim.Kv) -> None:
    with pytest.raises(kvshim.KvTypeError, match=r"commit\(\)"):
        await kv.atomic()  # type: ignore[misc]


# --- sum / min / max ---------------------------------------------------------------------


async def test_sum_min_max_on_absent_key_store_the_operand(kv: kvshim.Kv) -> None:
    await kv.atomic().sum(["s"], 5).min(["mi"], KvU64(6)).max(["ma"], 7).commit()
    values = [e.value for e in await kv.get_many([["s"], ["mi"], ["ma"]])]
    assert values == [KvU64(5), KvU64(6), KvU64(7)]
    assert all(isinstance(v, KvU64) for v in values)


async def test_sum_wraps_modulo_2_64(kv: kvshim.Kv) -> None:
    await kv.set(["k"], KvU64(U64_MAX))
    await kv.atomic().sum(["k"], 10).commit()
    value = (await kv.get(["k"])).value
    assert isinstance(value, KvU64) and value.value == 9


async def test_sum_accumulates(kv: kvshim.Kv) -> None:
    for _ in range(5):
        await kv.atomic().sum(["k"], KvU64(3)).commit()
    assert (await kv.get(["k"])).value.value == 15


async def test_concurrent_sums_are_exact(kv: kvshim.Kv) -> None:
    await asyncio.gather(*(kv.atomic().sum(["k"], 1).commit() for _ in range(100)))
    assert (await kv.get(["k"])).value == KvU64(100)


async def test_min_and_max_are_numeric(kv: kvshim.Kv) -> None:
    await kv.set(["mi"], KvU64(10))
    await kv.set(["ma"], KvU64(10))
    await kv.atomic().min(["mi"], 20).max(["ma"], 5).commit()
    assert [e.value for e in await kv.get_many([["mi"], ["ma"]])] == [KvU64(10), KvU64(10)]
    await kv.atomic().min(["mi"], 3).max(["ma"], U64_MAX).commit()
    assert [e.value for e in await kv.get_many([["mi"], ["ma"]])] == [KvU64(3), KvU64(U64_MAX)]


@pytest.mark.parametrize("op", ["sum", "min", "max"])
@pytest.mark.parametrize("existing", ["str", 5, BigInt(0), b"\x01" * 8, {"value": 1}], ids=repr)
async def test_sum_min_max_on_non_u64_value(kv: kvshim.Kv, op: str, existing: Any) -> None:
    before = await kv.set(["k"], existing)
    builder = getattr(kv.atomic(), op)(["k"], 1)
    message = f"Failed to perform '{op}' mutation on a non-U64 value in the database"
    with pytest.raises(kvshim.KvTypeError, match=exact(message)):
        await builder.commit()
    entry = await kv.get(["k"])
    assert entry.versionstamp == before.versionstamp
    if not isinstance(existing, BigInt):  # (how a bigint value reads back: test_values.py)
        assert entry.value == existing


@pytest.mark.parametrize("op", ["sum", "min", "max"])
async def test_sum_min_max_operand_validation_is_synchronous(kv: kvshim.Kv, op: str) -> None:
    with pytest.raises(
        kvshim.KvRangeError, match=exact("Value must be a positive bigint: received -1")
    ):
        getattr(kv.atomic(), op)(["k"], -1)
    with pytest.raises(
        kvshim.KvRangeError, match=exact("Value must fit in a 64-bit unsigned integer")
    ):
        getattr(kv.atomic(), op)(["k"], 2**64)
    with pytest.raises(kvshim.KvTypeError, match="Value must be a bigint"):
        getattr(kv.atomic(), op)(["k"], "5")


async def test_sum_clears_ttl(kv: kvshim.Kv) -> None:
    await kv.set(["k"], KvU64(1), expire_in=300)
    await kv.atomic().sum(["k"], 1).commit()
    await kv.set(["other"], KvU64(1), expire_in=300)
    await kv.atomic().max(["other"], 2).commit()
    await asyncio.sleep(0.6)
    assert (await kv.get(["k"])).value == KvU64(2)
    assert (await kv.get(["other"])).value == KvU64(2)


# --- rollback on a type error (kvshim is stricter than Deno, §6.2) -------------------------


async def test_type_error_rolls_back_the_whole_write(kv: kvshim.Kv) -> None:
    # Deviation from Deno: Deno keeps ["x"] == 1 here (its local backend commits the mutations
    # before the failing one). kvshim rolls the whole atomic write back, as Deno's docs promise.
    await kv.set(["str"], "s")
    before = await kv.get(["str"])
    op = kv.atomic().set(["x"], 1).sum(["str"], 1).set(["y"], 2).enqueue("never")
    with pytest.raises(
        kvshim.KvTypeError,
        match=exact("Failed to perform 'sum' mutation on a non-U64 value in the database"),
    ):
        await op.commit()
    assert (await kv.get(["x"])).versionstamp is None
    assert (await kv.get(["y"])).versionstamp is None
    after = await kv.get(["str"])
    assert after.value == "s" and after.versionstamp == before.versionstamp


async def test_type_error_after_delete_and_set_rolls_back(kv: kvshim.Kv) -> None:
    # Deviation from Deno, which leaves k == 0n here.
    await kv.set(["k"], "original")
    with pytest.raises(kvshim.KvTypeError):
        await kv.atomic().delete(["k"]).set(["k"], BigInt(0)).sum(["k"], 2).commit()
    assert (await kv.get(["k"])).value == "original"


async def test_database_usable_after_rolled_back_write(kv: kvshim.Kv) -> None:
    await kv.set(["str"], "s")
    with pytest.raises(kvshim.KvTypeError):
        await kv.atomic().set(["x"], 1).min(["str"], 1).commit()
    res = await kv.set(["x"], 2)
    assert res.ok
    assert (await kv.get(["x"])).value == 2


# --- versionstamped keys (§6.6) ----------------------------------------------------------


async def test_versionstamped_key_in_atomic(kv: kvshim.Kv) -> None:
    marker = kv.commit_versionstamp()
    res = await kv.atomic().set(["log", marker], "a").set(["plain"], "b").commit()
    assert res.ok and res.versionstamp
    [entry] = await collect(kv.list(prefix=["log"]))
    assert entry.key == ("log", res.versionstamp)
    assert entry.versionstamp == res.versionstamp
    assert (await kv.get(["plain"])).versionstamp == res.versionstamp


async def test_versionstamped_keys_sort_in_commit_order(kv: kvshim.Kv) -> None:
    marker = kv.commit_versionstamp()
    for i in range(5):
        await kv.set(["log", marker], i)
    entries = await collect(kv.list(prefix=["log"]))
    assert [e.value for e in entries] == [0, 1, 2, 3, 4]


async def test_versionstamp_marker_only_as_last_part_of_a_set(kv: kvshim.Kv) -> None:
    marker = kv.commit_versionstamp()
    invalid = exact("expected string, number, bigint, ArrayBufferView, boolean")
    with pytest.raises(kvshim.KvTypeError, match=invalid):
        await kv.set([marker, "a"], 1)
    with pytest.raises(kvshim.KvTypeError, match=invalid):
        await kv.atomic().check(AtomicCheck(["a", marker], None)).commit()
    with pytest.raises(kvshim.KvTypeError, match=invalid):
        await kv.atomic().delete(["a", marker]).commit()
    with pytest.raises(kvshim.KvTypeError, match=exact("key cannot be empty")):
        await kv.set([marker], 1)
    assert await collect(kv.list(prefix=[])) == []


async def test_versionstamped_key_is_size_checked_before_the_suffix(kv: kvshim.Kv) -> None:
    marker = kv.commit_versionstamp()
    res = await kv.set(["x" * 2046, marker], "v")  # 2048 bytes before the 22-byte suffix
    assert res.ok
    [entry] = await collect(kv.list(prefix=["x" * 2046]))
    assert entry.key == ("x" * 2046, res.versionstamp)
    with pytest.raises(kvshim.KvTypeError, match=exact("Key too large for write (max 2048 bytes)")):
        await kv.set(["x" * 2047, marker], "v")


# --- limits (§6.2, §12) ------------------------------------------------------------------


async def test_max_checks(kv: kvshim.Kv) -> None:
    checks = [AtomicCheck(["c", i], None) for i in range(100)]
    assert (await kv.atomic().check(*checks).commit()).ok
    with pytest.raises(kvshim.KvTypeError, match=exact("Too many checks (max 100)")):
        await kv.atomic().check(*checks, AtomicCheck(["c", 100], None)).commit()


async def test_max_mutations(kv: kvshim.Kv) -> None:
    op = kv.atomic()
    for i in range(1000):
        op.set(["m", i], i)
    assert (await op.commit()).ok
    assert len(await collect(kv.list(prefix=["m"]))) == 1000
    with pytest.raises(kvshim.KvTypeError, match=exact("Too many mutations (max 1000)")):
        op = kv.atomic()
        for i in range(1000):
            op.set(["n", i], i)
        op.enqueue("one too many", backoff_schedule=[])
        await op.commit()
    with pytest.raises(kvshim.KvTypeError, match=exact("Too many mutations (max 1000)")):
        op = kv.atomic()
        for i in range(1001):
            op.delete(["n", i])
        await op.commit()
    assert await collect(kv.list(prefix=["n"])) == []


async def test_checks_limit_is_reported_before_mutations_limit(kv: kvshim.Kv) -> None:
    with pytest.raises(kvshim.KvTypeError, match=exact("Too many checks (max 100)")):
        op = kv.atomic().check(*(AtomicCheck(["c", i], None) for i in range(101)))
        for i in range(1001):
            op.set(["m", i], i)
        await op.commit()


def _key_2048(i: int) -> list[Any]:
    key = [f"{i:04d}" + "x" * 2042]  # 1 + 2046 + 1 = 2048 encoded bytes
    return key


async def test_total_key_size_sets_vs_deletes(kv: kvshim.Kv) -> None:
    # Value-carrying keys count towards the 81 920-byte total; deletes do not.
    op = kv.atomic()
    for i in range(40):
        op.set(_key_2048(i), 0)
    assert (await op.commit()).ok  # 40 * 2048 == 81920: not strictly greater
    with pytest.raises(
        kvshim.KvTypeError, match=exact("Total key size too large (max 81920 bytes)")
    ):
        op = kv.atomic()
        for i in range(41):
            op.set(_key_2048(i), 1)
        await op.commit()
    assert (await kv.get(_key_2048(0))).value == 0
    op = kv.atomic()
    for i in range(41):
        op.delete(_key_2048(i))
    assert (await op.commit()).ok
    assert await collect(kv.list(prefix=[])) == []


async def test_total_mutation_size_boundary(kv: kvshim.Kv) -> None:
    # Each set counts 2*|key| + |value|. Key ["v", i] is 3 + 9 = 12 bytes; a bytes value
    # counts its length. 12 full sets: 12 * (24 + 65536) = 786720; 819200 - 786720 = 32480.
    def build(last_value_size: int) -> kvshim.AtomicOperation:
        op = kv.atomic()
        for i in range(12):
            op.set(["v", i], bytes(65536))
        op.set(["v", 12], bytes(last_value_size))
        return op

    with pytest.raises(
        kvshim.KvTypeError, match=exact("Total mutation size too large (max 819200 bytes)")
    ):
        await build(32480 - 24 + 1).commit()
    assert await collect(kv.list(prefix=["v"])) == []
    assert (await build(32480 - 24).commit()).ok
    assert len(await collect(kv.list(prefix=["v"]))) == 13


async def test_total_mutation_size_counts_checks_and_deletes(kv: kvshim.Kv) -> None:
    # 12 sets as above (786720) + checks and deletes of 12-byte keys, once each.
    def build(n_checks: int, n_deletes: int) -> kvshim.AtomicOperation:
        op = kv.atomic()
        for i in range(12):
            op.set(["v", i], bytes(65536))
        op.set(["v", 12], bytes(32480 - 24 - 12 * (n_checks + n_deletes)))
        op.check(*(AtomicCheck(["c", i], None) for i in range(n_checks)))
        for i in range(n_deletes):
            op.delete(["d", i])
        return op

    assert (await build(5, 5).commit()).ok
    op = build(5, 5)
    op.delete(["e", 0])  # one byte too many is enough: add a 12-byte delete
    with pytest.raises(
        kvshim.KvTypeError, match=exact("Total mutation size too large (max 819200 bytes)")
    ):
        await op.commit()


@pytest.mark.kv_feature("queues")
async def test_enqueue_counts_only_a_given_backoff_schedule(kv: kvshim.Kv) -> None:
    # 12 enqueues of a 65,006-byte payload + one set of a 12-byte key: 780072 + 24 + value.
    # Without a backoffSchedule an enqueue counts its payload only (Deno: 0 intervals, though
    # the default schedule applies); with one, 4 bytes per interval.
    def build(value_size: int, schedule: list[int] | None) -> kvshim.AtomicOperation:
        op = kv.atomic()
        for _ in range(12):
            op.enqueue("x" * 65000, backoff_schedule=schedule)
        return op.set(["k"], bytes(value_size))

    assert (await build(39122, None).commit()).ok
    assert (await build(38882, [1, 1, 1, 1, 1]).commit()).ok
    for size, schedule in ((39123, None), (38883, [1, 1, 1, 1, 1])):
        with pytest.raises(
            kvshim.KvTypeError, match=exact("Total mutation size too large (max 819200 bytes)")
        ):
            await build(size, schedule).commit()


async def test_kvu64_counts_as_8_bytes(kv: kvshim.Kv) -> None:
    def build(extra: int) -> kvshim.AtomicOperation:
        op = kv.atomic()
        for i in range(12):
            op.set(["v", i], bytes(65536))
        # last set: 12-byte key, 8-byte KvU64 -> 32 bytes; fill the rest with a bytes value
        op.sum(["v", 12], KvU64(1))
        op.set(["v", 13], bytes(32480 - 32 - 24 + extra))
        return op

    assert (await build(0).commit()).ok
    with pytest.raises(
        kvshim.KvTypeError, match=exact("Total mutation size too large (max 819200 bytes)")
    ):
        await build(1).commit()


async def test_value_size_limit_in_atomic(kv: kvshim.Kv) -> None:
    assert (await kv.atomic().set(["ok"], bytes(65536)).commit()).ok
    with pytest.raises(kvshim.KvTypeError, match=exact("Value too large (max 65536 bytes)")):
        await kv.atomic().set(["a"], 1).set(["bad"], bytes(65537)).commit()
    assert (await kv.get(["a"])).versionstamp is None


async def test_string_value_size_boundary(kv: kvshim.Kv) -> None:
    # A one-byte V8 string has 6 bytes of overhead (FF 10 22 + 3-byte varint length).
    assert (await kv.set(["ok"], "a" * 65530)).ok
    assert (await kv.get(["ok"])).value == "a" * 65530
    with pytest.raises(kvshim.KvTypeError, match=exact("Value too large (max 65536 bytes)")):
        await kv.set(["bad"], "a" * 65531)


async def test_key_size_limit_for_each_mutation_kind(kv: kvshim.Kv) -> None:
    big = ["x" * 2047]
    message = exact("Key too large for write (max 2048 bytes)")
    for build in (
        lambda op: op.set(big, 1),
        lambda op: op.delete(big),
        lambda op: op.sum(big, 1),
        lambda op: op.min(big, 1),
        lambda op: op.max(big, 1),
        lambda op: op.check(AtomicCheck(big, None)),
    ):
        with pytest.raises(kvshim.KvTypeError, match=message):
            await build(kv.atomic()).commit()


async def test_empty_key_for_each_mutation_kind(kv: kvshim.Kv) -> None:
    message = exact("key cannot be empty")
    for build in (
        lambda op: op.set([], 1),
        lambda op: op.delete([]),
        lambda op: op.sum([], 1),
        lambda op: op.min([], 1),
        lambda op: op.max([], 1),
    ):
        with pytest.raises(kvshim.KvTypeError, match=message):
            await build(kv.atomic().set(["first"], 1)).commit()
    assert (await kv.get(["first"])).versionstamp is None


async def test_unsupported_value_in_atomic_writes_nothing(kv: kvshim.Kv) -> None:
    with pytest.raises(kvshim.KvTypeError, match="object"):
        await kv.atomic().set(["a"], 1).set(["b"], object()).commit()
    assert keys_of(await collect(kv.list(prefix=[]))) == []


async def test_expire_in_validation_in_builder(kv: kvshim.Kv) -> None:
    with pytest.raises(
        kvshim.KvTypeError, match=exact("expireIn must be a non-negative integer: received -1")
    ):
        kv.atomic().set(["k"], 1, expire_in=-1)  # synchronous in the builder


# --- mutate() (§6.1, §6.5) ------------------------------------------------------------------


async def test_mutate_applies_records_in_order(kv: kvshim.Kv) -> None:
    await kv.set(["gone"], 1)
    result = await (
        kv.atomic()
        .mutate(
            {"type": "set", "key": ["a"], "value": {"n": 1}},
            {"type": "sum", "key": ["n"], "value": KvU64(5)},
            {"type": "sum", "key": ["n"], "value": KvU64(2)},
            {"type": "delete", "key": ["gone"]},
            {"type": "delete", "key": ["gone2"], "value": 0},  # a falsy value is let through
            {"type": "set", "key": ["none"], "value": None},
            {"type": "max", "key": ["m"], "value": KvU64(3)},
            {"type": "min", "key": ["m"], "value": KvU64(1)},
        )
        .commit()
    )
    assert result.ok
    entries = await kv.get_many([["a"], ["n"], ["gone"], ["none"], ["m"]])
    assert [e.value for e in entries] == [{"n": 1}, KvU64(7), None, None, KvU64(1)]
    assert entries[3].versionstamp == result.versionstamp  # a stored None, not a missing key


async def test_mutate_expire_in(kv: kvshim.Kv) -> None:
    await (
        kv.atomic()
        .mutate(
            {"type": "set", "key": ["t"], "value": 1, "expire_in": 100},
            {"type": "set", "key": ["deno"], "value": 1, "expireIn": 100},
            {
                "type": "set",
                "key": ["kept"],
                "value": 1,
                "expireIn": "100",
            },  # not a number: ignored
        )
        .commit()
    )
    await asyncio.sleep(0.3)
    assert [e.value for e in await kv.get_many([["t"], ["deno"], ["kept"]])] == [None, None, 1]


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"type": "set", "key": ["a"]}, "Invalid mutation 'set' without value"),
        ({"type": "delete", "key": ["a"], "value": 1}, "Invalid mutation 'delete' with value"),
        ({"type": "bogus", "key": ["a"]}, "Invalid mutation type"),
        ({"key": ["a"], "value": 1}, "Invalid mutation type"),
        ({"type": "set", "value": 1}, "Invalid mutation 'set' without key"),
        (
            {"type": "min", "key": ["a"], "value": 1},
            "Failed to perform 'min' mutation on a non-U64 operand",
        ),
        (
            {"type": "max", "key": ["a"], "value": "x"},
            "Failed to perform 'max' mutation on a non-U64 operand",
        ),
        (
            {"type": "sum", "key": ["a"], "value": 1},
            "Failed to perform 'sum' mutation on a non-U64 operand",
        ),
        ({"type": "set", "key": [], "value": 1}, "key cannot be empty"),
        (
            {"type": "set", "key": ["a"], "value": 1, "expire_in": -1},
            "expireIn must be a non-negative integer: received -1",
        ),
    ],
    ids=[
        "set-without-value",
        "delete-with-value",
        "unknown-type",
        "no-type",
        "no-key",
        "min-non-u64",
        "max-non-u64",
        "sum-non-u64",
        "empty-key",
        "bad-expire-in",
    ],
)
def test_mutate_validation(kv: kvshim.Kv, record: dict[str, Any], message: str) -> None:
    with pytest.raises(kvshim.KvTypeError, match=exact(message)):
        kv.atomic().mutate(record)
