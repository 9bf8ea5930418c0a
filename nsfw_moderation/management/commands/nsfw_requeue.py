"""``manage.py nsfw_requeue``: the periodic maintenance, now: dropped rows, files without rows."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from nsfw_moderation import reconcile
from nsfw_moderation.conf import conf
from nsfw_moderation.worker.outcomes import requeue_stale


class Command(BaseCommand):
    help = (
        "Re-queue moderated images that a worker dropped: rows stuck in 'processing' "
        "(the worker died) or left 'queued' (the broker lost the task) for longer than "
        "STALE_AFTER seconds. Rows whose worker died MAX_ATTEMPTS times are marked failed "
        "and flagged. Then reconcile: queue moderated files that have no current row "
        "(RECONCILE_BATCH objects, resuming where the last run stopped; --full for all). "
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
        parser.add_argument(
            "--full",
            action="store_true",
            help="Reconcile every moderated file now, not one slice.",
        )

    def handle(self, *args: Any, older_than: float | None = None, **options: Any) -> None:
        result = requeue_stale(older_than=older_than)
        found = reconcile.reconcile(budget=0 if options["full"] else None)
        if options["verbosity"] < 1:
            return
        self.stdout.write(
            f"Re-queued {result['requeued']} stuck row(s), enqueued {result['enqueued']} "
            f"row(s) in all, failed {result['failed']} row(s) that kept killing workers."
        )
        self.stdout.write(
            f"Reconciled {found['checked']} object(s): {found['found']} file(s) without a "
            "current row queued."
        )
