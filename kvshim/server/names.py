"""Database names: what may appear as ``<name>`` in ``http://HOST:PORT/<name>``."""

from __future__ import annotations

import re

from kvshim.errors import KvValueError

DEFAULT_DATABASE = "default"
"""The database served at the root URL (``http://HOST:PORT``), as denokv serves its one."""

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def check_name(name: str) -> str:
    """``name`` if it is a valid database name, else ``KvValueError``.

    A name is 1 to 64 ASCII letters, digits, ``_``, ``.`` and ``-``, starts with a letter or
    digit and never contains ``..``; so it is always a safe file name inside the data folder.
    """
    if not _NAME.match(name) or ".." in name:
        raise KvValueError(
            f"Invalid database name {name!r}: use 1 to 64 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit"
        )
    return name
