"""One claimed batch, end to end: read → decode → match known images → classify → store.

Files are read through their field's storage and decoded on a few threads by
the safe loader (a video, told apart by its first bytes, by
:mod:`~nsfw_moderation.video`, which samples its frames reading the file a
range at a time), one file per thread at a time: its bytes are dropped once
hashed and decoded, its frames come back shrunk, and a
:class:`~nsfw_moderation.imaging.PixelBudget` shared by the threads bounds the
canvas pixels they decode at once, so a batch of hostile files has a fixed
memory ceiling; the same threads hash each image and make its preview. Images
are then matched against identical and rejected ones, the rest go through the
classifier, and each row gets a stored preview for moderators. A batch goes
through in a few :func:`parts`, the classifier running on its own thread: while
it works on one part, the next is read and decoded and the one before is
stored, so that neither waits for the other (``docs/benchmarks.md``).

Once the live verdicts are stored, the shadow model (if one is set:
:mod:`~nsfw_moderation.worker.shadow`, never acted on) scores the same frames.
A share of the classifier's own ``allowed`` and ``blocked`` verdicts
(``AUDIT_SAMPLE_RATE``) is drawn at random for a moderator to audit
(:func:`audit_sample`). Every outcome is stored by
:mod:`~nsfw_moderation.worker.outcomes`; the reasons stored on rows are ours,
and the details (storage, decoder and model loader messages) go to the log.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import logging
import math
import random
import threading
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import IO, Any

from django.utils import timezone

from nsfw_moderation import banks, blocklist, hashing, imaging, policy, previews, storage, video
from nsfw_moderation.backends import (
    Classifier,
    ModelUnavailable,
    available_cores,
    classify_all,
    get_backend,
)
from nsfw_moderation.conf import conf
from nsfw_moderation.models import HashBank, ModeratedImage, Status, Verdict, VideoFrame
from nsfw_moderation.worker import outcomes, shadow

logger = logging.getLogger(__name__)

#: At most this many threads decode the images of one batch.
DECODE_THREADS = 4
#: A batch goes through the classifier in at most this many parts, each of at
#: least :data:`PART_SIZE` files: the classifier runs on one part while the
#: next is decoded and the one before is stored (``docs/benchmarks.md``).
PARTS = 4
PART_SIZE = 4

#: What a row says when its file could not be read (the storage's error is logged).
UNREADABLE = "Could not read the file from storage; see the worker's log."
#: What rows say when the classifier could not be loaded or failed (its error is logged).
CLASSIFIER_UNAVAILABLE = "The classifier could not be loaded; see the worker's log."
CLASSIFIER_FAILED = "The classifier failed; see the worker's log."


@dataclass
class BatchItem:
    """A decoded image of the batch, and what the pipeline learns about it."""

    row: ModeratedImage
    sha256: str
    frames: list[Any]
    scores: list[dict[str, float]] = field(default_factory=list)
    hashes: list[hashing.Hash] = field(default_factory=list)
    reused_from: ModeratedImage | None = None
    #: Why a person's earlier "no" blocks this image ("" when none does).
    rejected_because: str = ""
    match: banks.Match | None = None
    #: The preview, made on the decoding thread when there is only one frame to show.
    preview: bytes | None = None
    #: The format read from the bytes ("PNG"), whatever the file's name says.
    file_format: str = ""
    #: For a video: the time of each frame, in seconds from its start (``None``: an image).
    times: list[float] | None = None

    def preview_of(self, frame: int | None) -> bytes:
        return self.preview or previews.preview_of(self.frames, frame)


@dataclass
class Refused:
    """A file of the batch that cannot be classified, and why."""

    row: ModeratedImage
    reason: str
    #: The storage could not be read: not the file's fault, it waits.
    unreachable: bool = False
    #: Flagged for a person whatever ON_ERROR says (imaging.ImageRefused).
    flag: bool = False
    sha256: str = ""
    #: Frames to make a preview from, when the pixels themselves decoded.
    frames: list[Any] = field(default_factory=list)


def process(rows: Sequence[ModeratedImage], token: uuid.UUID) -> dict[str, int]:
    """Classify claimed ``rows`` and store every outcome; returns counts by outcome.

    The batch goes through in :func:`parts`: while the classifier runs on one
    part (on a thread of its own: inference releases the GIL), the next part
    is read, decoded and matched, and the part before it is stored.
    """
    counts = {"claimed": len(rows), "done": 0, "failed": 0, "retrying": 0, "stale": 0}
    present = storage.existing_objects(rows)
    readable = []
    for row in rows:
        if (row.content_type_id, row.object_id) in present:
            readable.append(row)
        else:
            _tally(counts, outcomes.fail(row, token, "The object no longer exists."))
    stored: list[BatchItem] = []
    running: _Part | None = None
    with (
        _Decoder(len(readable)) as decoder,
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="nsfw-classify") as inference,
    ):
        classifier = _Classifier(inference)
        for part in parts(readable):
            items = []
            for result in decoder.decode(part):
                if isinstance(result, Refused):
                    _tally(counts, _refuse(result, token))
                else:
                    items.append(result)
            started = classifier.start(items, token, counts)
            if running is not None:
                stored += running.finish(token, counts)
            running = started
        if running is not None:
            stored += running.finish(token, counts)
    # After the live verdicts are stored: the shadow can neither hold them up
    # nor, by running past the task's timeout, have them retried.
    _run_shadow(stored)
    return counts


def parts(rows: Sequence[ModeratedImage]) -> list[Sequence[ModeratedImage]]:
    """``rows`` in up to :data:`PARTS` parts of at least :data:`PART_SIZE` rows (one if fewer)."""
    count = max(1, min(PARTS, len(rows) // PART_SIZE))
    size = max(1, math.ceil(len(rows) / count))
    return [rows[start : start + size] for start in range(0, len(rows), size)]


@dataclass
class _Part:
    """Items of a batch on their way through the classifier."""

    items: list[BatchItem]
    model_name: str
    scores: Future[None] | None

    def finish(self, token: uuid.UUID, counts: dict[str, int]) -> list[BatchItem]:
        """Wait for the classifier and store each item's outcome; returns the items stored."""
        try:
            if self.scores is not None:
                self.scores.result()
        except Exception:
            logger.exception("Classifier failed on %d image(s)", len(self.items))
            for item in self.items:
                _tally(counts, outcomes.retry_or_fail(item.row, token, CLASSIFIER_FAILED))
            return []
        stored = []
        for item in self.items:
            outcome = _store_result(item, token, self.model_name)
            _tally(counts, outcome)
            if outcome == Status.DONE:
                stored.append(item)
        return stored


