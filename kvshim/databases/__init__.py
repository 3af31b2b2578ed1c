"""Database instances and their per-timeline databases (``kvshim db ...``).

from kvshim.databases import Databases
dbs = Databases()                       # the registry in $KVSHIM_HOME / the data folder
dbs.provision("main-kv")                # a folder of SQLite files, one per timeline
dbs.assign("main-kv", app="shop")
url = dbs.database_url_for("shop", "git-branch/feature/x")
"""

from __future__ import annotations

from kvshim.databases.api import (
    Databases,
    DatabaseStatus,
    InstanceStatus,
    resolve_run_database,
    verify_token,
)
from kvshim.databases.home import data_home
from kvshim.databases.naming import app_for_directory, database_name

__all__ = [
    "DatabaseStatus",
    "Databases",
    "InstanceStatus",
    "app_for_directory",
    "data_home",
    "database_name",
    "resolve_run_database",
    "verify_token",
]
