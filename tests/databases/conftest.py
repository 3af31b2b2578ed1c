"""Fixtures for ``kvshim db``: a fresh data folder per test and a way to run the real CLI."""

from __future__ import annotations

import json
import os
import secrets
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from kvshim.cli import main

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Cli:
    """The real ``kvshim`` CLI, in this process, with ``KVSHIM_HOME`` set to a temp folder."""

    home: Path
    cwd: Path

    def __call__(self, *args: str, code: int | None = 0) -> Result:
        runner = CliRunner()
        old = Path.cwd()
        os.chdir(self.cwd)
        try:
            result = runner.invoke(main, ["db", *args], env={"KVSHIM_HOME": str(self.home)})
        finally:
            os.chdir(old)
        if code is not None:
            assert result.exit_code == code, (result.output, result.exception)
        return result

    def json(self, *args: str, code: int | None = 0) -> Any:
        return json.loads(self(*args, "--json", code=code).stdout)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def cli(home: Path, tmp_path: Path) -> Cli:
    project = tmp_path / "project"
    project.mkdir()
    return Cli(home, project)


@pytest.fixture
def instance_name() -> str:
    """A unique instance name: ``memory:`` instances are process-wide."""
    return f"m-{secrets.token_hex(4)}"


def subprocess_env(home: Path) -> dict[str, str]:
    env = dict(os.environ, KVSHIM_HOME=str(home), PYTHONPATH=str(REPO_ROOT))
    return env


def kvshim_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "kvshim", "db", *args]


RunCli = Callable[..., Result]
