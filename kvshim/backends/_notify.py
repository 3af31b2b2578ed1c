"""In-process change notification: wakes watchers of keys and listeners of a queue."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager

from kvshim.model import RawEntry

Reader = Callable[[Sequence[bytes]], Awaitable[list[RawEntry | None]]]


class KeyNotifier:
    """Per-key subscriptions, woken by ``notify`` after each write that touches the key."""

    def __init__(self) -> None:
        self._subscribers: dict[bytes, set[asyncio.Event]] = {}
        self.closed = False

    @contextmanager
    def subscribe(self, keys: Sequence[bytes]) -> Iterator[asyncio.Event]:
        """An event set whenever one of ``keys`` changes, or when the notifier closes."""
        event = asyncio.Event()
        for key in keys:
            self._subscribers.setdefault(key, set()).add(event)
        try:
            yield event
        finally:
            for key in keys:
                events = self._subscribers.get(key)
                if events is not None:
                    events.discard(event)
                    if not events:
                        del self._subscribers[key]

    def notify(self, keys: Iterable[bytes]) -> None:
        """Wake the subscribers of every key in ``keys``."""
        if not self._subscribers:
            return
        for key in keys:
            for event in self._subscribers.get(key, ()):
                event.set()

    def notify_all(self) -> None:
        """Wake every subscriber (used when changes come from outside this process)."""
        for events in self._subscribers.values():
            for event in events:
                event.set()

    def close(self) -> None:
        """Wake everyone for the last time; watches end."""
        self.closed = True
        self.notify_all()


async def watch_keys(
    notifier: KeyNotifier, keys: Sequence[bytes], read: Reader
) -> AsyncGenerator[list[RawEntry | None], None]:
    """Yield the entries of ``keys`` now, then after every notification, until closed."""
    with notifier.subscribe(keys) as changed:
        while not notifier.closed:
            changed.clear()
            entries = await read(keys)
            if notifier.closed:
                return
            yield entries
            await changed.wait()


class NotifierHub:
    """Fans change notifications out to every open handle on one database in this process."""

    def __init__(self) -> None:
        self._notifiers: set[KeyNotifier] = set()

    def attach(self) -> KeyNotifier:
        """A notifier for a new handle; close it (``detach``) when the handle closes."""
        notifier = KeyNotifier()
        self._notifiers.add(notifier)
        return notifier

    def detach(self, notifier: KeyNotifier) -> None:
        """Close a handle's notifier: its watches end."""
        self._notifiers.discard(notifier)
        notifier.close()

    def notify(self, keys: Iterable[bytes]) -> None:
        """Wake the watchers of ``keys`` on every handle."""
        keys = list(keys)
        for notifier in self._notifiers:
            notifier.notify(keys)

    def notify_all(self) -> None:
        """Wake every watcher on every handle."""
        for notifier in self._notifiers:
            notifier.notify_all()
