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
