"""One claimed batch, end to end: read → decode → match known images → classify → store.

Files are read through their field's storage, decoded on a few threads by
the safe loader, matched against identical and rejected images, and the rest
go through the classifier in one pass. Every outcome is stored by
:mod:`~nsfw_moderation.worker.outcomes`.
"""

from __future__ import annotations

import logging
import math
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from django.utils import timezone

from nsfw_moderation import blocklist, imaging, policy, storage
from nsfw_moderation.backends import Classifier, ModelUnavailable, available_cores, get_backend
from nsfw_moderation.conf import conf
from nsfw_moderation.models import ModeratedImage, Status, Verdict
from nsfw_moderation.worker import outcomes

logger = logging.getLogger(__name__)

#: At most this many threads decode the images of one batch.
DECODE_THREADS = 4


@dataclass
class BatchItem:
    """A decoded image of the batch, and what the pipeline learns about it."""

    row: ModeratedImage
    sha256: str
    frames: list[Any]
    scores: list[dict[str, float]] = field(default_factory=list)
    phash: str = ""
    reused_from: ModeratedImage | None = None
    #: Why a person's earlier "no" blocks this image ("" when none does).
    rejected_because: str = ""
    similar_to: int | None = None


def process(rows: Sequence[ModeratedImage], token: uuid.UUID) -> dict[str, int]:
    """Classify claimed ``rows`` and store every outcome; returns counts by outcome."""
    counts = {"claimed": len(rows), "done": 0, "failed": 0, "retrying": 0, "stale": 0}
    present = storage.existing_objects(rows)
    files = [
        (row, data) for row in rows if (data := _read(row, token, counts, present)) is not None
    ]
    items = _decode_all(files, token, counts)
    if not items:
        return counts
    try:
        backend = get_backend()
    except Exception as exc:
        # Not the images' fault: they wait, however long it takes to fix.
        reason = str(exc) if isinstance(exc, ModelUnavailable) else f"The model failed: {exc!r}"
        logger.error("The model cannot be loaded: %s", reason)
        for item in items:
            _tally(counts, outcomes.retry_later(item.row, token, reason))
        return counts
    misconfigured = policy.label_mismatch(backend.labels)
    if misconfigured:
        logger.error("Refusing to store verdicts: %s", misconfigured)
        for item in items:
            _tally(counts, outcomes.fail(item.row, token, misconfigured, flag=True))
        return counts
    try:
        _match_known_images(items, backend.name)
        _run_classifier(backend, [item for item in items if item.reused_from is None])
    except Exception as exc:
        logger.exception("Classifier failed on %d image(s)", len(items))
        for item in items:
            _tally(
                counts, outcomes.retry_or_fail(item.row, token, f"The classifier failed: {exc!r}")
            )
        return counts
    for item in items:
        _tally(counts, _store_result(item, token, backend.name))
    return counts


def _read(
    row: ModeratedImage, token: uuid.UUID, counts: dict[str, int], present: set[tuple[int, str]]
) -> bytes | None:
    try:
        if (row.content_type_id, row.object_id) not in present:
            raise storage.InputMissing("The object no longer exists.")
        return storage.open_file(row)
    except storage.InputMissing as exc:
        # A deleted object needs no verdict; a file that is not there (yet) is
        # for a person to look at, whatever ON_ERROR says.
        missing_file = isinstance(exc, storage.FileMissing)
        _tally(counts, outcomes.fail(row, token, str(exc), flag=missing_file))
    except Exception as exc:  # storage unreachable: the file waits until it is back
        logger.warning("Could not read %s: %r", row.file_name, exc)
        _tally(counts, outcomes.retry_later(row, token, f"Could not read the file: {exc}"))
    return None


def _decode_all(
    files: list[tuple[ModeratedImage, bytes]], token: uuid.UUID, counts: dict[str, int]
) -> list[BatchItem]:
    """Decode on a few threads (Pillow releases the GIL); database work stays here."""
    limits = storage.decode_limits()
    workers = min(len(files), available_cores(), DECODE_THREADS) or 1
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(lambda file: _load(file[1], limits), files))
    items = []
    for (row, data), frames in zip(files, results, strict=True):
        if isinstance(frames, imaging.ImageDecodeError):
            # ON_ERROR may let damaged bytes through, never refused ones.
            refused = isinstance(frames, imaging.ImageRefused)
            outcome = outcomes.fail(
                row, token, str(frames), flag=refused, sha256=imaging.sha256(data)
            )
            _tally(counts, outcome)
        else:
            items.append(BatchItem(row=row, sha256=imaging.sha256(data), frames=frames))
    return items


def _load(data: bytes, limits: imaging.Limits) -> list[Any] | imaging.ImageDecodeError:
    try:
        return imaging.load_frames(data, limits)
    except imaging.ImageDecodeError as exc:
        return exc


def _match_known_images(items: list[BatchItem], model_name: str) -> None:
    """Reuse scores of identical bytes; recognise images a moderator rejected."""
    rejected = blocklist.rejected_hashes() if blocklist.enabled() else []
    for item in items:
        original = blocklist.identical(item.sha256, model_name, exclude=item.row.pk)
        if original is not None:
            item.reused_from = original
            item.scores = [original.scores]
        if blocklist.rejected_bytes(item.sha256):
            item.rejected_because = "A moderator rejected these exact bytes before."
        if blocklist.enabled():
            item.phash = blocklist.perceptual_hash(item.frames[0])
            match = blocklist.closest_rejected(item.phash, rejected)
            if match is not None:
                item.similar_to = match.image_id
                item.rejected_because = item.rejected_because or (
                    f"Looks like rejected image #{match.image_id}."
                    if match.image_id
                    else "Looks like an image a moderator rejected."
                )


def _run_classifier(backend: Classifier, items: list[BatchItem]) -> None:
    frames = [frame for item in items for frame in item.frames]
    results: list[dict[str, float]] = []
    for start in range(0, len(frames), conf.BATCH_SIZE):
        results.extend(backend.classify(frames[start : start + conf.BATCH_SIZE]))
    position = 0
    for item in items:
        item.scores = results[position : position + len(item.frames)]
        position += len(item.frames)


def _store_result(item: BatchItem, token: uuid.UUID, model_name: str) -> str:
    worst, score = policy.worst_frame(item.scores)
    if not all(math.isfinite(p) for scores in item.scores for p in scores.values()):
        reason = "The classifier returned no usable probabilities (NaN or infinite)."
        return outcomes.fail(item.row, token, reason, flag=True, sha256=item.sha256)
    original = item.reused_from
    return outcomes.finish(
        item.row,
        token,
        note=_note(item),
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


def _verdict(item: BatchItem, score: float) -> str:
    # A person already said no to these bytes, or to an image that looks like them.
    if item.rejected_because:
        return Verdict.BLOCKED
    if item.reused_from is not None and item.reused_from.verdict == Verdict.REJECTED:
        return Verdict.BLOCKED
    return policy.verdict_for(score)


def _note(item: BatchItem) -> str:
    if item.rejected_because:
        return item.rejected_because
    if item.reused_from is not None:
        return f"Identical to image #{item.reused_from.pk}: scores reused."
    return ""


def _tally(counts: dict[str, int], outcome: str) -> None:
    counts[outcome] = counts.get(outcome, 0) + 1
