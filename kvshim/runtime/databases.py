"""Which database a timeline uses.

- Local, default: the process-wide in-memory database ``memory:<timeline>``; it lives as long
  as ``kvshim run`` does, across code reloads and branch switches.
- Local with ``persist``: a SQLite file per timeline under ``.kvshim/`` in the project. The file
  name comes from :func:`timeline_slug`.
- Deployed: the database given explicitly (``--database`` / ``KVSHIM_DATABASE``); there is no
  fallback, because a deployed app silently writing to memory loses its data.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from kvshim.errors import TimelineError
from kvshim.runtime.timeline import Timeline

DATA_DIR_NAME = ".kvshim"
MAX_SLUG_BYTES = 120
_UNSAFE = re.compile(r"[^a-z0-9._-]")

NO_DEPLOYED_DATABASE = (
    "A deployed run needs a persistent database, and none is attached. Attach one with "
    "--database URL (or KVSHIM_DATABASE=URL), e.g. --database /var/lib/app/kv.sqlite3 or "
    "--database https://kv.example.com (KV Connect). Refusing to start: an in-memory database "
    "would lose every write when the process stops."
)


@dataclass(frozen=True, slots=True)
class DatabaseSettings:
    """Where timelines keep their data."""

    project_dir: Path
    persist: bool = False
    deployed: bool = False
    database: str | None = None

    @property
    def data_dir(self) -> Path:
        """The folder holding per-timeline SQLite files (``<project>/.kvshim``)."""
        return self.project_dir / DATA_DIR_NAME


def database_url_for(timeline: Timeline, settings: DatabaseSettings) -> str:
    """The database URL for ``timeline``; raises ``TimelineError`` for a deployed run
    without a database."""
    if settings.database:
        return settings.database
    if settings.deployed:
        raise TimelineError(NO_DEPLOYED_DATABASE)
    if settings.persist:
        return str(settings.data_dir / f"{timeline_slug(timeline.name)}.sqlite3")
    return f"memory:{timeline.name}"


def timeline_slug(name: str) -> str:
    """A file-name-safe, collision-free form of a timeline name.

    Each ``/`` becomes ``--``; letters are lower-cased; any other character outside
    ``[a-z0-9._-]`` becomes ``_``; a leading ``.`` becomes ``_``. Whenever that changed the name,
    ``-`` and the first 8 hex digits of the SHA-256 of the raw name are appended, so
    ``fix/foo``, ``fix--foo`` and ``Fix/Foo`` never share a file (also on case-insensitive file
    systems). The result is at most ``MAX_SLUG_BYTES`` bytes.
    ``git-branch/feat/x`` -> ``git-branch--feat--x-<hash>``; ``local`` -> ``local``.
    """
    slug = _UNSAFE.sub("_", name.replace("/", "--").lower())
    if slug.startswith("."):
        slug = "_" + slug[1:]
    if slug == name and len(slug) <= MAX_SLUG_BYTES:
        return slug
    digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:8]
    return f"{slug[: MAX_SLUG_BYTES - len(digest) - 1]}-{digest}"


def prepare_data_dir(settings: DatabaseSettings) -> None:
    """Create ``.kvshim/`` with a ``.gitignore`` of ``*`` when ``persist`` needs it."""
    if not settings.persist or settings.database:
        return
    directory = settings.data_dir
    try:
        directory.mkdir(parents=True, exist_ok=True)
        ignore = directory / ".gitignore"
        if not ignore.exists():
            ignore.write_text("# kvshim's per-timeline databases: never commit them\n*\n")
    except OSError as error:
        raise TimelineError(f"Cannot create the data folder {directory}: {error}") from error
