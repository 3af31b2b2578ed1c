"""The result types users see: entries, commit results, checks, and the versionstamp marker."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from kvshim.keys import Key


@dataclass(frozen=True, slots=True)
class KvEntry:
    """A key with its value and the versionstamp of its last write; ``value`` and
    ``versionstamp`` are ``None`` when the key does not exist."""

    key: Key
    value: Any
    versionstamp: str | None


_new_object = object.__new__
_set_key = KvEntry.__dict__["key"].__set__
_set_value = KvEntry.__dict__["value"].__set__
_set_versionstamp = KvEntry.__dict__["versionstamp"].__set__


def make_entry(key: Key, value: Any, versionstamp: str | None) -> KvEntry:
    """``KvEntry(key, value, versionstamp)`` in half the time: the frozen ``__init__`` goes
    through ``object.__setattr__`` per field; this fills the slots directly (reads build one
    entry per key read or listed)."""
    entry: KvEntry = _new_object(KvEntry)
    _set_key(entry, key)
    _set_value(entry, value)
    _set_versionstamp(entry, versionstamp)
    return entry


@dataclass(frozen=True, slots=True)
class CommitResult:
    """The outcome of a write: ``ok`` with the write's versionstamp, or ``ok=False`` (and no
    versionstamp) when a check failed."""

    ok: bool
    versionstamp: str | None = None

    def __bool__(self) -> bool:
        return self.ok


@dataclass(frozen=True, slots=True)
class AtomicCheck:
    """Require ``key`` to be at ``versionstamp`` (``None``: to not exist) for a write to apply."""

    key: Key | list[Any]
    versionstamp: str | None


class _CommitVersionstamp:
    __slots__ = ()

    def __repr__(self) -> str:
        return "COMMIT_VERSIONSTAMP"


COMMIT_VERSIONSTAMP: Final = _CommitVersionstamp()
"""As the last part of a ``set`` key, replaced by the commit's versionstamp (a 20-hex string)."""
