"""Dashboard aggregates: counts by verdict and status, queue depth, throughput, charts."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db.models import Count, F, Min, Q, QuerySet
from django.db.models.functions import Floor, TruncDate
from django.utils import timezone

from nsfw_moderation.conf import conf
from nsfw_moderation.models import ModeratedImage, ModerationEvent, Status, Verdict

HISTOGRAM_BINS = 10
FLAGGED_DAYS = 30


def dashboard_stats(now: Any, rows: QuerySet[ModeratedImage] | None = None) -> dict[str, Any]:
    """Everything the dashboard shows, in a handful of aggregate queries."""
    rows = ModeratedImage.objects.all() if rows is None else rows
    return {
        "verdict_counts": _counts(rows, "verdict", Verdict.choices),
        "status_counts": _counts(rows, "status", Status.choices),
        **_queue_depth(rows, now),
        **_throughput(now, _events_of(rows)),
        "score_histogram": score_histogram(rows),
        "flagged_per_day": flagged_per_day(now, _events_of(rows)),
    }


def _counts(rows: QuerySet[ModeratedImage], field: str, choices: Any) -> list[tuple[str, str, int]]:
    found = dict(rows.order_by().values_list(field).annotate(n=Count("pk")))
    return [(value, str(label), found.get(value, 0)) for value, label in choices]


def _queue_depth(rows: QuerySet[ModeratedImage], now: Any) -> dict[str, Any]:
    waiting = rows.filter(status__in=[Status.QUEUED, Status.PROCESSING])
    oldest = waiting.filter(status=Status.QUEUED).aggregate(oldest=Min("updated_at"))["oldest"]
    return {
        "queue_depth": waiting.count(),
        "oldest_queued_age": (now - oldest) if oldest else None,
        "awaiting_review": rows.filter(verdict=Verdict.FLAGGED).count(),
        # Waiting on the model or storage past MAX_ATTEMPTS: retried, never decided.
        "stuck": rows.filter(status=Status.QUEUED, waits__gte=conf.MAX_ATTEMPTS).count(),
    }


def _events_of(rows: QuerySet[ModeratedImage]) -> QuerySet[ModerationEvent]:
    events = ModerationEvent.objects.all()
    # An admin that scopes its rows (get_queryset, e.g. per tenant) scopes their events.
    return events.filter(image__in=rows.values("pk")) if rows.query.has_filters() else events


def _throughput(now: Any, events: QuerySet[ModerationEvent]) -> dict[str, int]:
    recent = events.filter(created_at__gte=now - timedelta(hours=24))
    totals = recent.aggregate(
        classified=Count("pk", filter=Q(kind=ModerationEvent.Kind.CLASSIFIED)),
        failed=Count("pk", filter=Q(kind=ModerationEvent.Kind.FAILED)),
        reviewed=Count("pk", filter=Q(kind=ModerationEvent.Kind.REVIEWED)),
        discovered=Count("pk", filter=Q(kind=ModerationEvent.Kind.DISCOVERED)),
    )
    return {f"{name}_24h": value for name, value in totals.items()}


def score_histogram(rows: QuerySet[ModeratedImage]) -> list[tuple[str, int]]:
    """Scored rows per tenth of the score range: ``[("0.0–0.1", n), ...]``."""
    buckets = (
        rows.filter(score__isnull=False)
        .order_by()
        .annotate(bucket=Floor(F("score") * HISTOGRAM_BINS))
        .values_list("bucket")
        .annotate(n=Count("pk"))
    )
    counts = [0] * HISTOGRAM_BINS
    for bucket, n in buckets:
        # A score of exactly 1.0 belongs in the top bin, not an 11th one.
        counts[min(max(int(bucket), 0), HISTOGRAM_BINS - 1)] += n
    step = 1 / HISTOGRAM_BINS
    return [(f"{i * step:.1f}–{(i + 1) * step:.1f}", n) for i, n in enumerate(counts)]


def flagged_per_day(now: Any, events: QuerySet[ModerationEvent]) -> list[tuple[str, int]]:
    """Images the classifier flagged on each of the last ``FLAGGED_DAYS`` days."""
    today = timezone.localdate(now)
    first = today - timedelta(days=FLAGGED_DAYS - 1)
    found = dict(
        events.filter(
            kind=ModerationEvent.Kind.CLASSIFIED,
            verdict_after=Verdict.FLAGGED,
            created_at__date__gte=first,
        )
        .annotate(day=TruncDate("created_at"))
        .order_by()
        .values_list("day")
        .annotate(n=Count("pk"))
    )
    days = (first + timedelta(days=i) for i in range(FLAGGED_DAYS))
    return [(day.strftime("%m-%d"), found.get(day, 0)) for day in days]
