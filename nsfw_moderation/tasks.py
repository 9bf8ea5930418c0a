"""Worker entry points, run by django-q2 (or inline with ``QUEUE="sync"``).

A task claims a batch of queued rows, reads and decodes their files, runs one
classifier pass over them and stores each result under a row lock, so that a
result for a file that has since been replaced is thrown away.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db import connection, models, transaction
from django.db.models import Case, F, Q, Value, When
from django.utils import timezone

from nsfw_moderation import blocklist, imaging, policy, queue, signals
from nsfw_moderation.backends import (
    Classifier,
    ModelUnavailable,
    available_cores,
    get_backend,
)
from nsfw_moderation.conf import conf
from nsfw_moderation.models import ModeratedImage, ModerationEvent, Status, Verdict

logger = logging.getLogger(__name__)

#: At most this many threads decode the images of one batch.
DECODE_THREADS = 4


class InputMissing(Exception):
    """The object or its file is gone: there is nothing left to classify."""


@dataclass
class Decoded:
    row: ModeratedImage
    sha256: str
    frames: list[Any]
    scores: list[dict[str, float]] = field(default_factory=list)
    phash: str = ""
    reused_from: ModeratedImage | None = None
    similar_to: int | None = None


def classify(pk: int | None = None) -> dict[str, int]:
    """Classify row ``pk`` and, in the same pass, up to ``BATCH_SIZE - 1`` other queued rows.

    Running it for a row that is already done (or claimed by another worker)
    does nothing, so a duplicate or retried task is harmless.
    """
    token = uuid.uuid4()
    rows = claim_batch(token, first=pk)
    if not rows:
        return {"claimed": 0}
    return process(rows, token)


def claim_batch(
    token: uuid.UUID, *, first: int | None = None, limit: int | None = None
) -> list[ModeratedImage]:
    """Atomically mark up to ``limit`` queued rows as ours (``claim_token=token``).

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
        ids = list(candidates.values_list("pk", flat=True)[: limit or conf.BATCH_SIZE])
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


def process(rows: Sequence[ModeratedImage], token: uuid.UUID) -> dict[str, int]:
    """Classify claimed ``rows`` and store every outcome."""
    counts = {"claimed": len(rows), "done": 0, "failed": 0, "retrying": 0, "stale": 0}
    present = _present(rows)
    files = [
        (row, data) for row in rows if (data := _read(row, token, counts, present)) is not None
    ]
    decoded = _decode_all(files, token, counts)
    if not decoded:
        return counts
    try:
        backend = get_backend()
        _match_known_images(decoded, backend.name)
        _run_classifier(backend, [item for item in decoded if item.reused_from is None])
    except Exception as exc:
        reason = _model_error_message(exc)
        logger.exception("Classifier failed on %d image(s)", len(decoded))
        for item in decoded:
            _tally(counts, _retry_or_fail(item.row, token, reason))
        return counts
    for item in decoded:
        _tally(counts, _store_result(item, token, backend.name))
    return counts


def _read(
    row: ModeratedImage, token: uuid.UUID, counts: dict[str, int], present: set[tuple[int, str]]
) -> bytes | None:
    try:
        if (row.content_type_id, row.object_id) not in present:
            raise InputMissing("The object no longer exists.")
        return _open(row, _model_of(row))
    except InputMissing as exc:
        _tally(counts, _fail(row, token, str(exc)))
    except Exception as exc:  # storage hiccups: worth another try
        logger.warning("Could not read %s: %r", row.file_name, exc)
        _tally(counts, _retry_or_fail(row, token, f"Could not read the file: {exc}"))
    return None


def _decode_all(
    files: list[tuple[ModeratedImage, bytes]], token: uuid.UUID, counts: dict[str, int]
) -> list[Decoded]:
    """Decode on a few threads (Pillow releases the GIL); database work stays here."""
    limits = decode_limits()
    workers = min(len(files), available_cores(), DECODE_THREADS) or 1
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(lambda file: _load(file[1], limits), files))
    decoded = []
    for (row, data), frames in zip(files, results, strict=True):
        if isinstance(frames, imaging.ImageDecodeError):
            _tally(counts, _fail(row, token, str(frames)))
        else:
            decoded.append(Decoded(row=row, sha256=imaging.sha256(data), frames=frames))
    return decoded


def _load(data: bytes, limits: imaging.Limits) -> list[Any] | imaging.ImageDecodeError:
    try:
        return imaging.load_frames(data, limits)
    except imaging.ImageDecodeError as exc:
        return exc


def read_file(row: ModeratedImage) -> bytes:
    """The bytes of the row's file, read through its field's storage."""
    model = _model_of(row)
    # The base manager, as GenericForeignKey does: a host's default manager
    # may hide rows (soft deletion, drafts) that still hold files to moderate.
    if not model._base_manager.filter(pk=row.object_id).exists():
        raise InputMissing("The object no longer exists.")
    return _open(row, model)


def _model_of(row: ModeratedImage) -> type[models.Model]:
    model = row.content_type.model_class()
    if model is None:
        raise InputMissing(f"The model {row.content_type} no longer exists.")
    return model


def _present(rows: Sequence[ModeratedImage]) -> set[tuple[int, str]]:
    """``(content type, object id)`` of the rows' objects that still exist: a query per model."""
    wanted: dict[int, list[str]] = {}
    for row in rows:
        wanted.setdefault(row.content_type_id, []).append(row.object_id)
    present: set[tuple[int, str]] = set()
    for ct_id, object_ids in wanted.items():
        model = ContentType.objects.get_for_id(ct_id).model_class()
        if model is not None:
            pks = model._base_manager.filter(pk__in=object_ids).values_list("pk", flat=True)
            present.update((ct_id, str(pk)) for pk in pks)
    return present


