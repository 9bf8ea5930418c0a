"""Append-only records, enforced by the database: what its triggers ask, and the one way past them.

Migration ``0011_append_only`` puts triggers on the tables of moderation
events, statements of reasons, appeals and appeal outcomes. They refuse every
``DELETE``, and every ``UPDATE`` but one that sets a foreign key to ``NULL``
(Django's ``SET_NULL``, when the row, user or event it points to is deleted).
So they hold whatever code runs: ``save()`` of a copy, ``bulk_create(...,
update_conflicts=True)``, ``_base_manager.update()``, raw SQL. A refused write
raises :class:`django.db.IntegrityError`.

Two things lift them, for the current thread and connection only:
``manage.py flush``, which erases the whole database (Django's test runner
flushes between transactional tests), and a data migration that wraps its work
in :func:`lifted`. On SQLite the triggers ask the connection's function
``nsfw_moderation_append_only()``, which :func:`register_sqlite_function` adds
to every connection; a connection without it (another program) is refused.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.db import connections, transaction

#: The guarded tables, and the foreign keys that Django may set to ``NULL`` there.
TABLES: dict[str, tuple[str, ...]] = {
    "nsfw_moderation_moderationevent": ("image_id", "content_type_id", "actor_id"),
    "nsfw_moderation_statement": (
        "image_id",
        "event_id",
        "content_type_id",
        "decided_by_id",
        "owner_id",
    ),
    "nsfw_moderation_appeal": ("owner_id",),
    "nsfw_moderation_appealoutcome": ("decided_by_id", "event_id"),
}

#: The PostgreSQL setting that :func:`lifted` turns off for its transaction.
PG_SETTING = "nsfw_moderation.append_only"

# The database aliases lifted in this thread (or task).
_lifted: ContextVar[frozenset[str]] = ContextVar(
    "nsfw_moderation_append_only_lifted", default=frozenset()
)


def enforced(alias: str) -> int:
    """1 while the triggers hold on ``alias`` (SQLite asks this), 0 inside :func:`lifted`."""
    return 0 if alias in _lifted.get() else 1


@contextmanager
def lifted(using: str = "default") -> Iterator[None]:
    """Let the code inside change or delete append-only records on ``using``, atomically.

    For ``flush`` and data migrations only: nothing else has a reason to. It
    runs in a transaction of its own (a savepoint inside another one); on
    PostgreSQL the switch is local to that transaction, so it ends with it,
    nested or not, and never stays on a pooled connection.
    """
    connection = connections[using]
    token = _lifted.set(_lifted.get() | {using})
    try:
        with transaction.atomic(using=using):
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute("SELECT set_config(%s, 'off', true)", [PG_SETTING])
            yield
    finally:
        _lifted.reset(token)


def register_sqlite_function(sender: Any, connection: Any, **kwargs: Any) -> None:
    """``connection_created`` receiver: give each SQLite connection what the triggers ask."""
    if connection.vendor == "sqlite":
        ask = functools.partial(enforced, connection.alias)
        connection.connection.create_function("nsfw_moderation_append_only", 0, ask)
