"""Dashboard aggregates: counts by verdict and status, queue depth, throughput, charts, appeals.

The model's quality, measured on the moderators' decisions, comes from
:mod:`nsfw_moderation.labels`.

Counts per state come from :mod:`nsfw_moderation.counts` (kept by the
database, not counted per view); the rest reads the recent end of an index:
the oldest queued row, and the events of the last 24 hours and 30 days.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any

from django.db.models import Count, Min, QuerySet
from django.db.models.functions import TruncDate
from django.utils import timezone

from nsfw_moderation import counts, labels
from nsfw_moderation.conf import conf
from nsfw_moderation.counts import HISTOGRAM_BINS, Group
from nsfw_moderation.models import Appeal, ModeratedImage, ModerationEvent, Status, Verdict

FLAGGED_DAYS = 30


def dashboard_stats(now: Any, rows: QuerySet[ModeratedImage] | None = None) -> dict[str, Any]:
    """Everything the dashboard shows, in a handful of queries that do not grow with the rows."""
    rows = ModeratedImage.objects.all() if rows is None else rows
    found = counts.groups(rows)
    return {
        "verdict_counts": _totals(found, "verdict", Verdict.choices),
        "status_counts": _totals(found, "status", Status.choices),
        "queue_depth": sum(g.n for g in found if g.status in (Status.QUEUED, Status.PROCESSING)),
        "oldest_queued_age": _oldest_queued_age(rows, now),
        "awaiting_review": sum(g.n for g in found if g.verdict == Verdict.FLAGGED),
        # Waiting on the model or storage past MAX_ATTEMPTS: retried, never decided.
        "stuck": rows.filter(status=Status.QUEUED, waits__gte=conf.MAX_ATTEMPTS).count(),
        **_throughput(now, labels.events_of(rows)),
        "score_histogram": score_histogram(found),
        "flagged_per_day": flagged_per_day(now, labels.events_of(rows)),
        "appeals": appeal_stats(now, rows),
        # Two queries: the decisions of the period, the audit samples waiting.
        "quality": labels.quality_report(now, rows, found=found),
    }


def _totals(found: list[Group], field: str, choices: Any) -> list[tuple[str, str, int]]:
    return [
        (value, str(label), sum(g.n for g in found if getattr(g, field) == value))
        for value, label in choices
    ]


def _oldest_queued_age(rows: QuerySet[ModeratedImage], now: Any) -> timedelta | None:
    # The first entry of the queued rows' index.
    oldest = rows.filter(status=Status.QUEUED).aggregate(oldest=Min("updated_at"))["oldest"]
    return (now - oldest) if oldest else None


def _throughput(now: Any, events: QuerySet[ModerationEvent]) -> dict[str, int]:
    recent = events.filter(created_at__gte=now - timedelta(hours=24))
    # COUNT(*) per kind: read from the (created_at, kind) index alone.
    found = dict(recent.order_by().values_list("kind").annotate(n=Count("*")))
    kind = ModerationEvent.Kind
    shown = (kind.CLASSIFIED, kind.FAILED, kind.REVIEWED, kind.DISCOVERED)
    return {f"{k}_24h": found.get(k, 0) for k in shown}


def score_histogram(found: list[Group]) -> list[tuple[str, int]]:
    """Scored rows per tenth of the score range: ``[("0.0–0.1", n), ...]``."""
    tenths = [0] * HISTOGRAM_BINS
    for group in found:
        if group.score_bucket is not None:
            tenths[group.score_bucket] += group.n
    step = 1 / HISTOGRAM_BINS
    return [(f"{i * step:.1f}–{(i + 1) * step:.1f}", n) for i, n in enumerate(tenths)]


def flagged_per_day(now: Any, events: QuerySet[ModerationEvent]) -> list[tuple[str, int]]:
    """Images the classifier flagged on each of the last ``FLAGGED_DAYS`` days."""
    today = timezone.localdate(now)
    first = today - timedelta(days=FLAGGED_DAYS - 1)
    # From the first day's local midnight: a range of the index, where
    # created_at__date would convert every event's time first.
    since = timezone.make_aware(datetime.combine(first, time.min))
    found = dict(
        events.filter(
            kind=ModerationEvent.Kind.CLASSIFIED,
            verdict_after=Verdict.FLAGGED,
            created_at__gte=since,
        )
        .annotate(day=TruncDate("created_at"))
        .order_by()
        .values_list("day")
        .annotate(n=Count("*"))
    )
    days = (first + timedelta(days=i) for i in range(FLAGGED_DAYS))
    return [(day.strftime("%m-%d"), found.get(day, 0)) for day in days]


APPEAL_DAYS = 90


@dataclass
class AppealFigures:
    """Appeals against the decisions of one source (a model, or a reviewer), or of all.

    ``upheld``: the user was right and the restriction was lifted; ``not_upheld``:
    the restriction stays; ``waiting``: not decided yet.
    """

    source: str
    received: int = 0
    upheld: int = 0
    not_upheld: int = 0
    times: list[timedelta] = field(default_factory=list)

    @property
    def waiting(self) -> int:
        return self.received - self.upheld - self.not_upheld

    @property
    def median_time_to_decide(self) -> timedelta | None:
        if not self.times:
            return None
        return timedelta(seconds=statistics.median(t.total_seconds() for t in self.times))

    def add(self, appeal: Appeal) -> None:
        self.received += 1
        outcome = getattr(appeal, "outcome", None)
        if outcome is not None:
            self.upheld += outcome.upheld
            self.not_upheld += not outcome.upheld
            self.times.append(outcome.created_at - appeal.created_at)


def appeal_stats(now: Any, rows: QuerySet[ModeratedImage] | None = None) -> dict[str, Any]:
    """Appeals received in the last ``APPEAL_DAYS`` days: all, per model and per reviewer.

    "Per model" and "per reviewer" group the appeals by who made the decision
    appealed against: the classifier (automatic blocks) or a moderator.
    """
    appeals = Appeal.objects.filter(created_at__gte=now - timedelta(days=APPEAL_DAYS))
    if rows is not None and rows.query.has_filters():
        appeals = appeals.filter(statement__image__in=rows.values("pk"))
    total = AppealFigures("")
    per_model: dict[str, AppealFigures] = {}
    per_reviewer: dict[str, AppealFigures] = {}
    for appeal in appeals.select_related("outcome", "statement__decided_by").order_by("pk"):
        statement = appeal.statement
        total.add(appeal)
        if statement.automated:
            key, table = statement.model_name or "–", per_model
        else:
            key, table = str(statement.decided_by or "–"), per_reviewer
        table.setdefault(key, AppealFigures(key)).add(appeal)
    return {
        "days": APPEAL_DAYS,
        "total": total,
        "per_model": sorted(per_model.values(), key=lambda figures: figures.source),
        "per_reviewer": sorted(per_reviewer.values(), key=lambda figures: figures.source),
    }
