"""``manage.py nsfw_evaluate DIR``: how well the configured model does on your own images.

``manage.py nsfw_evaluate --decisions``: how well it does on the moderators' decisions.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from nsfw_moderation import evaluation, labels, quality
from nsfw_moderation.conf import conf
from nsfw_moderation.evaluation import Confusion, Sample
from nsfw_moderation.management.commands._files import (
    classify_files,
    find_files,
    load_backend_or_fail,
)
from nsfw_moderation.quality import ModelQuality, Proportion, QualityReport


class Command(BaseCommand):
    help = (
        "Measure the configured model on labelled images. DIR holds one folder per label "
        "(e.g. normal/ and nsfw/); folders named after an UNSAFE_LABELS entry are the unsafe "
        "ones. Prints accuracy, precision, recall, F1 and ROC-AUC at the flag threshold, a "
        "table over thresholds and the confusion matrix; --plot writes an SVG chart. Use it "
        "to choose FLAG_THRESHOLD and BLOCK_THRESHOLD from your own data. Files that cannot "
        "be decoded are listed and left out. Exit status 1 when DIR is not usable. "
        "With --decisions instead of DIR: the same questions answered from the moderators' "
        "decisions (precision of flagging, a threshold table with suggested thresholds, the "
        "miss rate estimated from audit samples, the shadow model's comparison)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "directory", metavar="DIR", nargs="?", help="Folder with one sub-folder per label."
        )
        parser.add_argument(
            "--decisions",
            action="store_true",
            help="Measure on the moderators' decisions instead of labelled folders.",
        )
        parser.add_argument(
            "--days",
            type=int,
            default=labels.DAYS,
            help=f"With --decisions: decisions of the last N days (default {labels.DAYS}).",
        )
        parser.add_argument(
            "--target",
            type=float,
            default=quality.DEFAULT_TARGET,
            help="With --decisions: the share of rejections a suggested BLOCK_THRESHOLD must "
            "reach (lower bound of a 95%% interval) and the share of rejected images a "
            f"suggested FLAG_THRESHOLD must keep flagged (default {quality.DEFAULT_TARGET}).",
        )
        parser.add_argument(
            "--model", help="With --decisions: only decisions on images scored by this model."
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
        if options["decisions"]:
            if options["directory"]:
                raise CommandError("Give either DIR or --decisions, not both.")
            self._decisions(options["days"], options["target"], options["model"])
            return
        if not options["directory"]:
            raise CommandError(
                "Give DIR (a folder of labelled images) or --decisions (the moderators' "
                "decisions as labels)."
            )
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

    def _decisions(self, days: int, target: float, model: str | None) -> None:
        if days < 1 or not 0 < target < 1:
            raise CommandError("--days must be at least 1 and --target in (0, 1).")
        report = labels.quality_report(timezone.now(), days=days, target=target, model=model)
        self.stdout.write("\n".join(decisions_report(report)))

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


# --- The report from the moderators' decisions ----------------------------------------


def decisions_report(report: QualityReport) -> list[str]:
    """The dashboard's "Model quality" section as lines of text."""
    lines = [
        f"Decisions of the last {report.days} days: {report.decided} images (the latest "
        "decision per image; rejected = unsafe, approved = safe).",
        "Moderators decide the images the model flagged: these figures say how precise "
        "flagging is. Only audit samples say what gets through below FLAG_THRESHOLD.",
    ]
    if not report.decided:
        lines.append(
            "No decisions yet: review flagged images (each decision is a label), or set "
            "AUDIT_SAMPLE_RATE to send a random share of the automatic verdicts to the queue."
        )
    for model in report.models:
        lines += ["", *_model_lines(model)]
    lines += ["", *_audit_lines(report), "", *_shadow_lines(report)]
    return lines


