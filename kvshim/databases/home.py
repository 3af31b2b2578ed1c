"""Where kvshim keeps its database registry: the user's data folder."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

HOME_VARIABLE = "KVSHIM_HOME"
REGISTRY_FILE = "registry.sqlite3"
INSTANCES_DIR = "instances"


def data_home(environ: Mapping[str, str]) -> Path:
    """``$KVSHIM_HOME``, else ``$XDG_DATA_HOME/kvshim``, else ``~/.local/share/kvshim``."""
    if environ.get(HOME_VARIABLE):
        return Path(environ[HOME_VARIABLE]).expanduser().absolute()
    if environ.get("XDG_DATA_HOME"):
        return Path(environ["XDG_DATA_HOME"]).expanduser().absolute() / "kvshim"
    user_home = environ.get("HOME")
    base = Path(user_home) if user_home else Path.home()
    return base / ".local" / "share" / "kvshim"
