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

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.db import connections

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

#: The PostgreSQL setting that :func:`lifted` turns off for its session.
PG_SETTING = "nsfw_moderation.append_only"

_lifted: ContextVar[bool] = ContextVar("nsfw_moderation_append_only_lifted", default=False)


def enforced() -> int:
    """1 while the triggers hold (SQLite asks this), 0 inside :func:`lifted`."""
    return 0 if _lifted.get() else 1


@contextmanager
def lifted(using: str = "default") -> Iterator[None]:
    """Let the code inside change or delete append-only records on ``using``.

    For ``flush`` and data migrations only: nothing else has a reason to.
    """
    connection = connections[using]
    token = _lifted.set(True)
    try:
        if connection.vendor == "postgresql":
            _set_pg(connection, "off")
        yield
    finally:
        if connection.vendor == "postgresql":
            _set_pg(connection, "on")
        _lifted.reset(token)


def _set_pg(connection: Any, value: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config(%s, %s, false)", [PG_SETTING, value])


def register_sqlite_function(sender: Any, connection: Any, **kwargs: Any) -> None:
    """``connection_created`` receiver: give each SQLite connection what the triggers ask."""
    if connection.vendor == "sqlite":
        connection.connection.create_function("nsfw_moderation_append_only", 0, enforced)
