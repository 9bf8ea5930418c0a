"""An ``OWNER`` callable for the tests: a photo belongs to the user named by its title."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.core.mail.backends.base import BaseEmailBackend


def owner_of(obj: Any) -> User | None:
    return User.objects.filter(username=getattr(obj, "title", None)).first()


def broken_owner(obj: Any) -> User | None:
    raise RuntimeError("the host's owner lookup is broken")


class BrokenEmailBackend(BaseEmailBackend):
    def send_messages(self, email_messages: Any) -> int:
        raise ConnectionRefusedError("no mail server")


def owner_from_a_broken_query(obj: Any) -> User | None:
    """An ``OWNER`` whose query fails in the database (a missing table, a statement timeout)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM no_such_table_for_owner")
    return None


def owner_before_colon(obj: Any) -> User | None:
    """A photo titled ``"alice: beach"`` belongs to ``alice``: titles that read as names."""
    username = str(getattr(obj, "title", "")).partition(":")[0]
    return User.objects.filter(username=username).first()
