"""``manage.py nsfw_previews``: make the stored previews that rows classified earlier lack."""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db.models import Exists, OuterRef, QuerySet

from nsfw_moderation import imaging, previews, storage
from nsfw_moderation.models import ModeratedImage, Preview, Status

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = (
        "Make the preview moderators see for classified rows that have none for their "
        "current file (rows classified before previews were stored). Files are read and "
        "decoded here, with the worker's limits; run it where workers run, not in the web "
        "process. Rows classified from now on get their preview from the worker."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="only count the rows")
        parser.add_argument(
            "--limit", type=int, metavar="N", help="make at most N previews (default: all)"
        )

    def handle(
        self, *args: Any, dry_run: bool = False, limit: int | None = None, **options: Any
    ) -> None:
        rows = rows_without_preview()
        if dry_run:
            self.stdout.write(f"{rows.count()} row(s) have no preview.")
            return
        counts: Counter[str] = Counter()
        for row in rows.select_related("content_type")[:limit].iterator(chunk_size=100):
            counts[make_preview(row)] += 1
        self.stdout.write(
            f"Made {counts['made']} preview(s); {counts['missing']} file(s) gone, "
            f"{counts['undecodable']} not decodable (placeholders stay)."
        )


def rows_without_preview() -> QuerySet[ModeratedImage]:
    """Classified rows with no preview of the file they hold now."""
    current = Preview.objects.filter(image=OuterRef("pk"), file_name=OuterRef("file_name"))
    return ModeratedImage.objects.filter(status__in=[Status.DONE, Status.FAILED]).exclude(
        Exists(current)
    )


def make_preview(row: ModeratedImage) -> str:
    try:
        data = storage.read_file(row)
    except storage.InputMissing:
        return "missing"
    except Exception:  # storage hiccups: the row keeps its placeholder
        logger.warning("Could not read %s", row.file_name, exc_info=True)
        return "missing"
    try:
        # No name check: a misnamed file was flagged already; its pixels are what to show.
        frames = imaging.load_frames(data, storage.decode_limits())
    except imaging.ImageDecodeError:
        return "undecodable"
    Preview.store(row, previews.preview_of(frames, row.frame))
    return "made"
