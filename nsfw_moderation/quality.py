"""How well a model works on this site, measured on the moderators' decisions.

Pure Python, independent of Django like :mod:`~nsfw_moderation.evaluation`
(whose confusion counts and histograms it reuses): :mod:`~nsfw_moderation.labels`
reads the decisions from the event log, this module turns them into figures.

A decision is a label: *rejected* means unsafe, *approved* safe. Moderators
decide the images the model flagged, so most labels lie at or above the
``FLAG_THRESHOLD`` in force when they were flagged: they measure how precise
flagging is, not what it misses. Only audit samples, drawn at random from the
automatic verdicts, say anything about the images below it.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from nsfw_moderation import evaluation
from nsfw_moderation.evaluation import Confusion, Sample

#: z for a two-sided 95% interval: the 97.5th percentile of the standard normal.
Z95 = 1.959963984540054
#: Fewest decisions at or above a threshold for any suggestion to be made from them.
MIN_DECISIONS = 30
DEFAULT_TARGET = 0.99
HISTOGRAM_BINS = 10


def wilson(successes: int, trials: int, z: float = Z95) -> tuple[float, float] | None:
    """The Wilson score interval of a proportion, ``None`` without trials.

    Unlike ``p ± z·√(p(1−p)/n)`` it stays within [0, 1] and is not empty at
    0 or n successes, which is where a moderation site's figures live.
    """
    if not 0 <= successes <= trials:
        raise ValueError(f"Need 0 <= successes <= trials, not {successes}/{trials}.")
    if not trials:
        return None
    p = successes / trials
    z2 = z * z
    centre = (p + z2 / (2 * trials)) / (1 + z2 / trials)
    half = z / (1 + z2 / trials) * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials))
    # The bounds are exact at 0 and n successes; clamp only rounding.
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == trials else min(1.0, centre + half)
    return low, high


def trials_for_lower_bound(target: float, z: float = Z95) -> int:
    """Fewest trials, all successes, whose Wilson lower bound reaches ``target``.

    With k = n the lower bound is n / (n + z²), so n ≥ target·z² / (1 − target).
    """
    if not 0 < target < 1:
        raise ValueError(f"The target must be in (0, 1), not {target}.")
    return math.ceil(target * z * z / (1 - target) - 1e-9)


@dataclass(frozen=True)
class Proportion:
    """``k`` of ``n``, with its 95% Wilson interval."""

    k: int
    n: int

    @property
    def share(self) -> float | None:
        return self.k / self.n if self.n else None

    @property
    def interval(self) -> tuple[float, float] | None:
        return wilson(self.k, self.n)

    @property
    def low(self) -> float | None:
        return None if self.interval is None else self.interval[0]

    @property
    def high(self) -> float | None:
        return None if self.interval is None else self.interval[1]


@dataclass(frozen=True)
class Decision:
    """The latest decision on one image's bytes, with what the machine had said before it.

    ``before`` is the automatic verdict the first decision (in the period read)
    changed: ``flagged``, ``allowed``, ``blocked``, … or ``approved``/``rejected``
    when that first decision was itself a change of mind. ``audit``: that first
    decision audited a random sample. Score and models are the latest decision's.
    """

    key: tuple[Any, ...]  # content type, object id, field, SHA-256
    rejected: bool
    before: str
    audit: bool
    score: float | None
    model: str
    shadow_score: float | None = None
    shadow_model: str = ""
    decided_at: datetime | None = None
    file_name: str = ""
    reviewer: str = ""


@dataclass(frozen=True)
class DecisionEvent:
    """One ``reviewed`` event that approved or rejected, as read from the log."""

    order: tuple[Any, ...]  # (created_at, pk): the log's order
    decision: Decision


def latest_per_bytes(events: Iterable[DecisionEvent]) -> list[Decision]:
    """One decision per image bytes and draw: the latest, with the first one's before and audit.

    A moderator who changes their mind counts once, with their last word. An
    audit decision starts a label of its own: the same bytes drawn again (say,
    re-classified after a rescan) are another random draw, not a change of mind
    about the earlier decision. The events may come in any order.
    """
    by_bytes: dict[tuple[Any, ...], list[DecisionEvent]] = {}
    for event in events:
        by_bytes.setdefault(event.decision.key, []).append(event)
    labels: list[Decision] = []
    for found in by_bytes.values():
        found.sort(key=lambda event: event.order)
        start = last = found[0]
        for event in found[1:]:
            if event.decision.audit:
                labels.append(_label(start, last))
                start = event
            last = event
        labels.append(_label(start, last))
    return labels


def _label(start: DecisionEvent, last: DecisionEvent) -> Decision:
    return replace(last.decision, before=start.decision.before, audit=start.decision.audit)


# --- Per model ----------------------------------------------------------------------


@dataclass(frozen=True)
class ThresholdRow:
    """Decided images scoring at or above ``threshold``."""

    threshold: float
    decided: int
    rejected: int
    #: Of the decisions on flagged images, the share scoring at or above the threshold.
    workload: float | None
    current: str = ""  # "flag" / "block": a configured threshold

    @property
    def rejected_share(self) -> Proportion:
        return Proportion(self.rejected, self.decided)


@dataclass(frozen=True)
class BlockSuggestion:
    """The lowest threshold whose decisions were rejected at ``target`` or more (lower bound)."""

    target: float
    threshold: float | None
    #: Decisions, all rejected, that a lower bound of ``target`` needs at the very least.
    needed: int


@dataclass(frozen=True)
class FlagSuggestion:
    """The highest threshold that keeps ``target`` of the rejected images flagged."""

    target: float
    threshold: float | None
    kept: float | None  # share of the rejected images still at or above it
    saved: float | None  # share of the flag reviews below it: work a raise would save
    needed: int


@dataclass(frozen=True)
class ModelQuality:
    model: str
    decided: int
    flags: Proportion  # upheld (rejected) of the flags decided
    upheld_histogram: list[int]
    overturned_histogram: list[int]
    table: list[ThresholdRow]
    block: BlockSuggestion
    flag: FlagSuggestion

    @property
    def overturned(self) -> int:
        return self.flags.n - self.flags.k

    @property
    def upheld_pairs(self) -> list[tuple[str, int]]:
        """``[("0.0–0.1", n), ...]`` of the upheld flags, for a column chart."""
        return _pairs(self.upheld_histogram)

    @property
    def overturned_pairs(self) -> list[tuple[str, int]]:
        return _pairs(self.overturned_histogram)


def _pairs(counts: Sequence[int]) -> list[tuple[str, int]]:
    return [(_tenth(i), n) for i, n in enumerate(counts)]


def _tenth(i: int) -> str:
    step = 1 / HISTOGRAM_BINS
    return f"{i * step:.1f}–{(i + 1) * step:.1f}"


def model_quality(
    model: str,
    decisions: Sequence[Decision],
    *,
    flag_threshold: float,
    block_threshold: float | None,
    target: float = DEFAULT_TARGET,
    min_decisions: int = MIN_DECISIONS,
) -> ModelQuality:
    """The figures of one model from the decisions on images it scored.

    The threshold table and the suggestions come from the decisions on flagged
    images alone: every flag is reviewed, so they are a census of the flag
    band. Audit samples are a sparse random draw from outside it (each one
    stands for 1 / rate images) and moderators may also decide allowed images
    they came across: mixed in, either would skew the shares. Audit samples
    have their own estimates (:func:`audit_estimate`).
    """
    scored = [d for d in decisions if d.score is not None]
    flags = [d for d in scored if d.before == "flagged" and not d.audit]
    table = threshold_table(flags, flags, flag_threshold, block_threshold)
    return ModelQuality(
        model=model,
        decided=len(scored),
        flags=Proportion(sum(d.rejected for d in flags), len(flags)),
        upheld_histogram=_histogram(d for d in flags if d.rejected),
        overturned_histogram=_histogram(d for d in flags if not d.rejected),
        table=table,
        block=suggest_block(table, target, min_decisions, round(flag_threshold, 6)),
        flag=suggest_flag(flags, table, target, min_decisions),
    )


def _histogram(decisions: Iterable[Decision]) -> list[int]:
    return evaluation.histogram((_score(d) for d in decisions), bins=HISTOGRAM_BINS)


def _score(decision: Decision) -> float:
    assert decision.score is not None
    return decision.score


def table_thresholds(flag_threshold: float, block_threshold: float | None) -> list[float]:
    """Every 0.05 from 0 to 1, and the configured thresholds."""
    configured = [flag_threshold] + ([block_threshold] if block_threshold is not None else [])
    return sorted(set(evaluation.thresholds(0.05)) | {round(t, 6) for t in configured})


def threshold_table(
    scored: Sequence[Decision],
    flags: Sequence[Decision],
    flag_threshold: float,
    block_threshold: float | None,
) -> list[ThresholdRow]:
    """For each threshold: the decisions scoring at or above it, and how many were rejected."""
    # Sorted once, counted by bisection: the dashboard reads tens of thousands of decisions.
    every = sorted(_score(d) for d in scored)
    rejected = sorted(_score(d) for d in scored if d.rejected)
    flagged = sorted(_score(d) for d in flags)
    rows = []
    for t in table_thresholds(flag_threshold, block_threshold):
        current = "flag" if t == round(flag_threshold, 6) else ""
        if block_threshold is not None and t == round(block_threshold, 6):
            current = "block"
        rows.append(
            ThresholdRow(
                threshold=t,
                decided=at_or_above(every, t),
                rejected=at_or_above(rejected, t),
                workload=at_or_above(flagged, t) / len(flagged) if flagged else None,
                current=current,
            )
        )
    return rows


def at_or_above(ordered: Sequence[float], threshold: float) -> int:
    """How many of the ascending ``ordered`` scores are >= ``threshold`` (the policy's rule)."""
    return len(ordered) - bisect.bisect_left(ordered, threshold)


def _samples(decisions: Iterable[Decision]) -> list[Sample]:
    return [
        Sample("rejected" if d.rejected else "approved", d.rejected, _score(d)) for d in decisions
    ]


def suggest_block(
    table: Sequence[ThresholdRow],
    target: float,
    min_decisions: int = MIN_DECISIONS,
    flag_threshold: float = 0.0,
) -> BlockSuggestion:
    """The lowest threshold where the rejected share's Wilson lower bound reaches ``target``.

    Blocking at t hides every image scoring t or more without review; with
    ``target`` 0.99, moderators rejected at least 99% of such images (95%
    confidence) in the decisions read. Never below ``flag_threshold``: the
    images under it were not reviewed, so the decisions do not speak for them.
    """
    needed = max(trials_for_lower_bound(target), min_decisions)
    for row in table:
        low = row.rejected_share.low
        if row.threshold < flag_threshold or row.decided < min_decisions:
            continue
        if low is not None and low >= target:
            return BlockSuggestion(target, row.threshold, needed)
    return BlockSuggestion(target, None, needed)


def suggest_flag(
    scored: Sequence[Decision],
    table: Sequence[ThresholdRow],
    target: float,
    min_decisions: int = MIN_DECISIONS,
) -> FlagSuggestion:
    """The highest threshold that still flags ``target`` of the images moderators rejected.

    Only among decided images: those below the flag threshold were never
    queued, so without audit samples this cannot see what flagging misses.
    """
    rejected = sum(d.rejected for d in scored)
    if rejected < min_decisions:
        return FlagSuggestion(target, None, None, None, min_decisions)
    best = None
    for row in table:
        if row.rejected / rejected >= target:
            best = row
    assert best is not None  # threshold 0 keeps every rejected image
    saved = None if best.workload is None else 1 - best.workload
    return FlagSuggestion(target, best.threshold, best.rejected / rejected, saved, min_decisions)


# --- Audit samples ------------------------------------------------------------------


@dataclass(frozen=True)
class AuditEstimate:
    """What the decided audit samples say about the automatic verdicts.

    ``missed``: rejected among the decided samples of allowed images (the miss
    rate); ``wrong_blocks``: approved among the decided samples of blocked ones.
    ``allowed_images``: images allowed now, for the estimated count of explicit
    images among them.
    """

    missed: Proportion
    wrong_blocks: Proportion
    waiting: dict[str, int] = field(default_factory=dict)
    allowed_images: int | None = None

    @property
    def waiting_total(self) -> int:
        return sum(self.waiting.values())

    @property
    def estimated_missed_images(self) -> tuple[float, float, float] | None:
        """(estimate, low, high) explicit images among the allowed ones, or ``None``."""
        share, interval = self.missed.share, self.missed.interval
        if share is None or interval is None or self.allowed_images is None:
            return None
        n = self.allowed_images
        return share * n, interval[0] * n, interval[1] * n


def audit_estimate(
    decisions: Iterable[Decision],
    waiting: dict[str, int] | None = None,
    allowed_images: int | None = None,
) -> AuditEstimate:
    samples = [d for d in decisions if d.audit]
    allowed = [d for d in samples if d.before == "allowed"]
    blocked = [d for d in samples if d.before == "blocked"]
    return AuditEstimate(
        missed=Proportion(sum(d.rejected for d in allowed), len(allowed)),
        wrong_blocks=Proportion(sum(not d.rejected for d in blocked), len(blocked)),
        waiting=dict(waiting or {}),
        allowed_images=allowed_images,
    )


# --- Shadow model -------------------------------------------------------------------


@dataclass(frozen=True)
class ShadowComparison:
    """The live and the shadow model, each at its own flag threshold, on the same decisions.

    ``live``/``shadow``: on every decision carrying both scores (mostly images
    the live model flagged: they favour it on precision and say nothing of
    what it missed); ``live_audit``/``shadow_audit``: on the audit samples
    among them alone, a random draw from the allowed and blocked images (not
    the flag band): what each model does where the live one did not flag.
    """

    live_model: str
    shadow_model: str
    live: Confusion
    shadow: Confusion
    live_audit: Confusion
    shadow_audit: Confusion


def shadow_comparisons(
    decisions: Iterable[Decision], flag_threshold: float, shadow_flag_threshold: float
) -> list[ShadowComparison]:
    pairs: dict[tuple[str, str], list[Decision]] = {}
    for d in decisions:
        if d.score is not None and d.shadow_score is not None:
            pairs.setdefault((d.model, d.shadow_model), []).append(d)
    return [
        _compare(live, shadow, found, flag_threshold, shadow_flag_threshold)
        for (live, shadow), found in sorted(pairs.items())
    ]


def _compare(
    live: str, shadow: str, found: Sequence[Decision], live_t: float, shadow_t: float
) -> ShadowComparison:
    audit = [d for d in found if d.audit]
    return ShadowComparison(
        live_model=live,
        shadow_model=shadow,
        live=evaluation.confusion(_samples(found), live_t),
        shadow=evaluation.confusion(_shadow_samples(found), shadow_t),
        live_audit=evaluation.confusion(_samples(audit), live_t),
        shadow_audit=evaluation.confusion(_shadow_samples(audit), shadow_t),
    )


def _shadow_samples(decisions: Iterable[Decision]) -> list[Sample]:
    return [
        Sample("rejected" if d.rejected else "approved", d.rejected, d.shadow_score or 0.0)
        for d in decisions
    ]


# --- The whole report ---------------------------------------------------------------


@dataclass(frozen=True)
class QualityReport:
    days: int | None
    target: float
    flag_threshold: float
    block_threshold: float | None
    decided: int
    models: list[ModelQuality]
    audit: AuditEstimate
    shadows: list[ShadowComparison]
    shadow_flag_threshold: float
    shadow_configured: bool = False


def report(
    decisions: Sequence[Decision],
    *,
    days: int | None,
    flag_threshold: float,
    block_threshold: float | None,
    shadow_flag_threshold: float,
    target: float = DEFAULT_TARGET,
    waiting: dict[str, int] | None = None,
    allowed_images: int | None = None,
    min_decisions: int = MIN_DECISIONS,
    shadow_configured: bool = False,
) -> QualityReport:
    """Every figure, per model (``model_name`` of the decision) and over all of them."""
    per_model: dict[str, list[Decision]] = {}
    for d in decisions:
        per_model.setdefault(d.model, []).append(d)
    models = [
        model_quality(
            name,
            found,
            flag_threshold=flag_threshold,
            block_threshold=block_threshold,
            target=target,
            min_decisions=min_decisions,
        )
        for name, found in sorted(per_model.items())
    ]
    return QualityReport(
        days=days,
        target=target,
        flag_threshold=flag_threshold,
        block_threshold=block_threshold,
        decided=len(decisions),
        models=[m for m in models if m.decided],
        audit=audit_estimate(decisions, waiting, allowed_images),
        shadows=shadow_comparisons(decisions, flag_threshold, shadow_flag_threshold),
        shadow_flag_threshold=shadow_flag_threshold,
        shadow_configured=shadow_configured,
    )
