"""``manage.py nsfw_evaluate DIR``: how well the configured model does on your own images."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from nsfw_moderation import evaluation
from nsfw_moderation.conf import conf
from nsfw_moderation.evaluation import Confusion, Sample
from nsfw_moderation.management.commands._files import (
    classify_files,
    find_files,
    load_backend_or_fail,
)


class Command(BaseCommand):
    help = (
        "Measure the configured model on labelled images. DIR holds one folder per label "
        "(e.g. normal/ and nsfw/); folders named after an UNSAFE_LABELS entry are the unsafe "
        "ones. Prints accuracy, precision, recall, F1 and ROC-AUC at the flag threshold, a "
        "table over thresholds and the confusion matrix; --plot writes an SVG chart. Use it "
        "to choose FLAG_THRESHOLD and BLOCK_THRESHOLD from your own data. Files that cannot "
        "be decoded are listed and left out. Exit status 1 when DIR is not usable."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "directory", metavar="DIR", help="Folder with one sub-folder per label."
        )
        parser.add_argument(
            "--threshold",
            type=float,
            default=None,
            help="Threshold for the headline metrics (default: FLAG_THRESHOLD).",
        )
        parser.add_argument(
            "--step", type=float, default=0.05, help="Step of the threshold table (default 0.05)."
        )
        parser.add_argument("--plot", metavar="OUT.svg", help="Write an SVG chart to this file.")
        parser.add_argument(
            "--batch-size", type=int, default=None, help="Images per classifier pass."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        threshold = conf.FLAG_THRESHOLD if options["threshold"] is None else options["threshold"]
        batch_size = conf.BATCH_SIZE if options["batch_size"] is None else options["batch_size"]
        if not 0 <= threshold <= 1 or not 0 < options["step"] <= 1 or batch_size < 1:
            raise CommandError(
                "--threshold must be in [0, 1], --step in (0, 1] and --batch-size at least 1."
            )
        folders = label_folders(Path(options["directory"]))
        samples = self._classify(folders, batch_size)
        self._report(samples, threshold, options["step"])
        if options["plot"]:
            self._write_plot(Path(options["plot"]), samples, threshold, options["step"])

    def _classify(self, folders: dict[str, Path], batch_size: int) -> list[Sample]:
        backend = load_backend_or_fail(returncode=1)
        unsafe_labels = set(conf.UNSAFE_LABELS)
        samples: list[Sample] = []
        for label, folder in folders.items():
            for result in classify_files(find_files([folder]), backend, batch_size):
                if result.score is None:
                    self.stderr.write(f"Skipped {result.path}: {result.error}")
                    continue
                samples.append(Sample(label, label in unsafe_labels, result.score))
        self.stdout.write(f"Model: {backend.name}")
        _require_both_classes(samples)
        return samples

    def _report(self, samples: Sequence[Sample], threshold: float, step: float) -> None:
        write = self.stdout.write
        for label in sorted({s.label for s in samples}):
            scores = [s.score for s in samples if s.label == label]
            kind = "unsafe" if label in conf.UNSAFE_LABELS else "safe"
            write(f"  {label} ({kind}): {len(scores)} images, mean score {_mean(scores):.3f}")
        at = evaluation.confusion(samples, threshold)
        auc = evaluation.roc_auc(samples)
        write(f"\nAt threshold {threshold:g} (an image is flagged when its score is >= it):")
        for name in ("accuracy", "precision", "recall", "f1"):
            write(f"  {name:<9} {_fmt(getattr(at, name))}")
        write(f"  {'roc_auc':<9} {_fmt(auc)}")
        write("\nConfusion matrix (rows: truth, columns: prediction):")
        write(f"  {'':<13}{'flagged':>9}{'allowed':>9}")
        write(f"  {'unsafe':<13}{at.tp:>9}{at.fn:>9}")
        write(f"  {'safe':<13}{at.fp:>9}{at.tn:>9}")
        write("\nThreshold table:")
        write(_table(evaluation.threshold_table(samples, step)))

    def _write_plot(
        self, path: Path, samples: Sequence[Sample], threshold: float, step: float
    ) -> None:
        try:
            path.write_text(evaluation.svg_plot(samples, threshold, step), encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"Cannot write the plot to {path}: {exc}") from exc
        self.stdout.write(f"\nWrote {path}")


def label_folders(directory: Path) -> dict[str, Path]:
    """``{label: folder}`` for the non-hidden sub-folders of ``directory``."""
    if not directory.is_dir():
        raise CommandError(f"{directory} is not a folder.")
    folders = {
        p.name: p for p in sorted(directory.iterdir()) if p.is_dir() and not p.name.startswith(".")
    }
    unsafe = [name for name in folders if name in conf.UNSAFE_LABELS]
    if not unsafe or len(unsafe) == len(folders):
        raise CommandError(
            f"{directory} needs one sub-folder per label: at least one named after an unsafe "
            f"label ({', '.join(conf.UNSAFE_LABELS)}) and at least one other (e.g. normal). "
            f"Found: {', '.join(folders) or 'no sub-folders'}."
        )
    return folders


def _require_both_classes(samples: Sequence[Sample]) -> None:
    if not any(s.unsafe for s in samples) or all(s.unsafe for s in samples):
        raise CommandError(
            "Need at least one readable image among the unsafe labels and one among the others."
        )


def _table(rows: Sequence[Confusion]) -> str:
    header = f"  {'threshold':>9} {'precision':>9} {'recall':>7} {'f1':>6} {'accuracy':>8}"
    header += f" {'tp':>5} {'fp':>5} {'tn':>5} {'fn':>5}"
    lines = [header]
    for r in rows:
        lines.append(
            f"  {r.threshold:>9.2f} {_fmt(r.precision):>9} {_fmt(r.recall):>7} {_fmt(r.f1):>6}"
            f" {_fmt(r.accuracy):>8} {r.tp:>5} {r.fp:>5} {r.tn:>5} {r.fn:>5}"
        )
    return "\n".join(lines)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0
