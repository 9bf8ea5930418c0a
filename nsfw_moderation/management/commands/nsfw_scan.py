"""``manage.py nsfw_scan``: moderate files that exist already (backfill, rescan)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any

from django.apps import apps
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import models
from django.utils.module_loading import import_string

from nsfw_moderation import enqueue, reconcile, registry
from nsfw_moderation.backends import ALIASES, ModelUnavailable, get_backend
from nsfw_moderation.conf import conf
from nsfw_moderation.db import write_transaction
from nsfw_moderation.hub import model_name as row_model_name
from nsfw_moderation.models import Status, Verdict, object_id_for
from nsfw_moderation.worker import tasks

RESCAN_CHOICES = ("all", "other-model", "failed")
#: Verdicts of a person: ``--rescan --undecided-only`` leaves them alone.
DECIDED = (Verdict.APPROVED, Verdict.REJECTED)


class Command(BaseCommand):
    help = (
        "Queue the files of the moderated fields that have no up-to-date moderation row: "
        "existing data when you install the app, and uploads that bypassed the save signals "
        "(bulk_create, QuerySet.update, raw SQL). Safe to interrupt and run again: objects "
        "whose current file already has a row are skipped. With --sync the images are "
        "classified in this process instead of by the workers."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--model",
            action="append",
            metavar="app_label.Model",
            help="Only this model (repeatable). Default: every moderated model.",
        )
        parser.add_argument("--field", help="Only this field of the selected models.")
        parser.add_argument(
            "--rescan",
            nargs="?",
            const="all",
            choices=RESCAN_CHOICES,
            help="Also redo rows that are up to date: 'all' (the default when given without a "
            "value), 'other-model' (rows classified by a model other than the configured one, "
            "e.g. after switching MODEL to the shadow model's) or 'failed' (rows whose "
            "classification failed). Their verdicts are reset to pending and classified again: "
            "moderators' approvals and rejections too (they stay in the event log, and "
            "rejected bytes stay blocked), unless --undecided-only is given.",
        )
        parser.add_argument(
            "--undecided-only",
            action="store_true",
            help="With --rescan: leave the rows a moderator approved or rejected as they are "
            "(their verdicts and the scores the moderator saw). New and changed files are "
            "queued all the same.",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Only count what would be queued."
        )
        parser.add_argument(
            "--sync",
            action="store_true",
            help="Classify in this process, in batches of BATCH_SIZE, instead of queueing for "
            "the workers. Loads the model here. Also classifies any other queued rows it finds.",
        )
        parser.add_argument(
            "--chunk-size",
            type=int,
            default=500,
            help="Objects read (and rows written) per database round trip (default 500).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["chunk_size"] < 1:
            raise CommandError("--chunk-size must be at least 1.")
        if options["undecided_only"] and not options["rescan"]:
            raise CommandError("--undecided-only applies to --rescan only.")
        targets = select_targets(options["model"], options["field"])
        self.options = options
        self.model_name = configured_model_name() if options["rescan"] == "other-model" else ""
        if options["sync"] and not options["dry_run"]:
            _load_backend()
        totals: Counter[str] = Counter()
        for model, field_name in targets:
            totals += self._scan(model, field_name)
        self._summary(totals)

    # -- scanning -------------------------------------------------------------

    def _scan(self, model: type[models.Model], field_name: str) -> Counter[str]:
        objects = reconcile.with_files(model, field_name)
        label = f"{model._meta.label}.{field_name}"
        total = objects.count()
        progress = self._progress(label, total)
        counts: Counter[str] = Counter()
        for chunk in reconcile.chunks(objects, self.options["chunk_size"]):
            chunk_counts = self._scan_chunk(model, field_name, chunk)
            counts += chunk_counts
            self._report_chunk(progress, label, counts, total, len(chunk))
        if progress is not None:
            progress.close()
        return counts

    def _scan_chunk(
        self, model: type[models.Model], field_name: str, chunk: Sequence[models.Model]
    ) -> Counter[str]:
        existing = reconcile.existing_rows(model, field_name, chunk)
        counts: Counter[str] = Counter(checked=len(chunk))
        due = []
        for obj in chunk:
            reason = self._reason(
                existing.get(object_id_for(model, obj.pk)), registry.file_name(obj, field_name)
            )
            counts[reason] += 1
            if reason not in ("up to date", "decided"):
                due.append(obj)
        if due and not self.options["dry_run"]:
            self._queue(due, field_name)
            if self.options["sync"]:
                counts += classify_queued()
        return counts

    def _reason(self, row: dict[str, Any] | None, file_name: str) -> str:
        """Why an object needs (re)classifying, or ``"up to date"`` / ``"decided"`` (kept)."""
        if row is None:
            return "new"
        if row["file_name"] != file_name:
            return "changed"
        if not self._rescan(row):
            return "up to date"
        if self.options["undecided_only"] and row["verdict"] in DECIDED:
            return "decided"
        return "rescan"

    def _rescan(self, row: dict[str, Any]) -> bool:
        """Whether ``--rescan`` redoes this up-to-date row."""
        rescan = self.options["rescan"]
        return (
            rescan == "all"
            or (rescan == "failed" and row["status"] == Status.FAILED)
            or (rescan == "other-model" and row["model_name"] not in ("", self.model_name))
        )

    def _queue(self, objects: Sequence[models.Model], field_name: str) -> None:
        # One transaction per chunk: the queue's on_commit hooks fire once the
        # chunk's rows are safely stored, and an interrupted scan keeps them.
        with write_transaction():
            for obj in objects:
                name = registry.file_name(obj, field_name)
                if self.options["sync"]:
                    enqueue.reset_row(obj, field_name, name)  # classified below, in this process
                else:
                    enqueue.submit(obj, field_name, name)

    # -- output ---------------------------------------------------------------

    def _progress(self, label: str, total: int) -> Any:
        if self.options["verbosity"] < 1 or not self.stdout.isatty():
            return None
        from tqdm import tqdm

        return tqdm(total=total, desc=label, unit="obj", file=self.stdout._out)

    def _report_chunk(
        self, progress: Any, label: str, counts: Counter[str], total: int, size: int
    ) -> None:
        if progress is not None:
            progress.update(size)
        elif self.options["verbosity"] >= 1:
            self.stdout.write(
                f"{label}: {counts['checked']}/{total} checked, {_due(counts)} "
                f"{'to queue' if self.options['dry_run'] else 'queued'}"
            )

    def _summary(self, totals: Counter[str]) -> None:
        if self.options["verbosity"] < 1:
            return
        verb = "Would queue" if self.options["dry_run"] else "Queued"
        reasons = ", ".join(f"{totals[r]} {r}" for r in ("new", "changed", "rescan") if totals[r])
        decided = f", {totals['decided']} kept as moderators decided" if totals["decided"] else ""
        self.stdout.write(
            self.style.SUCCESS(
                f"Checked {totals['checked']} object(s). {verb} {_due(totals)}"
                f"{f' ({reasons})' if reasons else ''}; {totals['up to date']} up to date"
                f"{decided}."
            )
        )
        if self.options["sync"] and not self.options["dry_run"]:
            self.stdout.write(
                f"Classified: {totals['done']} done, {totals['failed']} failed, "
                f"{totals['retrying']} to retry."
            )


def select_targets(
    labels: Sequence[str] | None, field_name: str | None
) -> list[tuple[type[models.Model], str]]:
    """The (model, field) pairs to scan, or a :class:`CommandError` saying what is wrong."""
    targets = list(registry.registered())
    if not targets:
        raise CommandError(
            'No fields are moderated: set NSFW_MODERATION["MODELS"] or call '
            "nsfw_moderation.register()."
        )
    if labels:
        wanted = {_resolve_model(label) for label in labels}
        targets = [(m, f) for m, f in targets if m in wanted]
    if field_name:
        targets = [(m, f) for m, f in targets if f == field_name]
    if not targets:
        raise CommandError(
            f"Nothing moderated matches. Moderated fields: {_describe(registry.registered())}."
        )
    return targets


def _resolve_model(label: str) -> type[models.Model]:
    try:
        model = apps.get_model(label)
    except (LookupError, ValueError):
        raise CommandError(
            f"Unknown model {label!r}: use app_label.ModelName, e.g. gallery.Photo."
        ) from None
    concrete = model._meta.concrete_model or model
    if not registry.fields_for(concrete):
        raise CommandError(
            f"{label} has no moderated fields. Moderated fields: "
            f"{_describe(registry.registered())}."
        )
    return concrete


def _describe(pairs: Iterator[tuple[type[models.Model], str]]) -> str:
    return ", ".join(f"{m._meta.label}.{f}" for m, f in pairs) or "none"


def configured_model_name() -> str:
    """The ``model_name`` new rows get, found without loading the model where possible."""
    path = ALIASES.get(conf.BACKEND, conf.BACKEND)
    if path in (ALIASES["transformers"], ALIASES["openvino"], ALIASES["timm"]):
        return row_model_name(conf.MODEL, conf.MODEL_REVISION)
    try:
        backend_class = import_string(path)
    except ImportError as exc:
        raise CommandError(f"Cannot import the backend {conf.BACKEND!r}: {exc}") from exc
    name = getattr(backend_class, "name", None)
    # Backends that only know their name once built (it includes a version).
    return name if isinstance(name, str) else _load_backend().name


def _load_backend() -> Any:
    try:
        return get_backend()
    except ModelUnavailable as exc:
        raise CommandError(str(exc)) from exc


def classify_queued() -> Counter[str]:
    """Run the worker task here until no queued row is left to claim."""
    totals: Counter[str] = Counter()
    while True:
        counts = tasks.classify()
        if not counts["claimed"]:
            return totals
        totals += Counter({k: v for k, v in counts.items() if k != "claimed"})


def _due(counts: Counter[str]) -> int:
    return counts["new"] + counts["changed"] + counts["rescan"]
