"""Which driver failures are worth a retry, and the clear ``BackendError`` for the others."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg

from kvshim.errors import BackendError

logger = logging.getLogger("kvshim.postgres")

T = TypeVar("T")

RETRY_WINDOW_S = 15.0
"""How long an operation keeps retrying while the server is unreachable (e.g. restarting)."""

_TRANSIENT: tuple[type[BaseException], ...] = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,  # admin shutdown, crash recovery
    asyncpg.exceptions.CannotConnectNowError,  # the server is starting up
    asyncpg.exceptions.InterfaceError,  # "connection is closed"
    # A connection whose server went away mid-operation can be left in a state where the next
    # operation fails with "another operation is in progress"; it is discarded and retried.
    asyncpg.exceptions.InternalClientError,
    asyncpg.exceptions.SerializationError,
    asyncpg.exceptions.DeadlockDetectedError,
)


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` means "try again on another connection"."""
    return isinstance(exc, _TRANSIENT)


async def retrying(operation: Callable[[], Awaitable[T]], what: str) -> T:
    """Run ``operation``, retrying transient failures with backoff for ``RETRY_WINDOW_S``.

    ``operation`` must be safe to repeat even if an attempt committed before its connection
    broke: writes carry an idempotency token (see ``writes.batch_arguments``).
    """
    loop = asyncio.get_running_loop()
    give_up = loop.time() + RETRY_WINDOW_S
    delay = 0.05
    while True:
        try:
            return await operation()
        except Exception as exc:
            if not is_transient(exc):
                error = translate(exc, what)
                if error is exc:
                    raise
                raise error from exc
            if loop.time() + delay > give_up:
                raise BackendError(f"PostgreSQL is unreachable during {what}: {exc}") from exc
            logger.warning("PostgreSQL %s failed (%s); retrying", what, exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)


def translate(exc: BaseException, what: str) -> BaseException:
    """A ``BackendError`` saying what went wrong, or ``exc`` itself if it is not the driver's."""
    if not isinstance(exc, _DRIVER_ERRORS):
        return exc
    if isinstance(exc, asyncpg.exceptions.InsufficientPrivilegeError):
        return BackendError(f"Permission denied in PostgreSQL during {what}: {exc}")
    if isinstance(exc, asyncpg.exceptions.InvalidCatalogNameError):
        return BackendError(f"PostgreSQL database does not exist: {exc}")
    if isinstance(exc, asyncpg.exceptions.InvalidAuthorizationSpecificationError):
        return BackendError(f"PostgreSQL authentication failed: {exc}")
    return BackendError(f"PostgreSQL error during {what}: {exc}")


_DRIVER_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, *_TRANSIENT)