def _open(row: ModeratedImage, model: type[models.Model]) -> bytes:
    storage = model._meta.get_field(row.field_name).storage  # type: ignore[union-attr]
    try:
        with storage.open(row.file_name, "rb") as handle:
            data: bytes = handle.read(conf.MAX_FILE_SIZE + 1)
    except FileNotFoundError:
        raise InputMissing(f"The file {row.file_name!r} is missing from storage.") from None
    return data


def decode_limits() -> imaging.Limits:
    """The decoding limits from the settings, shared by workers, previews and commands."""
    return imaging.Limits(
        max_pixels=conf.MAX_IMAGE_PIXELS,
        max_bytes=conf.MAX_FILE_SIZE,
        max_frames=conf.MAX_FRAMES,
    )


def _match_known_images(decoded: list[Decoded], model_name: str) -> None:
    """Reuse scores of identical bytes; compare perceptual hashes with rejected images."""
    rejected = blocklist.rejected_hashes() if blocklist.enabled() else []
    for item in decoded:
        original = blocklist.identical(item.sha256, model_name, exclude=item.row.pk)
        if original is not None:
            item.reused_from = original
            item.scores = [original.scores]
        if blocklist.enabled():
            item.phash = blocklist.perceptual_hash(item.frames[0])
            item.similar_to = blocklist.closest_rejected(item.phash, rejected)


def _run_classifier(backend: Classifier, decoded: list[Decoded]) -> None:
    frames = [frame for item in decoded for frame in item.frames]
    results: list[dict[str, float]] = []
    for start in range(0, len(frames), conf.BATCH_SIZE):
        results.extend(backend.classify(frames[start : start + conf.BATCH_SIZE]))
    position = 0
    for item in decoded:
        item.scores = results[position : position + len(item.frames)]
        position += len(item.frames)


def _store_result(item: Decoded, token: uuid.UUID, model_name: str) -> str:
    unsafe = [policy.unsafe_score(scores) for scores in item.scores]
    worst = max(range(len(unsafe)), key=unsafe.__getitem__)
    score = unsafe[worst]
    original = item.reused_from
    return _finish(
        item.row,
        token,
        status=Status.DONE,
        verdict=_verdict(item, score),
        score=score,
        scores=item.scores[worst],
        frame=original.frame if original else (worst if len(item.frames) > 1 else None),
        phash=item.phash,
        reused_from=original,
        similar_to_id=item.similar_to,
        sha256=item.sha256,
        model_name=model_name,
        error="",
        classified_at=timezone.now(),
    )


def _verdict(item: Decoded, score: float) -> str:
    # A person already said no to these bytes, or to an image that looks like them.
    if item.similar_to is not None:
        return Verdict.BLOCKED
    if item.reused_from is not None and item.reused_from.verdict == Verdict.REJECTED:
        return Verdict.BLOCKED
    return policy.verdict_for(score)


def _fail(row: ModeratedImage, token: uuid.UUID, reason: str) -> str:
    return _finish(
        row, token, status=Status.FAILED, verdict=policy.verdict_on_error(), error=reason
    )


def _retry_or_fail(row: ModeratedImage, token: uuid.UUID, reason: str) -> str:
    if row.attempts >= conf.MAX_ATTEMPTS:
        return _fail(row, token, f"{reason} (gave up after {row.attempts} attempts)")
    # Back off exponentially. Inline (sync) classification cannot wait, so it
    # retries at once, still bounded by MAX_ATTEMPTS.
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
    queue.enqueue(row.pk, delay=delay)
    return "retrying"


def _claimed(row: ModeratedImage, token: uuid.UUID) -> models.QuerySet[ModeratedImage]:
    """The row, only while it is still ours and still holds the same file."""
    return ModeratedImage.objects.filter(
        pk=row.pk, claim_token=token, status=Status.PROCESSING, file_name=row.file_name
    )


def _finish(row: ModeratedImage, token: uuid.UUID, **values: Any) -> str:
    """Store a final outcome, unless the row moved on while we worked (stale)."""
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
        ModerationEvent.objects.create(
            image=row,
            kind=(
                ModerationEvent.Kind.CLASSIFIED
                if row.status == Status.DONE
                else ModerationEvent.Kind.FAILED
            ),
            verdict_before=before,
            verdict_after=row.verdict,
            score=row.score,
            model_name=row.model_name,
            file_name=row.file_name,
            note=row.error or _match_note(row),
        )
    _send_signals(row)
    return str(row.status)


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


def _tally(counts: dict[str, int], outcome: str) -> None:
    counts[outcome] = counts.get(outcome, 0) + 1


def _model_error_message(exc: Exception) -> str:
    if isinstance(exc, ModelUnavailable):
        return str(exc)
    return f"The classifier failed: {exc!r}"


def requeue_stale(older_than: float | None = None) -> dict[str, int]:
    """Recover rows a worker dropped: killed mid-batch, or a task the broker lost.

    Installed as a periodic django-q2 ``Schedule``; also run by
    ``manage.py nsfw_requeue``. A row whose worker died ``MAX_ATTEMPTS`` times
    is failed instead of being retried forever.
    """
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
        queue.enqueue(pk)
    return {"failed": len(failed), "requeued": len(reset), "enqueued": len(pks)}


def _give_up(row: ModeratedImage) -> str:
    reason = f"The worker stopped while classifying this image, {row.attempts} times."
    return _fail(row, row.claim_token or uuid.uuid4(), reason)