class _Classifier:
    """The batch's classifier: loaded once, then given each part to run on its own thread."""

    def __init__(self, inference: ThreadPoolExecutor) -> None:
        self.inference = inference
        self.backend: Classifier | None = None
        #: The hash banks' index, read once per batch (``None``: no PDQ here).
        self.index: banks.BankIndex | None = None
        #: Why no item can be classified, and whether that fails and flags them
        #: (the wrong labels) rather than making them wait (no model).
        self.unusable: tuple[str, bool] | None = None

    def start(
        self,
        items: list[BatchItem],
        token: uuid.UUID,
        counts: dict[str, int],
    ) -> _Part | None:
        """Match ``items`` with known images and start classifying the others.

        Items that cannot be classified (no model, the wrong labels, matching
        failed) have their outcome stored at once, and ``None`` is returned.
        """
        if not items:
            return None
        backend = self._load()
        if backend is None:
            assert self.unusable is not None
            reason, misconfigured = self.unusable
            for item in items:
                if misconfigured:
                    _tally(counts, outcomes.fail(item.row, token, reason, flag=True))
                else:
                    # Not the images' fault: they wait, however long it takes to fix.
                    _tally(counts, outcomes.retry_later(item.row, token, reason))
            return None
        try:
            if self.index is None and hashing.available():
                self.index = banks.current_index()
            _match_known_images(items, backend.name, self.index)
        except Exception:
            logger.exception("Matching known images failed on %d image(s)", len(items))
            for item in items:
                _tally(counts, outcomes.retry_or_fail(item.row, token, CLASSIFIER_FAILED))
            return None
        todo = [item for item in items if item.reused_from is None]
        scores = self.inference.submit(_run_classifier, backend, todo) if todo else None
        return _Part(items, backend.name, scores)

    def _load(self) -> Classifier | None:
        if self.backend is None and self.unusable is None:
            try:
                self.backend = get_backend()
            except Exception as exc:
                reason = (
                    str(exc) if isinstance(exc, ModelUnavailable) else f"The model failed: {exc!r}"
                )
                # The row gets our words; what the loader said (paths and all) is logged.
                logger.error("The model cannot be loaded: %s", reason)
                self.unusable = (CLASSIFIER_UNAVAILABLE, False)
                return None
            misconfigured = policy.label_mismatch(self.backend.labels)
            if misconfigured:
                logger.error("Refusing to store verdicts: %s", misconfigured)
                self.backend, self.unusable = None, (misconfigured, True)
        return self.backend


