"""The moderators' decisions as labels, read from the event log; the quality report from them.

Every approve or reject is a ``reviewed`` event that names the bytes decided
(content type, object id, field, SHA-256) and carries the scores the moderator
saw. They are read in one pass over the (kind, verdict, date) index, streamed,
and the latest decision per bytes is kept (:func:`quality.latest_per_bytes`);
the figures come from :mod:`nsfw_moderation.quality`.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from django.db.models import Count, Q, QuerySet

from nsfw_moderation import counts, quality
from nsfw_moderation.conf import AUDITED_VERDICTS, conf
from nsfw_moderation.models import ModeratedImage, ModerationEvent, Verdict
from nsfw_moderation.quality import Decision, DecisionEvent, QualityReport

#: The decisions of this many days, by default: as many as the appeals the dashboard shows.
DAYS = 90

_FIELDS = (
    "pk",
    "created_at",
    "content_type_id",
    "object_id",
    "field_name",
    "sha256",
    "verdict_before",
    "verdict_after",
    "audit",
    "score",
    "model_name",
    "shadow_score",
    "shadow_model_name",
    "file_name",
    "actor_name",
)


def events_of(rows: QuerySet[ModeratedImage] | None) -> QuerySet[ModerationEvent]:
    """The events of ``rows``: all of them, unless an admin scopes its rows (e.g. per tenant)."""
    events = ModerationEvent.objects.all()
    if rows is None or not rows.query.has_filters():
        return events
    return events.filter(image__in=rows.values("pk"))


def decisions(
    now: Any,
    rows: QuerySet[ModeratedImage] | None = None,
    *,
    days: int | None = DAYS,
    model: str | None = None,
) -> list[Decision]:
    """The latest decision per image bytes of the last ``days`` days (``None``: all).

    Decisions are a moderator's approve or reject, and the decision on an
    appeal against an audit sample (which settles the sample: upheld, the
    block was wrong; not upheld, it was right). With ``model``, the images
    whose latest decision was made on that model's scores.
    """
    kind = ModerationEvent.Kind
    events = events_of(rows).filter(
        Q(kind=kind.REVIEWED, verdict_after__in=(Verdict.APPROVED, Verdict.REJECTED))
        | Q(kind=kind.APPEAL_DECIDED, audit=True)
    )
    if days is not None:
        events = events.filter(created_at__gte=now - timedelta(days=days))
    found = events.order_by().values_list(*_FIELDS).iterator(chunk_size=2000)
    latest = quality.latest_per_bytes(_decision_events(found))
    # After the latest decision per bytes is known: an image decided again on
    # another model's scores is no longer this model's.
    return latest if model is None else [d for d in latest if d.model == model]


def _decision_events(found: Iterator[tuple[Any, ...]]) -> Iterator[DecisionEvent]:
    for (
        pk,
        created_at,
        content_type_id,
        object_id,
        field_name,
        sha256,
        before,
        after,
        audit,
        score,
        model_name,
        shadow_score,
        shadow_model,
        file_name,
        reviewer,
    ) in found:
        decision = Decision(
            key=(content_type_id, object_id, field_name, sha256),
            # A rejection, or an appeal that kept a restriction.
            rejected=after != Verdict.APPROVED,
            before=before,
            audit=audit,
            score=score,
            model=model_name,
            shadow_score=shadow_score,
            shadow_model=shadow_model,
            decided_at=created_at,
            file_name=file_name,
            reviewer=reviewer,
        )
        yield DecisionEvent(order=(created_at, pk), decision=decision)


def waiting_samples(rows: QuerySet[ModeratedImage]) -> dict[str, int]:
    """Audit samples waiting for a moderator, per verdict (from the audit rows' index).

    Waiting: still marked and still at the automatic verdict a sample is drawn from.
    """
    samples = rows.filter(audit=True, verdict__in=AUDITED_VERDICTS)
    waiting = samples.order_by().values_list("verdict").annotate(n=Count("*"))
    return dict(waiting)


def allowed_now(found: list[counts.Group]) -> int:
    return sum(g.n for g in found if g.verdict == Verdict.ALLOWED)


def quality_report(
    now: Any,
    rows: QuerySet[ModeratedImage] | None = None,
    *,
    days: int | None = DAYS,
    target: float = quality.DEFAULT_TARGET,
    model: str | None = None,
    found: list[counts.Group] | None = None,
) -> QualityReport:
    """The quality report of the last ``days`` days, at the current settings.

    ``found``: the kept counts of ``rows`` when the caller has them already.
    """
    rows = ModeratedImage.objects.all() if rows is None else rows
    found = counts.groups(rows) if found is None else found
    return quality.report(
        decisions(now, rows, days=days, model=model),
        days=days,
        flag_threshold=conf.FLAG_THRESHOLD,
        block_threshold=conf.BLOCK_THRESHOLD,
        shadow_flag_threshold=conf.shadow("FLAG_THRESHOLD"),
        target=target,
        waiting=waiting_samples(rows),
        allowed_images=allowed_now(found),
        shadow_configured=bool(conf.SHADOW_MODEL),
    )
