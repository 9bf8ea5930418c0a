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
