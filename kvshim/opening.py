"""``open_kv``: open a database by URL, or the process's default database."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from weakref import WeakKeyDictionary

from kvshim.backends import open_backend
from kvshim.kv import Kv

DEFAULT_URL_VARIABLE = "KVSHIM_KV_URL"
_defaults: WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Task[Kv]]] = (
    WeakKeyDictionary()
)
# The default handed out last, checked first: a request handler calls open_kv() every time.
_last: tuple[asyncio.AbstractEventLoop, str, Kv] | None = None


async def open_kv(
    url: str | os.PathLike[str] | None = None, *, environ: Mapping[str, str] = os.environ
) -> Kv:
    """Open a database.

    With ``url`` (a path, ``":memory:"``, ``sqlite:``, ``http(s)://`` or ``postgresql://``), a
    new handle on that database. Without, the process's default database: the one named by
    ``KVSHIM_KV_URL`` in ``environ`` (``kvshim run`` sets it to the timeline's database), else
    an in-memory one. The default is opened once and shared, so calling ``open_kv()`` on every
    request is cheap.
    """
    global _last
    if url is not None:
        return Kv(await open_backend(os.fspath(url), environ))
    target = environ.get(DEFAULT_URL_VARIABLE) or ":memory:"
    loop = asyncio.get_running_loop()
    last = _last
    if last is not None and last[0] is loop and last[1] == target and not last[2].closed:
        return last[2]
    opened = _defaults.setdefault(loop, {})
    task = opened.get(target)
    if task is None or (task.done() and _is_unusable(task)):
        task = asyncio.ensure_future(_open(target, environ))
        opened[target] = task
    kv = await asyncio.shield(task)
    _last = (loop, target, kv)
    return kv


async def _open(url: str, environ: Mapping[str, str]) -> Kv:
    return Kv(await open_backend(url, environ))


def _is_unusable(task: asyncio.Task[Kv]) -> bool:
    return task.cancelled() or task.exception() is not None or task.result().closed


async def close_default_kvs() -> None:
    """Close every default database that ``open_kv()`` opened on the running event loop (the
    runtime calls this on shutdown, so SQLite files are closed cleanly)."""
    global _last
    loop = asyncio.get_running_loop()
    if _last is not None and _last[0] is loop:
        _last = None
    opened = _defaults.pop(loop, {})
    for task in opened.values():
        if not task.done():
            await asyncio.wait([task])
        if not _is_unusable(task):
            await task.result().close()
