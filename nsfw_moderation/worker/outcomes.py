"""A row's life in the worker: claimed, then finished, retried or given up, with its signals.

Every write here is conditional on the row still being claimed by this worker
(``claim_token``) for the same file, so a result for bytes that were since
replaced never overwrites the newer state.
"""

from __future__ import annotations

import logging
import math
import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from django.db import connections, models, transaction
from django.db.models import F, Q
from django.utils import timezone

from nsfw_moderation import enqueue, notices, policy, signals
from nsfw_moderation.backends import processes_sharing_cores
from nsfw_moderation.conf import conf
from nsfw_moderation.db import moderation_db, retry_when_locked, write_transaction
from nsfw_moderation.models import (
    ModeratedImage,
    ModerationEvent,
    Preview,
    Status,
    Verdict,
    VideoFrame,
)

logger = logging.getLogger(__name__)


def claim_batch(token: uuid.UUID, *, first: int | None = None) -> list[ModeratedImage]:
    """Atomically mark up to ``BATCH_SIZE`` queued rows as ours (``claim_token=token``).

    A row that already failed an attempt (a worker died on it, or the
    classifier raised) is a suspect: it is claimed alone, so one bad file
    cannot take innocent ones down with it. Fresh rows fill a batch.

    Each part is read in the order of the queued rows' partial index, and the
    claimed rows are fetched back by pk: a claim reads a batch, not the queue.
    On PostgreSQL, ``SELECT … FOR UPDATE SKIP LOCKED`` lets workers claim
    disjoint batches without waiting on each other. Everywhere, the claiming
    ``UPDATE`` only touches rows still ``queued``, so a row can never be
    claimed twice.
    """
    now = timezone.now()
    using = moderation_db()
    due = ModeratedImage.objects.filter(
        Q(retry_at__isnull=True) | Q(retry_at__lte=now), status=Status.QUEUED
    )

    def claim() -> list[int]:
        with transaction.atomic(using=using):
            candidates = due
            if connections[using].features.has_select_for_update_skip_locked:
                candidates = candidates.select_for_update(skip_locked=True)
            ids = _pick(candidates, first, _fair_share(due))
            ModeratedImage.objects.filter(pk__in=ids, status=Status.QUEUED).update(
                status=Status.PROCESSING,
                claim_token=token,
                claimed_at=now,
                updated_at=now,
                attempts=F("attempts") + 1,
            )
            return ids

    # A task for a row that another task's batch already took, the usual case
    # with a backlog, finds nothing: it must not wait for the write lock to see that.
    if not due.using(using).exists():
        return []
    ids = retry_when_locked(claim)
    claimed = ModeratedImage.objects.filter(pk__in=ids, claim_token=token)
    return list(claimed.select_related("content_type"))


def _pick(candidates: models.QuerySet[ModeratedImage], first: int | None, size: int) -> list[int]:
    """The pks to claim: a suspect ``first`` alone, else ``size`` fresh rows, else one suspect.

    ``first`` is looked up by pk, the others read in claiming order (updated_at, pk).
    """
    own = [] if first is None else list(candidates.filter(pk=first).values_list("pk", "attempts"))
    if own and own[0][1] > 0:
        return [own[0][0]]
    ids = [pk for pk, _attempts in own]
    fresh = candidates.filter(attempts=0).exclude(pk__in=ids).order_by("updated_at", "pk")
    ids += fresh.values_list("pk", flat=True)[: size - len(ids)]
    return ids or list(candidates.order_by("updated_at", "pk").values_list("pk", flat=True)[:1])


def _fair_share(due: models.QuerySet[ModeratedImage]) -> int:
    """``BATCH_SIZE``, or this worker's share of a backlog too small for a batch each.

    Otherwise, with two workers and a backlog of three batches, one worker
    takes the last batch alone while the other waits. (Counted without row
    locks: PostgreSQL refuses ``COUNT … FOR UPDATE``.)
    """
    # The workers this one knows of: django-q2's cluster, Celery's prefork pool.
    workers = 1 if conf.QUEUE == "sync" else processes_sharing_cores()
    if workers == 1:
        return conf.BATCH_SIZE
    # Counted up to a batch for every worker: past that, the share is a batch
    # anyway, and a backlog of millions is not counted on every claim.
    enough = workers * conf.BATCH_SIZE
    backlog = due.filter(attempts=0).order_by()[:enough].count()
    return max(1, min(conf.BATCH_SIZE, math.ceil(backlog / workers)))


