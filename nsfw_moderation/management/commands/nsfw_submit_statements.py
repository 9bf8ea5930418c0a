"""``manage.py nsfw_submit_statements``: send the statements not yet accepted to the EU database."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from nsfw_moderation.transparency import Retrying, SubmissionError, submit


class Command(BaseCommand):
    help = (
        "Send every statement of reasons the EU DSA Transparency Database has not accepted yet "
        "to its bulk endpoint (TRANSPARENCY_API_URL), 100 per call, with the API token "
        "(TRANSPARENCY_API_TOKEN or the DSA_TRANSPARENCY_API_TOKEN environment variable). A "
        "busy or failing server is retried with exponential back-off (Retry-After honoured). "
        "Each statement's public id is its puid: one the database already holds counts as "
        "accepted and is never sent again. Safe to run again, e.g. daily."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--retries", type=int, default=5, help="Tries after the first failed one (default 5)."
        )
        parser.add_argument(
            "--backoff",
            type=float,
            default=2.0,
            help="Seconds before the first retry, doubled each time (default 2).",
        )

    def handle(self, *args: Any, retries: int, backoff: float, **options: Any) -> None:
        if retries < 0 or backoff < 0:
            raise CommandError("--retries and --backoff must not be negative.")
        try:
            outcome = submit(retrying=Retrying(retries=retries, backoff=backoff))
        except SubmissionError as exc:
            raise CommandError(str(exc)) from exc
        for puid, problems in outcome.refused.items():
            self.stderr.write(f"Refused {puid}: {problems}")
        self.stdout.write(
            f"Accepted {outcome.accepted} statements, {outcome.already_there} already in the "
            f"database, {len(outcome.refused)} refused, in {outcome.calls} calls."
        )
        if outcome.refused:
            raise CommandError(f"{len(outcome.refused)} statements were refused (see above).")
