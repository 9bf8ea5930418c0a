"""Which database moderation writes to, and retries when SQLite is briefly locked.

Every transaction, row lock and ``on_commit`` of the app goes through
:func:`moderation_db`, so routing ``nsfw_moderation`` to its own database
(``DATABASE_ROUTERS``) moves all of it there.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from django.db import OperationalError, router

logger = logging.getLogger(__name__)

_T = TypeVar("_T")

#: Seconds to wait before each retry of a write that found SQLite locked.
LOCKED_RETRY_DELAYS = (0.01, 0.03, 0.1, 0.2, 0.3, 0.4)


def moderation_db() -> str:
    """The alias of the database that holds the moderation rows (the router decides)."""
    from nsfw_moderation.models import ModeratedImage

    return router.db_for_write(ModeratedImage)


def is_locked(exc: BaseException) -> bool:
    """Whether ``exc`` is SQLite saying another connection holds the write lock."""
    return isinstance(exc, OperationalError) and "locked" in str(exc)


def retry_when_locked(write: Callable[[], _T]) -> _T:
    """Run ``write`` (a whole transaction), again after a pause while SQLite is locked.

    A deferred SQLite transaction that reads and then writes gets "database is
    locked" at once, without waiting, when another connection is writing: the
    transaction must be rolled back and run again, which is what this does.
    """
    for delay in LOCKED_RETRY_DELAYS:
        try:
            return write()
        except OperationalError as exc:
            if not is_locked(exc):
                raise
            logger.info("The database is locked; trying again in %.2f s", delay)
            time.sleep(delay)
    return write()