class _Decoder(ThreadPoolExecutor):
    """Reads and decodes a batch's files on a few threads (Pillow releases the GIL).

    No database work there. One pixel budget for the whole batch: one of the
    biggest images the limits allow at a time, or several smaller ones.
    """

    def __init__(self, files: int) -> None:
        super().__init__(max_workers=min(files, available_cores(), DECODE_THREADS) or 1)
        self.limits = storage.decode_limits()
        self.budget = imaging.PixelBudget(self.limits.max_pixels)

    def decode(self, rows: Sequence[ModeratedImage]) -> list[BatchItem | Refused]:
        return list(self.map(self._read_and_decode, rows))

    def _read_and_decode(self, row: ModeratedImage) -> BatchItem | Refused:
        return _read_and_decode(row, self.limits, self.budget)


#: A decoder canvas of at least this many pixels (16 MB as RGBA) has its pages
#: handed back before the next file. The pages of a smaller one are reused by
#: the next decode on its thread, and trimming is not free: it walks every free
#: page of the process, what other work freed too (``docs/benchmarks.md``).
TRIM_PIXELS = 4_000_000


@contextlib.contextmanager
def _admitted(budget: imaging.PixelBudget, pixels: int) -> Iterator[imaging.Admission]:
    """Decode within ``budget``; the pages of a big freed canvas go back before the next."""
    admission = imaging.Admission()
    with budget.admit(pixels):
        try:
            yield admission
        finally:
            if admission.canvas >= TRIM_PIXELS:
                release_freed_memory()


def _read_and_decode(
    row: ModeratedImage, limits: imaging.Limits, budget: imaging.PixelBudget
) -> BatchItem | Refused:
    try:
        with storage.opened(row) as handle:
            # Told apart by their first bytes, whatever the name says.
            head = handle.read(video.HEAD_BYTES)
            handle.seek(0)
            if video.looks_like_video(head):
                return _decode_video(row, handle, budget)
            data = storage.read_limited(handle)
    except storage.InputMissing as exc:
        # A deleted object needs no verdict; a file that is not there (yet) is
        # for a person to look at, whatever ON_ERROR says.
        return Refused(row, str(exc), flag=isinstance(exc, storage.FileMissing))
    except Exception as exc:  # storage unreachable: the file waits until it is back
        logger.warning("Could not read %s", row.file_name, exc_info=exc)
        return Refused(row, UNREADABLE, unreachable=True)
    # The bytes live only in this frame: hashed, decoded, then dropped.
    digest = imaging.sha256(data)
    try:
        decoded = imaging.decode(
            data, limits, name=row.file_name, admit=functools.partial(_admitted, budget)
        )
    except imaging.NameMismatch as exc:
        # Flagged whatever ON_ERROR says; the pixels still make a preview to judge by.
        frames = _frames_or_none(data, limits, budget)
        return Refused(row, str(exc), flag=True, sha256=digest, frames=frames)
    except imaging.ImageDecodeError as exc:
        logger.info("Could not decode %s: %s %s", row.file_name, exc, exc.detail)
        # ON_ERROR may let damaged bytes through, never refused ones.
        refused = isinstance(exc, imaging.ImageRefused)
        return Refused(row, str(exc), flag=refused, sha256=digest)
    item = BatchItem(row=row, sha256=digest, frames=decoded.frames, file_format=decoded.format)
    return _prepared(item)


#: A video decode counts as this many of its largest frames in the batch's
#: :class:`~nsfw_moderation.imaging.PixelBudget`: the decoder holds reference
#: frames and a few of its own buffers, whatever the clip's length.
VIDEO_WEIGHT = 4


def _decode_video(
    row: ModeratedImage, handle: IO[bytes], budget: imaging.PixelBudget
) -> BatchItem | Refused:
    """A clip's sampled frames, read from ``handle`` a range at a time; refusals as for images."""
    limits = storage.video_limits()
    try:
        with budget.admit(limits.max_pixels * VIDEO_WEIGHT):
            decoded = video.decode(handle, limits, name=row.file_name)
    except imaging.NameMismatch as exc:
        # Flagged whatever ON_ERROR says; the frames still make a preview to judge by.
        handle.seek(0)
        frames = _video_frames_or_none(handle, limits)
        return Refused(row, str(exc), flag=True, frames=frames)
    except imaging.ImageDecodeError as exc:
        logger.info("Could not decode %s: %s %s", row.file_name, exc, exc.detail)
        return Refused(row, str(exc), flag=isinstance(exc, imaging.ImageRefused))
    item = BatchItem(
        row=row,
        sha256=decoded.digest,
        frames=[frame.image for frame in decoded.frames],
        file_format=decoded.format,
        times=[frame.time for frame in decoded.frames],
    )
    return _prepared(item)


