"""Names: instances, apps, timelines and the per-timeline database names derived from them.

A timeline database is named as on Deno Deploy:

- ``production`` → ``<app>-production``
- ``git-branch/<branch>`` → ``<app>--<branch>`` (two dashes)
- ``preview`` / ``preview/<id>`` → ``<app>-preview`` (one database shared by every preview)
- ``local`` → ``<app>-local``

App and branch names are turned into *slugs* of lowercase ASCII letters, digits, ``_`` and
``-``: uppercase letters are lowered, every other character (``/``, ``.``, spaces, non-ASCII…)
becomes ``-``. Whenever that changes the name, or the name is too long, the slug gets ``-`` and
the first 8 hex digits of the SHA-256 of the original name appended (after truncating), so
``fix/foo`` → ``fix-foo-<hash>`` never collides with a branch really called ``fix-foo``. An app
slug also never contains ``--``. Database names are at most 63 bytes (Postgres identifiers and
DNS labels), and always valid ``kvshim serve`` database names.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from pathlib import Path

from kvshim.errors import KvValueError, TimelineError

MAX_NAME_BYTES = 63
MAX_APP_BYTES = 30
_SAFE = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_-")
_INSTANCE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
TIMELINE_FORMS = "'production', 'git-branch/<branch>', 'preview[/<id>]' or 'local'"


def check_instance_name(name: str) -> str:
    """``name`` if it is a valid instance name, else ``KvValueError``."""
    if not _INSTANCE.match(name):
        raise KvValueError(
            f"Invalid database name {name!r}: use 1 to 63 lowercase letters, digits, '_' or '-', "
            "starting with a letter or digit"
        )
    return name


def slug(raw: str, limit: int, *, allow_double_dash: bool = True) -> str:
    """``raw`` as a name-safe slug of at most ``limit`` bytes (see the module docstring)."""
    cleaned = "".join(c if c in _SAFE else "-" for c in raw.lower())
    if not allow_double_dash:
        cleaned = re.sub(r"-{2,}", "-", cleaned)
    if cleaned == raw and 0 < len(cleaned) <= limit and cleaned[0] != "-":
        return cleaned
    digest = hashlib.sha256(raw.encode()).hexdigest()[:8]
    head = cleaned[: limit - len(digest) - 1].strip("-")
    return f"{head}-{digest}" if head else digest


def app_slug(app: str) -> str:
    """The name an app has in the registry and in its databases' names."""
    if not app.strip():
        raise KvValueError("The app name cannot be empty")
    return slug(app.strip(), MAX_APP_BYTES, allow_double_dash=False)


def app_for_directory(directory: Path) -> str:
    """The app a project folder holds: ``[project].name`` (or ``[tool.poetry].name``) from its
    ``pyproject.toml``, else the folder's name."""
    pyproject = directory / "pyproject.toml"
    if pyproject.is_file():
        try:
            data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
            data = {}
        name = data.get("project", {}).get("name") or (
            data.get("tool", {}).get("poetry", {}).get("name")
        )
        if isinstance(name, str) and name.strip():
            return name
    return directory.resolve().name


def timeline_group(timeline: str) -> str:
    """The timeline whose database ``timeline`` uses: every preview shares ``preview``."""
    if timeline in ("production", "local", "preview"):
        return timeline
    if timeline.startswith("preview/") and len(timeline) > len("preview/"):
        return "preview"
    if timeline.startswith("git-branch/") and len(timeline) > len("git-branch/"):
        return timeline
    raise TimelineError(f"Invalid timeline {timeline!r}: expected {TIMELINE_FORMS}")


def database_name(app: str, timeline: str) -> str:
    """The database name of ``app``'s ``timeline`` (``app`` raw or already a slug)."""
    app_part = app_slug(app)
    group = timeline_group(timeline)
    if group.startswith("git-branch/"):
        branch = group.removeprefix("git-branch/")
        room = MAX_NAME_BYTES - len(app_part) - 2
        return f"{app_part}--{slug(branch, room)}"
    return f"{app_part}-{group}"


def branch_of(timeline: str) -> str | None:
    """The branch of a ``git-branch/<branch>`` timeline, else ``None``."""
    return timeline.removeprefix("git-branch/") if timeline.startswith("git-branch/") else None
