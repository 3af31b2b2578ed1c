"""kvshim's exceptions: one root, ``KvError``, and one class per kind of failure.

Each class also derives from the Python built-in that matches Deno's error class, so
``except TypeError`` catches what Deno would throw as a ``TypeError``. Messages are Deno's own
text wherever Deno has one.
"""

from __future__ import annotations


class KvError(Exception):
    """Root of every error kvshim raises."""


class KvTypeError(KvError, TypeError):
    """Invalid input where Deno throws a ``TypeError`` (keys, values, limits, selectors…)."""


class KvValueError(KvError, ValueError):
    """Invalid option where Deno throws a plain ``Error`` (list ``limit``, ``batch_size``…)."""


class KvRangeError(KvError, ValueError):
    """Out-of-range number where Deno throws a ``RangeError`` (``KvU64``, undecodable value)."""


class KvClosedError(KvError, RuntimeError):
    """The database was used after ``close()`` (Deno: ``BadResource: Bad resource ID``)."""

    def __init__(self, message: str = "Bad resource ID") -> None:
        super().__init__(message)


class QueueClosedError(KvError, RuntimeError):
    """``listen_queue`` on a closed database (Deno: ``Error: Queue already closed``)."""

    def __init__(self, message: str = "Queue already closed") -> None:
        super().__init__(message)


class KvStateError(KvError, RuntimeError):
    """An operation that is not possible in the current state (cursor before iteration…)."""


class BackendError(KvError, OSError):
    """The storage behind a database failed or could not be opened."""


class ProtocolError(KvError, ValueError):
    """A malformed or unsupported message on the KV Connect wire."""


class TimelineError(KvError, RuntimeError):
    """The current timeline or its database could not be determined."""


class AppLoadError(KvError, ImportError):
    """The application given to ``kvshim run`` could not be loaded."""


class RegistryError(KvError, OSError):
    """The database registry or the data folder is missing, unreadable or corrupt."""


class DatabaseNotFoundError(KvError, LookupError):
    """No database instance, assignment or timeline database by that name."""


class RefusedError(KvError, RuntimeError):
    """An operation was refused because it would lose data without explicit confirmation."""


class BackupFormatError(KvError, ValueError):
    """A backup file that is not in kvshim's backup format, or is truncated."""


class DatabaseExistsError(KvError, FileExistsError):
    """A database instance by that name (or at that location) already exists."""


class ServeError(KvError, OSError):
    """``kvshim run`` could not listen on the address it was given."""
