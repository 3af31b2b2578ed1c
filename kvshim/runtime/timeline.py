"""Work out the current timeline: ``production``, ``git-branch/<name>``, ``preview/<commit>`` or
``local``, the way Deno Deploy names them.

Local runs never map to ``production``: on the production branch they are
``git-branch/<branch>``. Only a deployed run on the production branch (or a deployed run
without Git metadata, as in most container images) is ``production``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import git

from kvshim.errors import TimelineError

TimelineKind = Literal["production", "branch", "preview", "local"]

TIMELINE_VARIABLE = "KVSHIM_TIMELINE"
DEPLOYED_VARIABLE = "KVSHIM_DEPLOYED"
PRODUCTION_BRANCH_VARIABLE = "KVSHIM_PRODUCTION_BRANCH"
_TRUE = frozenset({"1", "true", "yes", "on"})
_REBASE_DIRS = ("rebase-merge", "rebase-apply")


@dataclass(frozen=True, slots=True)
class Timeline:
    """One timeline: its Deno-style name (``git-branch/feature/x``) and kind."""

    name: str
    kind: TimelineKind

    @classmethod
    def parse(cls, name: str) -> Timeline:
        """The timeline a name such as ``git-branch/x`` denotes; raises ``TimelineError``."""
        if name == "production":
            return cls(name, "production")
        if name == "local":
            return cls(name, "local")
        if name.startswith("git-branch/") and len(name) > len("git-branch/"):
            return cls(name, "branch")
        if name.startswith("preview/") and len(name) > len("preview/"):
            return cls(name, "preview")
        raise TimelineError(
            f"Invalid timeline {name!r}: expected 'production', 'local', "
            "'git-branch/<branch>' or 'preview/<commit>'"
        )


@dataclass(frozen=True, slots=True)
class TimelineSettings:
    """What decides the timeline besides the repository: an explicit override, whether this
    is a deployed run, and which branch is production there."""

    override: str | None = None
    deployed: bool = False
    production_branch: str = "main"

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> TimelineSettings:
        """Read ``KVSHIM_TIMELINE``, ``KVSHIM_DEPLOYED`` and ``KVSHIM_PRODUCTION_BRANCH``."""
        return cls(
            override=environ.get(TIMELINE_VARIABLE) or None,
            deployed=environ.get(DEPLOYED_VARIABLE, "").strip().lower() in _TRUE,
            production_branch=environ.get(PRODUCTION_BRANCH_VARIABLE) or "main",
        )


def detect_timeline(cwd: str | os.PathLike[str], environ: Mapping[str, str]) -> Timeline:
    """The timeline of the project at ``cwd``, with the settings that ``environ`` holds."""
    return resolve_timeline(cwd, TimelineSettings.from_environ(environ))


def resolve_timeline(cwd: str | os.PathLike[str], settings: TimelineSettings) -> Timeline:
    """The timeline of the project at ``cwd`` under explicit ``settings``."""
    if settings.override:
        return Timeline.parse(settings.override)
    head = read_head(cwd)
    if head is None:
        return (
            Timeline("production", "production")
            if settings.deployed
            else Timeline("local", "local")
        )
    kind, name = head
    if kind == "preview":
        return Timeline(f"preview/{name}", "preview")
    if settings.deployed and name == settings.production_branch:
        return Timeline("production", "production")
    return Timeline(f"git-branch/{name}", "branch")


def read_head(cwd: str | os.PathLike[str]) -> tuple[Literal["branch", "preview"], str] | None:
    """``("branch", name)`` or ``("preview", commit)`` for the repository holding ``cwd``, or
    ``None`` outside a repository. During a rebase, the branch being rebased."""
    repo = open_repo(cwd)
    if repo is None:
        return None
    with repo:
        rebasing = _rebasing_branch(Path(repo.git_dir))
        if rebasing is not None:
            return "branch", rebasing
        if not repo.head.is_detached:
            return "branch", repo.head.reference.name
        try:
            return "preview", repo.head.commit.hexsha
        except ValueError as error:  # HEAD names a commit that does not exist
            raise TimelineError(f"Cannot read HEAD in {repo.git_dir}: {error}") from error


def open_repo(cwd: str | os.PathLike[str]) -> git.Repo | None:
    """The Git repository (or worktree) holding ``cwd``, or ``None``."""
    try:
        return git.Repo(cwd, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        return None


def git_dir(cwd: str | os.PathLike[str]) -> Path | None:
    """The directory holding this checkout's ``HEAD`` (``.git``, or for a worktree the
    ``worktrees/<name>`` directory that its ``.git`` file points to); ``None`` outside Git."""
    repo = open_repo(cwd)
    if repo is None:
        return None
    with repo:
        return Path(repo.git_dir).resolve()


def _rebasing_branch(directory: Path) -> str | None:
    for name in _REBASE_DIRS:
        try:
            ref = (directory / name / "head-name").read_text(encoding="utf-8").strip()
        except OSError:
            continue
        if ref.startswith("refs/heads/"):
            return ref.removeprefix("refs/heads/")
    return None
