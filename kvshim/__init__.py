"""kvshim: Deno KV for Python, with one database per timeline.

In an ``async`` function::

    import kvshim
    kv = await kvshim.open_kv()
    await kv.set(["users", 1], {"name": "Ada"})
    entry = await kv.get(["users", 1])
"""

from __future__ import annotations

from kvshim.atomic import AtomicOperation
from kvshim.entries import COMMIT_VERSIONSTAMP, AtomicCheck, CommitResult, KvEntry
from kvshim.errors import (
    AppLoadError,
    BackendError,
    KvClosedError,
    KvError,
    KvRangeError,
    KvStateError,
    KvTypeError,
    KvValueError,
    ProtocolError,
    QueueClosedError,
    TimelineError,
)
from kvshim.keys import Key, KeyPart
from kvshim.kv import Kv
from kvshim.listing import KvListIterator
from kvshim.opening import open_kv
from kvshim.values import BigInt, KvU64

__version__ = "0.1.0"

__all__ = [
    "COMMIT_VERSIONSTAMP",
    "AppLoadError",
    "AtomicCheck",
    "AtomicOperation",
    "BackendError",
    "BigInt",
    "CommitResult",
    "Key",
    "KeyPart",
    "Kv",
    "KvClosedError",
    "KvEntry",
    "KvError",
    "KvListIterator",
    "KvRangeError",
    "KvStateError",
    "KvTypeError",
    "KvU64",
    "KvValueError",
    "ProtocolError",
    "QueueClosedError",
    "TimelineError",
    "__version__",
    "open_kv",
]
