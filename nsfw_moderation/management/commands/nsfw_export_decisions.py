"""``manage.py nsfw_export_decisions``: the moderators' decisions as a labelled manifest."""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import FieldDoesNotExist
from django.core.files.storage import Storage
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from nsfw_moderation import imaging, labels, storage
from nsfw_moderation.conf import conf
from nsfw_moderation.models import ModeratedImage
from nsfw_moderation.quality import Decision

COLUMNS = (
    "file_name",
    "url",
    "content_type",
    "object_id",
    "field",
    "sha256",
    "verdict",
    "decided_at",
    "verdict_before",
    "model",
    "score",
    "shadow_model",
    "shadow_score",
    "audit",
)
# A file name's extension worth keeping on a copy; anything else is left off.
#: Extensions a copied image keeps (its bytes decided it is an image); any other is dropped.
_IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp", ".tif", ".tiff", ".heic", ".heif", ".avif"}
)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


class Command(BaseCommand):
    help = (
        "Write one line per decided image (the latest approve or reject of each image's bytes) "
        "as CSV or JSON Lines: file name, storage URL, object, field, SHA-256, verdict "
        "(rejected = unsafe), when, the automatic verdict before it, the live and shadow "
        "models with their scores, and whether it was an audit sample. No reviewer names "
        "unless --reviewers; no image bytes unless --copy-images, which copies each decided "
        "image still stored with the same SHA-256, checked, named by its SHA-256."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--format", choices=["csv", "jsonl"], default="csv")
        parser.add_argument("--output", metavar="FILE", help="Default: standard output.")
        parser.add_argument(
            "--days", type=int, help="Only the decisions of the last N days (default: all)."
        )
        parser.add_argument(
            "--audit-only", action="store_true", help="Only decisions on audit samples."
        )
        parser.add_argument("--model", help="Only images scored by this model.")
        parser.add_argument(
            "--reviewers", action="store_true", help="Add each decision's reviewer's username."
        )
        parser.add_argument(
            "--copy-images", metavar="DIR", help="Copy the decided images' bytes into DIR."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["days"] is not None and options["days"] < 1:
            raise CommandError("--days must be at least 1.")
        found = labels.decisions(timezone.now(), days=options["days"], model=options["model"])
        if options["audit_only"]:
            found = [d for d in found if d.audit]
        found.sort(key=lambda d: (d.decided_at, d.key))
        columns = (*COLUMNS, "reviewer") if options["reviewers"] else COLUMNS
        records = (_record(d, columns) for d in found)
        if options["output"]:
            with _open(Path(options["output"])) as handle:
                write(records, columns, options["format"], handle)
        else:
            buffer = io.StringIO()
            write(records, columns, options["format"], buffer)
            self.stdout.write(buffer.getvalue(), ending="")
        self.stderr.write(f"Exported {len(found)} decisions.")
        if options["copy_images"]:
            self._copy(found, Path(options["copy_images"]))

    def _copy(self, found: Iterable[Decision], directory: Path) -> None:
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CommandError(f"Cannot create {directory}: {exc}") from exc
        copied, skipped = 0, 0
        for decision in found:
            problem = copy_image(decision, directory)
            if problem:
                skipped += 1
                self.stderr.write(f"Skipped {decision.file_name}: {problem}")
            else:
                copied += 1
        self.stderr.write(f"Copied {copied} images to {directory}; skipped {skipped}.")


def _open(path: Path) -> IO[str]:
    try:
        return path.open("w", encoding="utf-8", newline="")
    except OSError as exc:
        raise CommandError(f"Cannot write {path}: {exc}") from exc


def write(
    records: Iterator[dict[str, Any]], columns: tuple[str, ...], form: str, out: IO[str]
) -> None:
    if form == "jsonl":
        for record in records:
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
        return
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows({name: _cell(value) for name, value in record.items()} for record in records)


#: What a spreadsheet reads as the start of a formula in a cell.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> Any:
    """A CSV cell a spreadsheet shows as text: a file or user name is never run as a formula."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def _record(decision: Decision, columns: tuple[str, ...]) -> dict[str, Any]:
    content_type_id, object_id, field_name, sha256 = decision.key
    content_type = ContentType.objects.get_for_id(content_type_id) if content_type_id else None
    record = {
        "file_name": decision.file_name,
        "url": _url(content_type, field_name, decision.file_name),
        "content_type": f"{content_type.app_label}.{content_type.model}" if content_type else "",
        "object_id": object_id,
        "field": field_name,
        "sha256": sha256,
        "verdict": "rejected" if decision.rejected else "approved",
        "decided_at": decision.decided_at.isoformat() if decision.decided_at else "",
        "verdict_before": decision.before,
        "model": decision.model,
        "score": decision.score,
        "shadow_model": decision.shadow_model,
        "shadow_score": decision.shadow_score,
        "audit": decision.audit,
        "reviewer": decision.reviewer,
    }
    return {name: record[name] for name in columns}


def _url(content_type: ContentType | None, field_name: str, file_name: str) -> str:
    files = _storage(content_type, field_name)
    if files is None or not file_name:
        return ""
    try:
        return files.url(file_name)
    except (NotImplementedError, ValueError):
        return ""


def _storage(content_type: ContentType | None, field_name: str) -> Storage | None:
    model = content_type.model_class() if content_type else None
    if model is None:
        return None
    try:
        return model._meta.get_field(field_name).storage  # type: ignore[union-attr]
    except (FieldDoesNotExist, AttributeError):  # gone, or not a file field any more
        return None


def copy_image(decision: Decision, directory: Path) -> str:
    """Copy the decided bytes into ``directory`` as ``<sha256><ext>``; why not, or ``""``."""
    content_type_id, object_id, field_name, sha256 = decision.key
    row = ModeratedImage.objects.filter(
        content_type_id=content_type_id, object_id=object_id, field_name=field_name
    ).first()
    if row is None:
        return "missing: its moderated image is gone"
    if not sha256 or row.sha256 != sha256:
        return "changed: another file is stored there now"
    try:
        data = storage.read_file(row)
    except storage.InputMissing as exc:
        return f"missing: {exc}"
    except Exception as exc:  # the storage, or a model or field gone: one file, not the export
        return f"unreadable: {type(exc).__name__}: {exc}"
    if len(data) > conf.MAX_FILE_SIZE:
        return "too large: over MAX_FILE_SIZE, only its beginning was read"
    if imaging.sha256(data) != sha256:
        return "changed: the stored bytes no longer match the SHA-256 decided"
    extension = Path(row.file_name).suffix.lower()
    if extension not in _IMAGE_EXTENSIONS:
        extension = ""
    target = directory / (sha256 + extension)
    try:
        # A new file only: never through a link planted in the folder, never over a file.
        descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o644)
    except FileExistsError:
        return (
            ""
            if target.is_file() and imaging.sha256(target.read_bytes()) == sha256
            else (f"exists: {target.name} is already in the folder, with other content")
        )
    except OSError as exc:
        return f"unwritable: {exc}"
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
    return ""