def finish(
    row: ModeratedImage,
    token: uuid.UUID,
    *,
    note: str = "",
    preview: bytes | None = None,
    video_frames: Sequence[VideoFrame] | None = None,
    **values: Any,
) -> str:
    """Store a final outcome, unless the row moved on while we worked (``"stale"``).

    ``preview``: the JPEG moderators will see of this file, stored with the
    outcome; ``video_frames``: the frames sampled from a video, likewise.
    """
    values = {**values, "claim_token": None, "retry_at": None, "updated_at": timezone.now()}

    def store() -> bool:
        with write_transaction():
            # One conditional UPDATE is both the check and the write: it matches
            # only while the row is still ours and still holds the same file.
            if not _claimed(row, token).update(**values):
                return False
            before = row.verdict
            for name, value in values.items():
                setattr(row, name, value)
            if preview is not None:
                Preview.store(row, preview)
            if video_frames is not None:
                VideoFrame.store(row, video_frames)
            done = row.status == Status.DONE
            ModerationEvent.record(
                row,
                ModerationEvent.Kind.CLASSIFIED if done else ModerationEvent.Kind.FAILED,
                verdict_before=before,
                note=row.error or note,
            )
            # The statement of reasons commits with the restriction it explains.
            if notices.owed_by_machine(row):
                notices.deliver_on_commit(notices.write(row, automated=True))
            return True

    if not retry_when_locked(store):
        logger.info("Discarded a stale result for %s (%s)", row.pk, row.file_name)
        return "stale"
    _send_signals(row)
    return str(row.status)


def fail(
    row: ModeratedImage,
    token: uuid.UUID,
    reason: str,
    *,
    flag: bool = False,
    sha256: str = "",
    preview: bytes | None = None,
) -> str:
    """Give the row up as ``failed`` with ``reason``.

    Its verdict is ``ON_ERROR``'s for content that cannot be decoded; with
    ``flag`` (refused files, misconfiguration, rows that kept killing workers)
    it is flagged for a person whatever ``ON_ERROR`` says. ``preview``: what a
    person will see of the file, when its pixels could be decoded.
    """
    verdict = Verdict.FLAGGED if flag else policy.verdict_on_error()
    # Never an audit sample: the classifier gave no verdict to audit.
    values: dict[str, Any] = {
        "status": Status.FAILED,
        "verdict": verdict,
        "error": reason,
        "audit": False,
    }
    if sha256:
        values["sha256"] = sha256
    return finish(row, token, preview=preview, **values)


def retry_or_fail(row: ModeratedImage, token: uuid.UUID, reason: str) -> str:
    """Try the row again (alone, next time), or fail and flag it after ``MAX_ATTEMPTS``.

    For failures that may be the file's fault, such as the classifier raising on it.
    """
    if row.attempts >= conf.MAX_ATTEMPTS:
        return fail(row, token, f"{reason} (gave up after {row.attempts} attempts)", flag=True)
    return _retry_suspect(row, token, reason)


