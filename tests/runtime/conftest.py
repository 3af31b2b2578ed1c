"""Real Git repositories in temporary folders for the runtime tests."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

GIT_ENV = {
    "GIT_AUTHOR_NAME": "kvshim tests",
    "GIT_AUTHOR_EMAIL": "tests@kvshim.invalid",
    "GIT_COMMITTER_NAME": "kvshim tests",
    "GIT_COMMITTER_EMAIL": "tests@kvshim.invalid",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}

Git = Callable[..., str]


def make_git(cwd: Path) -> Git:
    """A function running ``git ARGS`` in ``cwd`` and returning its stdout."""

    def git(*args: str, at: Path | None = None) -> str:
        done = subprocess.run(
            ["git", *args],
            cwd=at or cwd,
            env={**os.environ, **GIT_ENV},
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout.strip()

    return git


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A fresh repository on branch ``main`` with one commit."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    path = tmp_path / "repo"
    path.mkdir()
    git = make_git(path)
    git("init", "-q", "-b", "main")
    (path / "README").write_text("hello\n")
    git("add", "README")
    git("commit", "-q", "-m", "first")
    return path


@pytest.fixture
def git(repo: Path) -> Git:
    """``git(...)`` in ``repo``."""
    return make_git(repo)


@pytest.fixture
def git_at() -> Callable[[Path], Git]:
    """``make_git``: a ``git(...)`` runner for any folder."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    return make_git
