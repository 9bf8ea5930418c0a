"""A row's life in the worker: claimed, then finished, retried or given up, with its signals.

Every write here is conditional on the row still being claimed by this worker
(``claim_token``) for the same file, so a result for bytes that were since
replaced never overwrites the newer state.
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from typing import Any

from django.db import connection, models, transaction
from django.db.models import Case, F, Q, Value, When
from django.utils import timezone

from nsfw_moderation import enqueue, policy, signals
from nsfw_moderation.conf import conf
from nsfw_moderation.models import ModeratedImage, ModerationEvent, Status, Verdict

logger = logging.getLogger(__name__)


def claim_batch(token: uuid.UUID, *, first: int | None = None) -> list[ModeratedImage]:
    """Atomically mark up to ``BATCH_SIZE`` queued rows as ours (``claim_token=token``).

    On PostgreSQL, ``SELECT … FOR UPDATE SKIP LOCKED`` lets workers claim
    disjoint batches without waiting on each other. Everywhere, the claiming
    ``UPDATE`` only touches rows still ``queued``, so a row can never be
    claimed twice.
    """
    now = timezone.now()
    candidates = ModeratedImage.objects.filter(
        Q(retry_at__isnull=True) | Q(retry_at__lte=now), status=Status.QUEUED
    ).order_by(_first_then_oldest(first), "updated_at", "pk")
    with transaction.atomic():
        if connection.features.has_select_for_update_skip_locked:
            candidates = candidates.select_for_update(skip_locked=True)
        ids = list(candidates.values_list("pk", flat=True)[: conf.BATCH_SIZE])
        ModeratedImage.objects.filter(pk__in=ids, status=Status.QUEUED).update(
            status=Status.PROCESSING,
            claim_token=token,
            claimed_at=now,
            updated_at=now,
            attempts=F("attempts") + 1,
        )
    return list(ModeratedImage.objects.filter(claim_token=token).select_related("content_type"))


def _first_then_oldest(first: int | None) -> Any:
    return Case(When(pk=first, then=Value(0)), default=Value(1)) if first else Value(1)


def finish(row: ModeratedImage, token: uuid.UUID, **values: Any) -> str:
    """Store a final outcome, unless the row moved on while we worked (``"stale"``)."""
    values = {**values, "claim_token": None, "retry_at": None, "updated_at": timezone.now()}
    with transaction.atomic():
        # One conditional UPDATE is both the check and the write: it matches
        # only while the row is still ours and still holds the same file.
        if not _claimed(row, token).update(**values):
            logger.info("Discarded a stale result for %s (%s)", row.pk, row.file_name)
            return "stale"
        before = row.verdict
        for name, value in values.items():
            setattr(row, name, value)
        done = row.status == Status.DONE
        ModerationEvent.record(
            row,
            ModerationEvent.Kind.CLASSIFIED if done else ModerationEvent.Kind.FAILED,
            verdict_before=before,
            note=row.error or _match_note(row),
        )
    _send_signals(row)
    return str(row.status)


def fail(row: ModeratedImage, token: uuid.UUID, reason: str) -> str:
    """Give the row up as ``failed`` with ``reason``; ``ON_ERROR`` picks its verdict."""
    return finish(row, token, status=Status.FAILED, verdict=policy.verdict_on_error(), error=reason)


def retry_or_fail(row: ModeratedImage, token: uuid.UUID, reason: str) -> str:
    """Queue the row again with exponential back-off, or fail it after ``MAX_ATTEMPTS``."""
    if row.attempts >= conf.MAX_ATTEMPTS:
        return fail(row, token, f"{reason} (gave up after {row.attempts} attempts)")
    # Inline (sync) classification cannot wait, so it retries at once, still
    # bounded by MAX_ATTEMPTS.
    delay = 0 if conf.QUEUE == "sync" else conf.RETRY_DELAY * 2 ** (row.attempts - 1)
    now = timezone.now()
    updated = _claimed(row, token).update(
        status=Status.QUEUED,
        error=reason,
        claim_token=None,
        retry_at=now + timedelta(seconds=delay) if delay else None,
        updated_at=now,
    )
    if not updated:
        return "stale"
    enqueue.enqueue(row.pk, delay=delay)
    return "retrying"


def _claimed(row: ModeratedImage, token: uuid.UUID) -> models.QuerySet[ModeratedImage]:
    """The row, only while it is still ours and still holds the same file."""
    return ModeratedImage.objects.filter(
        pk=row.pk, claim_token=token, status=Status.PROCESSING, file_name=row.file_name
    )


def _match_note(row: ModeratedImage) -> str:
    if row.similar_to_id:
        return f"Looks like rejected image #{row.similar_to_id}."
    if row.reused_from_id:
        return f"Identical to image #{row.reused_from_id}: scores reused."
    return ""


def _send_signals(row: ModeratedImage) -> None:
    kwargs: dict[str, Any] = {"sender": ModeratedImage, "instance": row}
    signals.moderation_completed.send(**kwargs)
    if row.verdict == Verdict.FLAGGED:
        signals.image_flagged.send(**kwargs)
    elif row.verdict == Verdict.BLOCKED:
        signals.image_blocked.send(**kwargs)


def requeue_stale(older_than: float | None = None) -> dict[str, int]:
    """Re-queue rows claimed by a worker that died, and queued rows whose task was lost."""
    now = timezone.now()
    cutoff = now - timedelta(seconds=conf.STALE_AFTER if older_than is None else older_than)
    stuck = ModeratedImage.objects.filter(status=Status.PROCESSING, claimed_at__lt=cutoff)
    failed = [_give_up(row) for row in stuck.filter(attempts__gte=conf.MAX_ATTEMPTS)]
    reset = list(stuck.values_list("pk", flat=True))
    stuck.filter(pk__in=reset).update(
        status=Status.QUEUED, claim_token=None, claimed_at=None, retry_at=None, updated_at=now
    )
    waiting = ModeratedImage.objects.filter(status=Status.QUEUED, updated_at__lt=cutoff).filter(
        Q(retry_at__isnull=True) | Q(retry_at__lte=cutoff)
    )
    waiting_pks = list(waiting.values_list("pk", flat=True))
    # Touched, so the next sweep leaves them alone for another STALE_AFTER.
    ModeratedImage.objects.filter(pk__in=waiting_pks).update(updated_at=now)
    pks = reset + waiting_pks
    # Each task claims a whole batch: one task per BATCH_SIZE rows is enough.
    for pk in pks[:: max(1, conf.BATCH_SIZE)]:
        enqueue.enqueue(pk)
    return {"failed": len(failed), "requeued": len(reset), "enqueued": len(pks)}


def _give_up(row: ModeratedImage) -> str:
    reason = f"The worker stopped while classifying this image, {row.attempts} times."
    return fail(row, row.claim_token or uuid.uuid4(), reason)
