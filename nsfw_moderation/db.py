"""Which database moderation writes to, and how its writes wait out a locked SQLite.

Every transaction, row lock and ``on_commit`` of the app goes through
:func:`moderation_db`, so routing ``nsfw_moderation`` to its own database
(``DATABASE_ROUTERS``) moves all of it there.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from django.db import OperationalError, connections, router, transaction

logger = logging.getLogger(__name__)

_T = TypeVar("_T")

#: Seconds to wait before each retry of a write that found SQLite locked.
LOCKED_RETRY_DELAYS = (0.01, 0.03, 0.1, 0.2, 0.3, 0.4)

#: No retry starts once the tries so far took this many seconds: each try of a
#: transaction that begins ``IMMEDIATE`` may itself wait the database's timeout.
LOCKED_PATIENCE = 10.0
#: The same for the moderation row written during an upload's ``save()``: an
#: upload must not wait for moderation (reconciliation finds a row not written).
UPLOAD_PATIENCE = 1.0


def moderation_db() -> str:
    """The alias of the database that holds the moderation rows (the router decides)."""
    from nsfw_moderation.models import ModeratedImage

    return router.db_for_write(ModeratedImage)


def is_locked(exc: BaseException) -> bool:
    """Whether ``exc`` is SQLite saying another connection holds the write lock."""
    return isinstance(exc, OperationalError) and "locked" in str(exc)


@contextmanager
def write_lock_first(using: str) -> Iterator[None]:
    """On SQLite, begin the transactions opened here ``IMMEDIATE``: write lock first.

    A deferred transaction (Django's default) that reads and then writes cannot
    wait for another writer: SQLite answers "database is locked" at once, since
    waiting could deadlock. A transaction that takes the write lock as it
    begins waits for it instead, up to the database's ``timeout``, as a single
    write does. A transaction the caller already began is left as it is, and so
    are the site's own: the connection's mode is put back on the way out.
    """
    connection = connections[using]
    if connection.vendor != "sqlite" or connection.in_atomic_block:
        yield
        return
    connection.ensure_connection()
    configured = connection.transaction_mode  # type: ignore[attr-defined]
    if configured in (None, "DEFERRED"):
        connection.transaction_mode = "IMMEDIATE"  # type: ignore[attr-defined]
    try:
        yield
    finally:
        connection.transaction_mode = configured  # type: ignore[attr-defined]


@contextmanager
def write_transaction() -> Iterator[None]:
    """``transaction.atomic`` on the moderation database, SQLite's write lock taken first."""
    using = moderation_db()
    with write_lock_first(using), transaction.atomic(using=using):
        yield


def retry_when_locked(
    write: Callable[[], _T], *, using: str | None = None, patience: float = LOCKED_PATIENCE
) -> _T:
    """Run ``write`` (whole transactions on ``using``), again while SQLite is locked.

    Its transactions take the write lock as they begin (:func:`write_lock_first`),
    so each waits up to the database's ``timeout`` for another writer. A try that
    still finds the database locked is rolled back and run again after a pause,
    until ``patience`` seconds are spent; then the error is raised.
    """
    started = time.monotonic()
    with write_lock_first(using or moderation_db()):
        for delay in LOCKED_RETRY_DELAYS:
            try:
                return write()
            except OperationalError as exc:
                if not is_locked(exc) or time.monotonic() - started > patience:
                    raise
                logger.info("The database is locked; trying again in %.2f s", delay)
                time.sleep(delay)
        return write()
