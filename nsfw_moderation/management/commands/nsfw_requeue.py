"""``manage.py nsfw_requeue``: recover rows a dead worker left behind, now."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from nsfw_moderation.conf import conf
from nsfw_moderation.worker.tasks import requeue_stale


class Command(BaseCommand):
    help = (
        "Re-queue moderated images that a worker dropped: rows stuck in 'processing' "
        "(the worker died) or left 'queued' (the broker lost the task) for longer than "
        "STALE_AFTER seconds. Rows whose worker died MAX_ATTEMPTS times are marked failed. "
        "The same job runs every few minutes as a django-q2 schedule."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--older-than",
            type=float,
            metavar="SECONDS",
            help=f"Treat rows untouched for this long as stale (default: STALE_AFTER, "
            f"now {conf.STALE_AFTER:g}).",
        )

    def handle(self, *args: Any, older_than: float | None = None, **options: Any) -> None:
        result = requeue_stale(older_than=older_than)
        if options["verbosity"] < 1:
            return
        self.stdout.write(
            f"Re-queued {result['requeued']} stuck row(s), enqueued {result['enqueued']} "
            f"row(s) in all, failed {result['failed']} row(s) that kept killing workers."
        )
