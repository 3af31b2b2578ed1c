"""``RunConfig``: everything ``kvshim run`` needs, built once by the CLI."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kvshim.runtime.databases import DatabaseSettings
from kvshim.runtime.timeline import TimelineSettings

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000


@dataclass(frozen=True, slots=True)
class RunConfig:
    """How to run one app: what to load, where to listen, how to pick its database."""

    app: str
    project_dir: Path
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    reload: bool = True
    persist: bool = False
    database: str | None = None
    use_assigned: bool = False
    timeline: TimelineSettings = TimelineSettings()

    @property
    def databases(self) -> DatabaseSettings:
        """The database settings derived from this configuration."""
        return DatabaseSettings(
            project_dir=self.project_dir,
            persist=self.persist,
            deployed=self.timeline.deployed,
            database=self.database,
        )

    @property
    def follows_branches(self) -> bool:
        """Whether a branch switch can change the timeline while running (not when the
        timeline is fixed by an override, nor in deployed runs)."""
        return not self.timeline.override and not self.timeline.deployed
