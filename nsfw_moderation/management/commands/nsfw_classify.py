"""``manage.py nsfw_classify PATH...``: score image files on disk, without the database."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from nsfw_moderation.conf import conf
from nsfw_moderation.management.commands._files import (
    FLAGGED,
    UNREADABLE,
    USAGE,
    FileResult,
    classify_files,
    find_files,
    load_backend_or_fail,
)


class Command(BaseCommand):
    help = (
        "Classify image files or folders on disk with the configured model, without touching "
        "the database. Folders are searched recursively for image files. Prints a table "
        "(or JSON with --json). Exit status: 0 nothing at or above FLAG_THRESHOLD; "
        "1 at least one image at or above it; 2 usage error (missing path, model cannot be "
        "loaded); 3 some files could not be read or decoded and none of the others was flagged."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("paths", nargs="+", metavar="PATH", help="Image files or folders.")
        parser.add_argument(
            "--json",
            action="store_true",
            help="Print JSON (path, verdict, score, scores, model, error) instead of a table.",
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=None,
            help="Images per classifier pass (default: BATCH_SIZE).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        batch_size = conf.BATCH_SIZE if options["batch_size"] is None else options["batch_size"]
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.", returncode=USAGE)
        files = find_files(options["paths"])
        if not files:
            raise CommandError("No image files found in the given paths.", returncode=USAGE)
        backend = load_backend_or_fail()
        results = classify_files(files, backend, batch_size)
        if options["json"]:
            collected = list(results)
            self.stdout.write(json.dumps([asdict(r) for r in collected], indent=2))
        else:
            collected = list(self._print_table(results, files))
        self._exit(collected)

    def _print_table(
        self, results: Iterable[FileResult], files: Sequence[Path]
    ) -> Iterator[FileResult]:
        width = max(len("path"), *(len(str(p)) for p in files))
        self.stdout.write(f"{'path':<{width}}  {'verdict':<8}  {'score':>6}  model")
        for result in results:
            score = "-" if result.score is None else f"{result.score:.4f}"
            line = f"{result.path:<{width}}  {result.verdict:<8}  {score:>6}  {result.model}"
            self.stdout.write(self.style.ERROR(line) if result.verdict != "allowed" else line)
            if result.error:
                self.stderr.write(f"{result.path}: {result.error}")
            yield result

    def _exit(self, results: Sequence[FileResult]) -> None:
        flagged = sum(1 for r in results if r.score is not None and r.score >= conf.FLAG_THRESHOLD)
        unreadable = sum(1 for r in results if r.error)
        if flagged:
            raise CommandError(
                f"{flagged} of {len(results)} image(s) at or above the flag threshold "
                f"{conf.FLAG_THRESHOLD:g}.",
                returncode=FLAGGED,
            )
        if unreadable:
            raise CommandError(
                f"{unreadable} of {len(results)} file(s) could not be classified.",
                returncode=UNREADABLE,
            )