def _video_frames_or_none(handle: IO[bytes], limits: video.VideoLimits) -> list[Any]:
    try:
        return [frame.image for frame in video.decode(handle, limits).frames]
    except imaging.ImageDecodeError:
        return []


def _prepared(item: BatchItem) -> BatchItem:
    """``item`` with what does not depend on its scores: hashes, and its only frame's preview.

    Made here, on a decoding thread, while the classifier runs on the part
    before. Should either fail, it is made again later, where a failure counts.
    """
    try:
        if hashing.available():
            item.hashes = [hashing.pdq(frame) for frame in item.frames]
        if len(item.frames) == 1:
            item.preview = previews.preview_of(item.frames, 0)
    except Exception:
        logger.debug("Could not prepare %s ahead", item.row.file_name, exc_info=True)
    return item


def release_freed_memory() -> None:
    """Return freed heap pages to the system (glibc's ``malloc_trim``; elsewhere nothing).

    glibc keeps memory that a thread freed in that thread's arena: a big canvas
    decoded on each of two threads would otherwise count twice in the worker's
    resident size, one after the other. Measured in benchmarks/hostile.py.
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim() -> Any:
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc: musl, macOS, Windows
        return None


def _frames_or_none(data: bytes, limits: imaging.Limits, budget: imaging.PixelBudget) -> list[Any]:
    try:
        return imaging.load_frames(data, limits, admit=functools.partial(_admitted, budget))
    except imaging.ImageDecodeError:
        return []


def _refuse(refused: Refused, token: uuid.UUID) -> str:
    if refused.unreachable:
        return outcomes.retry_later(refused.row, token, refused.reason)
    preview = previews.preview_of(refused.frames, 0) if refused.frames else None
    return outcomes.fail(
        refused.row,
        token,
        refused.reason,
        flag=refused.flag,
        sha256=refused.sha256,
        preview=preview,
    )


def _match_known_images(
    items: list[BatchItem], model_name: str, index: banks.BankIndex | None
) -> None:
    """Reuse scores of identical bytes; recognise rejected bytes and images in hash banks."""
    for item in items:
        # A video's frames are classified again: reused scores would be one frame's.
        original = (
            blocklist.identical(item.sha256, model_name, exclude=item.row.pk)
            if item.times is None
            else None
        )
        if original is not None:
            item.reused_from = original
            item.scores = [original.scores]
        if blocklist.rejected_bytes(item.sha256):
            item.rejected_because = "A moderator rejected these exact bytes before."
        if index is not None:
            if len(item.hashes) != len(item.frames):
                item.hashes = [hashing.pdq(frame) for frame in item.frames]
            item.match = banks.lookup(item.hashes, index)


#: One classifier call at a time in this process. With QUEUE="sync", storing a
#: failed part retries its rows at once, in a batch of their own that starts
#: classifying while this batch's next part still is.
_one_call_at_a_time = threading.Lock()


def _run_classifier(backend: Classifier, items: list[BatchItem]) -> None:
    frames = [frame for item in items for frame in item.frames]
    with _one_call_at_a_time:
        results = classify_all(backend, frames)
    position = 0
    for item in items:
        item.scores = results[position : position + len(item.frames)]
        position += len(item.frames)


def _run_shadow(items: list[BatchItem]) -> None:
    """The shadow model's results for images whose live verdicts are stored, stored beside them."""
    if conf.SHADOW_MODEL is None or not items:
        return
    results = shadow.classify([(item.frames, item.reused_from) for item in items])
    for item, result in zip(items, results, strict=True):
        if result is not None:
            shadow.store(item.row, result)


def _usable(scores: list[dict[str, float]]) -> bool:
    return all(math.isfinite(p) for frame in scores for p in frame.values())


