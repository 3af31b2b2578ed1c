"""File-system watchers feeding the runtime's one event loop: ``CodeChanged`` when project
source files change, ``HeadChanged`` when Git replaces ``HEAD``.

Git never modifies ``HEAD`` in place: it writes ``HEAD.lock`` and renames it over ``HEAD``, so
moved and created events whose destination is ``HEAD`` count, not only modifications. The Git
directory is the checkout's own (for a worktree, ``worktrees/<name>`` in the common directory).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from watchdog.events import (
    DirCreatedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver

IGNORED_DIRS = frozenset(
    {
        ".git", ".hg", ".svn", ".kvshim", "__pycache__", ".venv", "venv", ".env", "env",
        ".tox", ".nox", ".mypy_cache", ".pytest_cache", ".ruff_cache", ".hypothesis",
        "node_modules", ".eggs", "build", "dist", ".idea", ".vscode",
    }
)  # fmt: skip
SOURCE_SUFFIXES = frozenset({".py"})
DEBOUNCE_SECONDS = 0.15


@dataclass(frozen=True, slots=True)
class CodeChanged:
    """Source files of the project changed."""

    paths: tuple[Path, ...]


@dataclass(frozen=True, slots=True)
class HeadChanged:
    """Git replaced ``HEAD``: the branch (and so the timeline) may have changed."""


WatchEvent = CodeChanged | HeadChanged


def is_ignored_dir(path: Path) -> bool:
    """Whether changes under the folder ``path`` never matter: VCS metadata, virtualenvs,
    caches, build output and ``.kvshim`` itself."""
    return (
        path.name in IGNORED_DIRS
        or path.name.endswith(".egg-info")
        or (path / "pyvenv.cfg").exists()
    )


def is_source_change(
    path: Path, project_dir: Path, suffixes: frozenset[str] = SOURCE_SUFFIXES
) -> bool:
    """Whether ``path`` is a source file of the project outside every ignored folder."""
    if path.suffix not in suffixes:
        return False
    try:
        relative = path.relative_to(project_dir)
    except ValueError:
        return False
    return not any(part in IGNORED_DIRS or part.endswith(".egg-info") for part in relative.parts)


class _Bridge(FileSystemEventHandler):
    """Runs in watchdog's thread; hands interesting paths to the event loop."""

    def __init__(self, watcher: ProjectWatcher) -> None:
        self._watcher = watcher

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in ("opened", "closed_no_write"):
            return
        paths = [event.src_path, getattr(event, "dest_path", "")]
        for raw in paths:
            if raw:
                path = Path(raw if isinstance(raw, str) else raw.decode())
                self._watcher.notice(path, is_dir_created=isinstance(event, DirCreatedEvent))


class ProjectWatcher:
    """Watches the project's source files and the Git ``HEAD`` of its checkout; ``events()``
    yields debounced ``CodeChanged`` / ``HeadChanged`` on the event loop."""

    def __init__(
        self,
        project_dir: Path,
        git_dir: Path | None,
        *,
        watch_code: bool = True,
        debounce: float = DEBOUNCE_SECONDS,
        suffixes: frozenset[str] = SOURCE_SUFFIXES,
    ) -> None:
        self.project_dir = project_dir.resolve()
        self.git_dir = git_dir.resolve() if git_dir is not None else None
        self._watch_code = watch_code
        self._debounce = debounce
        self._suffixes = suffixes
        self._loop: asyncio.AbstractEventLoop | None = None
        self._changed: set[Path] = set()
        self._head_changed = False
        self._wakeup = asyncio.Event()
        self._observer: BaseObserver | None = None
        self._handler = _Bridge(self)

    def start(self) -> None:
        """Start watching (call from the event loop)."""
        self._loop = asyncio.get_running_loop()
        observer = Observer()
        self._observer = observer
        if self._watch_code:
            for directory, recursive in self._code_dirs():
                observer.schedule(self._handler, str(directory), recursive=recursive)
        if self.git_dir is not None:
            observer.schedule(self._handler, str(self.git_dir), recursive=False)
        observer.daemon = True
        observer.start()

    def _code_dirs(self) -> Iterable[tuple[Path, bool]]:
        # The root alone, then each top-level folder recursively: ignored folders such as a
        # virtualenv are never walked, which keeps start-up fast and inotify watches few.
        yield self.project_dir, False
        for child in sorted(self.project_dir.iterdir()):
            if child.is_dir() and not child.is_symlink() and not is_ignored_dir(child):
                yield child, True

    def stop(self) -> None:
        """Stop watching."""
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
            self._observer = None

    def notice(self, path: Path, *, is_dir_created: bool = False) -> None:
        """Record a change to ``path`` (thread-safe; called from watchdog's thread)."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._record, path, is_dir_created)

    def _record(self, path: Path, is_dir_created: bool) -> None:
        if self.git_dir is not None and path.parent == self.git_dir and path.name == "HEAD":
            self._head_changed = True
        elif is_dir_created and self._watch_code and path.parent == self.project_dir:
            self._watch_new_dir(path)
        elif self._watch_code and is_source_change(path, self.project_dir, self._suffixes):
            self._changed.add(path)
        else:
            return
        self._wakeup.set()

    def _watch_new_dir(self, path: Path) -> None:
        if self._observer is None or is_ignored_dir(path):
            return
        self._observer.schedule(self._handler, str(path), recursive=True)
        self._changed.update(p for p in path.rglob("*") if p.suffix in self._suffixes)

    async def next_event(self) -> WatchEvent:
        """The next change, after changes have been quiet for the debounce interval. A HEAD
        change comes first when both happened."""
        while True:
            if not (self._head_changed or self._changed):
                self._wakeup.clear()
                await self._wakeup.wait()
            await self._quiet()
            if self._head_changed:
                self._head_changed = False
                return HeadChanged()
            if self._changed:
                changed, self._changed = self._changed, set()
                return CodeChanged(tuple(sorted(changed)))

    async def _quiet(self) -> None:
        while True:
            self._wakeup.clear()
            try:
                await asyncio.wait_for(self._wakeup.wait(), self._debounce)
            except TimeoutError:
                return
