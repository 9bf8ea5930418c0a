"""``manage.py nsfw_statements``: statements of reasons of a period, for the EU database."""

from __future__ import annotations

import datetime
import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from nsfw_moderation.models import Statement
from nsfw_moderation.transparency import bodies


def day(value: str) -> datetime.date:
    try:
        return datetime.date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"Not a date (YYYY-MM-DD): {value!r}") from None


class Command(BaseCommand):
    help = (
        "Print the statements of reasons written from --since to --until (dates, UTC, both "
        "included) for the EU DSA Transparency Database's bulk endpoint: JSON Lines, each line "
        'one request body, {"statements": [...]}, of at most 100 statements. Never includes '
        "images, hashes, file names or internal notes. nsfw_submit_statements sends them."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--since", type=day, required=True, metavar="YYYY-MM-DD")
        parser.add_argument("--until", type=day, required=True, metavar="YYYY-MM-DD")

    def handle(
        self, *args: Any, since: datetime.date, until: datetime.date, **options: Any
    ) -> None:
        start = datetime.datetime.combine(since, datetime.time(), datetime.UTC)
        end = datetime.datetime.combine(
            until + datetime.timedelta(days=1), datetime.time(), datetime.UTC
        )
        statements = Statement.objects.filter(created_at__gte=start, created_at__lt=end).order_by(
            "created_at", "pk"
        )
        for body in bodies(statements.iterator()):
            self.stdout.write(json.dumps(body, ensure_ascii=False))