def _store_result(item: BatchItem, token: uuid.UUID, model_name: str) -> str:
    worst, score = policy.worst_frame(item.scores)
    if not _usable(item.scores):
        reason = "The classifier returned no usable probabilities (NaN or infinite)."
        preview = item.preview_of(None)
        return outcomes.fail(
            item.row, token, reason, flag=True, sha256=item.sha256, preview=preview
        )
    original = item.reused_from
    animated = len(item.frames) > 1 or item.times is not None
    frame = original.frame if original else (worst if animated else None)
    verdict = _verdict(item, score)
    return outcomes.finish(
        item.row,
        token,
        note=_note(item),
        preview=item.preview_of(frame),
        status=Status.DONE,
        verdict=verdict,
        # Explicit either way: a classification again clears an earlier draw.
        audit=_by_classifier(item) and audit_sample(verdict),
        score=score,
        scores=item.scores[worst],
        frame=frame,
        frame_time=item.times[worst] if item.times else None,
        video_frames=_video_frames(item) if item.times is not None else None,
        **_hash_fields(item),
        reused_from=original,
        sha256=item.sha256,
        file_format=item.file_format,
        model_name=model_name,
        # Filled in once the live verdict is stored (see _run_shadow); emptied
        # here, so that a row classified again keeps no other model's scores.
        **shadow.fields(None),
        error="",
        classified_at=timezone.now(),
    )


def _video_frames(item: BatchItem) -> list[VideoFrame]:
    """Each sampled frame of a video with its time, scores, hash and a small JPEG (unsaved)."""
    assert item.times is not None
    hashes = item.hashes if len(item.hashes) == len(item.frames) else []
    return [
        VideoFrame(
            time=when,
            score=policy.unsafe_score(scores),
            scores=scores,
            pdq=hashes[index].hex if hashes else "",
            jpeg=previews.encode_jpeg(item.frames[index]),
        )
        for index, (when, scores) in enumerate(zip(item.times, item.scores, strict=True))
    ]


def _hash_fields(item: BatchItem) -> dict[str, Any]:
    first = item.hashes[0] if item.hashes else hashing.Hash("", 0)
    match = item.match
    return {
        "pdq": first.hex,
        "pdq_quality": first.quality if first.hex else None,
        "bank_entry_id": match.entry_id if match else None,
        "bank_distance": match.distance if match else None,
        "similar_to_id": match.image_id if match else None,
    }


def _verdict(item: BatchItem, score: float) -> str:
    # A person already said no to these bytes.
    if item.rejected_because:
        return Verdict.BLOCKED
    if item.reused_from is not None and item.reused_from.verdict == Verdict.REJECTED:
        return Verdict.BLOCKED
    action = item.match.action if item.match else None
    if action == HashBank.Action.ALLOW:
        return Verdict.ALLOWED
    if action == HashBank.Action.BLOCK:
        return Verdict.BLOCKED
    verdict = policy.verdict_for(score)
    if action == HashBank.Action.FLAG and verdict == Verdict.ALLOWED:
        return Verdict.FLAGGED
    return verdict


def _by_classifier(item: BatchItem) -> bool:
    """Whether the verdict is the classifier's score through the thresholds alone.

    Not when a person's earlier "no" decided it (these bytes, or the image its
    scores come from, was rejected), nor a hash bank's match: those verdicts
    are not the model's to audit. Scores reused from identical bytes that were
    not rejected are the model's verdict all the same, and are drawn like any
    other: the sample then stands for every automatic verdict the site gets,
    re-uploads included, as the miss rate estimated from it must.
    """
    original = item.reused_from
    return not (
        item.rejected_because
        or (original is not None and original.verdict == Verdict.REJECTED)
        or item.match is not None
    )


def audit_sample(verdict: str) -> bool:
    """Draw this automatic ``verdict`` for an audit, with probability ``conf.audit_rate``."""
    rate = conf.audit_rate(verdict)
    return rate > 0 and audit_draw() < rate


_unpredictable = random.SystemRandom()


def audit_draw() -> float:
    """A number uniform in [0, 1), from the operating system's randomness.

    Not a seeded generator: nobody who sees some draws can tell which uploads
    will be audited next and time the ones that must get through.
    """
    return _unpredictable.random()


def _note(item: BatchItem) -> str:
    if item.rejected_because:
        return item.rejected_because
    if item.match is not None:
        return item.match.note
    if item.reused_from is not None:
        return f"Identical to image #{item.reused_from.pk}: scores reused."
    return ""


def _tally(counts: dict[str, int], outcome: str) -> None:
    counts[outcome] = counts.get(outcome, 0) + 1
