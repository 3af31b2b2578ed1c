"""``AtomicOperation``: the builder behind ``kv.atomic()``, and the write limits of a commit."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from kvshim import limits, validation
from kvshim.entries import COMMIT_VERSIONSTAMP, AtomicCheck, CommitResult, KvEntry
from kvshim.errors import KvTypeError
from kvshim.keys import KEY_SEQUENCES
from kvshim.model import AtomicWrite, Check, Enqueue, Mutation, MutationKind
from kvshim.values import KvU64, encode_v8, encode_value

if TYPE_CHECKING:
    from kvshim.clock import Clock

Committer = Callable[[AtomicWrite], Awaitable[CommitResult]]
_U64_KINDS = {"sum": MutationKind.SUM, "min": MutationKind.MIN, "max": MutationKind.MAX}
_MUTATION_TYPES = frozenset({"set", "delete", *_U64_KINDS})


class AtomicOperation:
    """Checks, mutations and enqueues that ``commit()`` applies together or not at all.

    Each builder method validates its input at once and returns the operation, so calls chain:
    ``await kv.atomic().check(entry).set(key, value).commit()``.
    """

    __slots__ = ("_checks", "_clock", "_commit", "_enqueues", "_mutations")

    def __init__(self, commit: Committer, clock: Clock) -> None:
        self._commit = commit
        self._clock = clock
        self._checks: list[Check] = []
        self._mutations: list[tuple[Mutation, int | None]] = []
        self._enqueues: list[tuple[Enqueue, float, int]] = []

    def check(self, *checks: KvEntry | AtomicCheck) -> AtomicOperation:
        """Require each key to still be at the given versionstamp (``None``: not to exist)."""
        for item in checks:
            key = validation.write_key(item.key, too_large_bigint="Invalid check")
            self._checks.append(Check(key, validation.versionstamp(item.versionstamp)))
        return self

    def set(
        self, key: Sequence[Any], value: object, *, expire_in: int | None = None
    ) -> AtomicOperation:
        """Store ``value`` at ``key``, expiring after ``expire_in`` milliseconds if given."""
        self._mutations.append(set_mutation(key, value, expire_in))
        return self

    def delete(self, key: Sequence[Any]) -> AtomicOperation:
        """Remove ``key``."""
        self._mutations.append((delete_mutation(key), None))
        return self

    def mutate(self, *mutations: Mapping[str, Any]) -> AtomicOperation:
        """Add Deno-style mutation records, in order: ``{"type": "set", "key": k, "value": v}``
        (optionally ``"expire_in"``, or Deno's ``"expireIn"``: milliseconds, ignored unless a
        number), ``{"type": "delete", "key": k}``, and ``{"type": "sum" | "min" | "max",
        "key": k, "value": KvU64(n)}``."""
        for mutation in mutations:
            kind = mutation.get("type") if isinstance(mutation, Mapping) else None
            if not isinstance(kind, str) or kind not in _MUTATION_TYPES:
                raise KvTypeError("Invalid mutation type")
            if "key" not in mutation:
                raise KvTypeError(f"Invalid mutation '{kind}' without key")
            key, value = mutation["key"], mutation.get("value")
            if kind == "set":
                if "value" not in mutation:
                    raise KvTypeError("Invalid mutation 'set' without value")
                ttl = mutation.get("expire_in", mutation.get("expireIn"))
                self.set(key, value, expire_in=ttl if validation.is_number(ttl) else None)
            elif kind == "delete":
                if value:  # Deno lets a falsy value through
                    raise KvTypeError("Invalid mutation 'delete' with value")
                self.delete(key)
            elif not isinstance(value, KvU64):  # Deno's V8 ``sum`` extension is not supported
                raise KvTypeError(f"Failed to perform '{kind}' mutation on a non-U64 operand")
            else:
                self._u64(kind, key, value)
        return self

    def sum(self, key: Sequence[Any], n: int | KvU64) -> AtomicOperation:
        """Add ``n`` to the ``KvU64`` at ``key``, wrapping modulo 2**64."""
        return self._u64("sum", key, n)

    def min(self, key: Sequence[Any], n: int | KvU64) -> AtomicOperation:
        """Keep the smaller of ``n`` and the ``KvU64`` at ``key``."""
        return self._u64("min", key, n)

    def max(self, key: Sequence[Any], n: int | KvU64) -> AtomicOperation:
        """Keep the larger of ``n`` and the ``KvU64`` at ``key``."""
        return self._u64("max", key, n)

    def _u64(self, name: str, key: Sequence[Any], n: int | KvU64) -> AtomicOperation:
        operand = n if isinstance(n, KvU64) else KvU64(n)
        encoded = encode_value(operand)
        self._mutations.append(
            (Mutation(validation.write_key(key), _U64_KINDS[name], encoded), None)
        )
        return self

    def enqueue(
        self,
        value: object,
        *,
        delay: float = 0,
        keys_if_undelivered: Sequence[Sequence[Any]] | None = None,
        backoff_schedule: Sequence[float] | None = None,
    ) -> AtomicOperation:
        """Add a queue message, delivered after ``delay`` milliseconds (see ``Kv.enqueue``)."""
        # Deno's order: delay, then the schedule, then cloning the value and its size.
        wait = validation.delay(delay)
        schedule = validation.backoff_schedule(backoff_schedule)
        payload = encode_v8(value)
        if len(payload) > limits.MAX_VALUE_SIZE_BYTES:
            raise KvTypeError(
                f"enqueue payload too large (max {limits.MAX_VALUE_SIZE_BYTES} bytes)"
            )
        undelivered = tuple(
            validation.encode_key_for(key, "Invalid enqueue") for key in keys_if_undelivered or ()
        )
        message = Enqueue(payload, 0, undelivered, schedule)
        # Only a schedule the caller gave counts towards the total size, as in Deno.
        charged = 0 if backoff_schedule is None else len(schedule)
        self._enqueues.append((message, wait, charged))
        return self

    async def commit(self) -> CommitResult:
        """Apply everything atomically; ``CommitResult(ok=False)`` if a check failed."""
        return await self._commit(self._build())

    def _build(self) -> AtomicWrite:
        if len(self._checks) > limits.MAX_CHECKS:
            raise KvTypeError(f"Too many checks (max {limits.MAX_CHECKS})")
        if len(self._mutations) + len(self._enqueues) > limits.MAX_MUTATIONS:
            raise KvTypeError(f"Too many mutations (max {limits.MAX_MUTATIONS})")
        if self._enqueues or any(expire_in is not None for _, expire_in in self._mutations):
            now = self._clock()
            mutations = tuple(_with_expiry(m, expire_in, now) for m, expire_in in self._mutations)
            enqueues = tuple(_scheduled(e, delay, now) for e, delay, _ in self._enqueues)
        else:  # nothing timed: no clock needed
            mutations, enqueues = tuple([m for m, _ in self._mutations]), ()
        write = AtomicWrite(tuple(self._checks), mutations, enqueues)
        check_sizes(write, [charged for _, _, charged in self._enqueues])
        return write

    def __await__(self) -> Generator[Any, None, None]:
        raise KvTypeError("'AtomicOperation' is not awaitable: did you forget to call 'commit()'?")


def set_mutation(
    key: Sequence[Any], value: object, expire_in: int | None
) -> tuple[Mutation, int | None]:
    """A checked SET of ``value`` at ``key`` (versionstamped if the key ends with the marker),
    with its validated TTL in milliseconds."""
    kind = MutationKind.SET
    if isinstance(key, KEY_SEQUENCES) and key and key[-1] is COMMIT_VERSIONSTAMP:
        kind, key = MutationKind.SET_VERSIONSTAMPED_KEY, key[:-1]
    # Deno's order: expireIn, then cloning the value, then the key, then the value's size.
    ttl = None if expire_in is None else validation.expire_in(expire_in)
    encoded = encode_value(value)
    encoded_key = validation.write_key(key)
    validation.value_size(len(encoded.data))
    return Mutation(encoded_key, kind, encoded), ttl


def delete_mutation(key: Sequence[Any]) -> Mutation:
    """A checked DELETE of ``key``."""
    return Mutation(validation.write_key(key), MutationKind.DELETE)


def single_write(mutation: Mutation, expire_in: int | None, clock: Clock) -> AtomicWrite:
    """The write of one mutation, as ``AtomicOperation`` builds it. It needs no size check: one
    key (at most 2 KiB) and one value (at most 64 KiB) are always within the total limits."""
    if expire_in is not None:
        mutation = _with_expiry(mutation, expire_in, clock())
    return AtomicWrite((), (mutation,), ())


def _with_expiry(mutation: Mutation, expire_in: int | None, now: int) -> Mutation:
    if expire_in is None:
        return mutation
    at = validation.expire_at(expire_in, now)
    return Mutation(mutation.key, mutation.kind, mutation.value, at)


def _scheduled(message: Enqueue, delay: float, now: int) -> Enqueue:
    deadline = now + round(delay)
    return Enqueue(message.payload, deadline, message.keys_if_undelivered, message.backoff_schedule)


def check_sizes(write: AtomicWrite, backoff_intervals: Sequence[int] | None = None) -> None:
    """Deno's total-size limits for one write (value-carrying keys count twice). An enqueue
    counts 4 bytes per backoff interval: ``backoff_intervals`` says how many intervals each
    enqueue is charged (those its caller gave), else its whole schedule counts."""
    # Plain loops: most writes are one or two items, where generator expressions cost more.
    total = total_keys = 0
    for check in write.checks:
        total += len(check.key)
    for mutation in write.mutations:
        size = len(mutation.key)
        total += size
        if mutation.value is not None:
            total += size + len(mutation.value.data)
            total_keys += size
    for i, e in enumerate(write.enqueues):
        intervals = len(e.backoff_schedule) if backoff_intervals is None else backoff_intervals[i]
        total += len(e.payload) + 4 * intervals
    if total > limits.MAX_TOTAL_MUTATION_SIZE_BYTES:
        raise KvTypeError(
            f"Total mutation size too large (max {limits.MAX_TOTAL_MUTATION_SIZE_BYTES} bytes)"
        )
    if total_keys > limits.MAX_TOTAL_KEY_SIZE_BYTES:
        raise KvTypeError(f"Total key size too large (max {limits.MAX_TOTAL_KEY_SIZE_BYTES} bytes)")
