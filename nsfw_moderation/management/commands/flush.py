"""Django's ``flush``, which erases every table, append-only records included."""

from __future__ import annotations

from typing import Any

from django.core.management.commands import flush

from nsfw_moderation import append_only


class Command(flush.Command):
    # Erasing the whole database is the one deletion the records' triggers let
    # through (append_only.py): Django's test runner flushes between tests.
    def handle(self, **options: Any) -> None:
        with append_only.lifted(options["database"]):
            super().handle(**options)