def retry_later(row: ModeratedImage, token: uuid.UUID, reason: str) -> str:
    """Queue the row again after an exponential back-off, capped at ``RETRY_MAX_DELAY``.

    For failures of the infrastructure (the model cannot load, storage is
    unreachable): they never become a verdict, and they do not count as an
    attempt on the file (``waits`` counts them), so the row stays in batches.
    Past ``MAX_ATTEMPTS`` waits it counts as stuck on the dashboard, and is
    still retried.
    """
    now = timezone.now()
    waits = row.waits + 1
    delay = min(conf.RETRY_DELAY * 2 ** (waits - 1), conf.RETRY_MAX_DELAY)
    # Inline (sync) classification cannot wait: it retries at once, up to
    # MAX_ATTEMPTS; after that the row waits for `nsfw_requeue` or a worker.
    inline = conf.QUEUE == "sync"
    again_now = inline and waits < conf.MAX_ATTEMPTS
    updated = _claimed(row, token).update(
        status=Status.QUEUED,
        error=reason,
        claim_token=None,
        attempts=F("attempts") - 1,
        waits=waits,
        retry_at=None if again_now else now + timedelta(seconds=delay),
        updated_at=now,
    )
    if not updated:
        return "stale"
    if again_now:
        enqueue.enqueue(row.pk)
    elif not inline:
        enqueue.enqueue(row.pk, delay=delay)
    return "retrying"


def _retry_suspect(row: ModeratedImage, token: uuid.UUID, reason: str) -> str:
    """Queue a row the classifier failed on again: counted, and next time claimed alone."""
    delay = 0 if conf.QUEUE == "sync" else conf.RETRY_DELAY * 2 ** max(row.attempts - 1, 0)
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


def _send_signals(row: ModeratedImage) -> None:
    kwargs: dict[str, Any] = {"sender": ModeratedImage, "instance": row}
    signals.moderation_completed.send(**kwargs)
    if row.verdict == Verdict.FLAGGED:
        signals.image_flagged.send(**kwargs)
    elif row.verdict == Verdict.BLOCKED:
        signals.image_blocked.send(**kwargs)


def requeue_stale(older_than: float | None = None) -> dict[str, int]:
    """Re-queue rows claimed by a worker that died, and queued rows whose task was lost."""
    # A sweep is safe to run again: a locked SQLite database gets a retry.
    return retry_when_locked(lambda: _requeue_stale(older_than))


#: Rows one sweep handles at most: a backlog is worked through over several runs.
SWEEP_LIMIT = 2000


def _requeue_stale(older_than: float | None) -> dict[str, int]:
    now = timezone.now()
    cutoff = now - timedelta(seconds=conf.STALE_AFTER if older_than is None else older_than)
    stuck = ModeratedImage.objects.filter(status=Status.PROCESSING, claimed_at__lt=cutoff)
    dead = stuck.filter(attempts__gte=conf.MAX_ATTEMPTS).order_by("pk")[:SWEEP_LIMIT]
    failed = [_give_up(row) for row in dead]
    reset = list(stuck.order_by("pk").values_list("pk", flat=True)[:SWEEP_LIMIT])
    ModeratedImage.objects.filter(pk__in=reset, status=Status.PROCESSING).update(
        status=Status.QUEUED, claim_token=None, claimed_at=None, retry_at=None, updated_at=now
    )
    waiting = ModeratedImage.objects.filter(status=Status.QUEUED, updated_at__lt=cutoff).filter(
        Q(retry_at__isnull=True) | Q(retry_at__lte=cutoff)
    )
    waiting_pks = list(waiting.order_by("pk").values_list("pk", "attempts")[:SWEEP_LIMIT])
    # Touched, so the next sweep leaves them alone for another STALE_AFTER.
    ModeratedImage.objects.filter(pk__in=[pk for pk, _ in waiting_pks]).update(updated_at=now)
    # A row whose worker died is a suspect and gets a task of its own (it is
    # claimed alone); fresh rows are claimed by the batch: a task per BATCH_SIZE.
    suspects = reset + [pk for pk, attempts in waiting_pks if attempts]
    fresh = [pk for pk, attempts in waiting_pks if not attempts]
    for pk in suspects + fresh[:: max(1, conf.BATCH_SIZE)]:
        enqueue.enqueue(pk)
    return {
        "failed": len(failed),
        "requeued": len(reset),
        "enqueued": len(reset) + len(waiting_pks),
    }


def _give_up(row: ModeratedImage) -> str:
    reason = f"The worker stopped while classifying this image, {row.attempts} times."
    return fail(row, row.claim_token or uuid.uuid4(), reason, flag=True)