def _model_lines(model: ModelQuality) -> list[str]:
    flags = model.flags
    lines = [
        f"Model: {model.model or '(no model name)'} ({model.decided} decided images)",
        f"  Flags decided: {flags.n}; upheld (rejected): {flags.k}; overturned (approved): "
        f"{model.overturned}",
        f"  Precision of flagging: {_share(flags)}",
        f"  Scores of upheld flags per tenth:     {model.upheld_histogram}",
        f"  Scores of overturned flags per tenth: {model.overturned_histogram}",
        "  Threshold table (decided images scoring >= threshold; workload: share of the "
        "flag reviews at or above it):",
        f"  {'threshold':>9} {'decided':>8} {'rejected':>8} {'share':>6} {'low95':>6} "
        f"{'workload':>8}",
    ]
    for row in model.table:
        share = row.rejected_share
        note = {"flag": "  FLAG_THRESHOLD now", "block": "  BLOCK_THRESHOLD now"}.get(
            row.current, ""
        )
        lines.append(
            f"  {row.threshold:>9.2f} {row.decided:>8} {row.rejected:>8} {_fmt(share.share):>6}"
            f" {_fmt(share.low):>6} {_fmt(row.workload):>8}{note}"
        )
    return lines + _suggestion_lines(model)


def _suggestion_lines(model: ModelQuality) -> list[str]:
    block, flag = model.block, model.flag
    if block.threshold is None:
        blocking = (
            f"  BLOCK_THRESHOLD: not enough decisions yet for a target of {block.target:g}: a "
            f"threshold needs at least {block.needed} decided images at or above it, nearly "
            "all rejected."
        )
    else:
        blocking = (
            f"  Suggested BLOCK_THRESHOLD: {block.threshold:.2f} (moderators rejected at least "
            f"{block.target:g} of the decided images at or above it, 95% lower bound)."
        )
    if flag.threshold is None:
        flagging = f"  FLAG_THRESHOLD: not enough rejections yet (at least {flag.needed})."
    else:
        flagging = (
            f"  Suggested FLAG_THRESHOLD: {flag.threshold:.2f} (keeps {_fmt(flag.kept)} of the "
            f"rejected images flagged; saves {_fmt(flag.saved)} of the flag reviews). Decisions "
            "alone can only suggest raising it: images below it were never reviewed."
        )
    return [blocking, flagging]


def _audit_lines(report: QualityReport) -> list[str]:
    audit = report.audit
    lines = ["Audit samples:"]
    if not (audit.missed.n or audit.wrong_blocks.n or audit.waiting_total):
        return [*lines, "  None yet: set AUDIT_SAMPLE_RATE (e.g. 0.01) to draw them."]
    lines.append(
        f"  Miss rate (rejected among {audit.missed.n} decided samples of allowed images): "
        f"{_share(audit.missed)}"
    )
    estimate = audit.estimated_missed_images
    if estimate is not None:
        lines.append(
            f"  About {estimate[0]:.0f} ({estimate[1]:.0f} to {estimate[2]:.0f}) unsafe images "
            f"among the {audit.allowed_images} allowed now."
        )
    lines.append(
        f"  Wrong blocks (approved among {audit.wrong_blocks.n} decided samples of blocked "
        f"images): {_share(audit.wrong_blocks)}"
    )
    lines.append(f"  Waiting for a moderator: {audit.waiting_total}")
    return lines


def _shadow_lines(report: QualityReport) -> list[str]:
    if not report.shadows:
        return ["Shadow model: no decision on an image with a shadow score."]
    lines = [
        f"Shadow model (each at its own flag threshold: live {report.flag_threshold:g}, "
        f"shadow {report.shadow_flag_threshold:g}); mostly images the live model flagged, "
        "so the audit samples are the fair comparison:",
        f"  {'model':<40} {'n':>6} {'agree':>6} {'prec':>6} {'recall':>6} {'audit':>6} "
        f"{'agree':>6} {'recall':>6}",
    ]
    for pair in report.shadows:
        for name, every, audit in (
            (f"{pair.live_model} (live)", pair.live, pair.live_audit),
            (f"{pair.shadow_model} (shadow)", pair.shadow, pair.shadow_audit),
        ):
            lines.append(
                f"  {name:<40} {every.total:>6} {_fmt(every.accuracy):>6} "
                f"{_fmt(every.precision):>6} {_fmt(every.recall):>6} {audit.total:>6} "
                f"{_fmt(audit.accuracy):>6} {_fmt(audit.recall):>6}"
            )
    return lines


def _share(proportion: Proportion) -> str:
    if proportion.share is None:
        return "- (nothing decided)"
    return (
        f"{proportion.share:.3f} ({proportion.k}/{proportion.n}; 95% interval "
        f"{_fmt(proportion.low)} to {_fmt(proportion.high)})"
    )
