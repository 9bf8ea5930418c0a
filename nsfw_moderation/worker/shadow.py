"""The shadow model in the worker: run after the live one, stored beside it, never acted on.

``SHADOW_MODEL`` names a second model that a site wants to compare with the
live one on its moderators' decisions before switching. Once the live
verdicts of a batch are stored, :func:`classify` runs the shadow on the same
frames, on the worker's threads, and gives each image its shadow unsafe score
(the worst frame by the shadow's own ``UNSAFE_LABELS``), that frame's scores
and the shadow's model name; :func:`store` writes them beside the live ones,
only while the row still holds that classification.

Nothing here can change a live outcome, delay it or fail it: the live verdicts
are stored first, and when the shadow cannot be loaded, has none of its unsafe
labels, raises or returns NaN, that is logged once for the batch and the
images concerned keep no shadow scores.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from PIL import Image

from nsfw_moderation import policy
from nsfw_moderation.backends import Classifier, ModelUnavailable, classify_all, get_shadow_backend
from nsfw_moderation.conf import conf
from nsfw_moderation.db import moderation_db, retry_when_locked
from nsfw_moderation.models import ModeratedImage, Status

logger = logging.getLogger(__name__)

#: Where a mismatch of the shadow's labels is fixed.
UNSAFE_LABELS_SETTING = "NSFW_MODERATION['SHADOW_MODEL']['UNSAFE_LABELS']"


@dataclass(frozen=True)
class ShadowResult:
    """What the shadow model said about one image."""

    score: float
    scores: dict[str, float]
    model_name: str


class ShadowUnusable(Exception):
    """The shadow model cannot judge this batch; the message says why."""


#: An image is one of these: its frames, and the row its live scores were reused from.
ShadowInput = tuple[Sequence[Image.Image], ModeratedImage | None]


def fields(result: ShadowResult | None) -> dict[str, Any]:
    """The row's shadow fields for ``result``: empty without one.

    Written with every classified outcome, so that a row classified again
    never keeps a shadow score from another model, or from no model now.
    """
    if result is None:
        return {"shadow_score": None, "shadow_scores": {}, "shadow_model_name": ""}
    return {
        "shadow_score": result.score,
        "shadow_scores": result.scores,
        "shadow_model_name": result.model_name,
    }


def store(row: ModeratedImage, result: ShadowResult) -> bool:
    """Write ``result`` beside ``row``'s live verdict, if the row still holds that verdict.

    The live outcome was stored first; a file replaced or re-queued since
    (another SHA-256, status or classification time) keeps no stale scores.
    """
    still = ModeratedImage.objects.using(moderation_db()).filter(
        pk=row.pk, sha256=row.sha256, status=Status.DONE, classified_at=row.classified_at
    )
    updated = retry_when_locked(lambda: still.update(**fields(result)))
    if updated:
        for name, value in fields(result).items():
            setattr(row, name, value)
    return bool(updated)


def classify(images: Sequence[ShadowInput]) -> list[ShadowResult | None]:
    """The shadow's result for each of ``images`` (``None`` where there is none); never raises."""
    results: list[ShadowResult | None] = [None] * len(images)
    if conf.SHADOW_MODEL is None or not images:
        return results
    try:
        _classify(images, results)
    except (ModelUnavailable, ShadowUnusable) as exc:
        logger.warning("No shadow scores for %d image(s): %s", len(images), exc)
    except Exception:
        failed = "No shadow scores for %d image(s): the shadow model failed"
        logger.warning(failed, len(images), exc_info=True)
    return results


def _classify(images: Sequence[ShadowInput], results: list[ShadowResult | None]) -> None:
    backend = get_shadow_backend()
    if backend is None:  # SHADOW_MODEL was unset meanwhile
        return
    unsafe = conf.shadow("UNSAFE_LABELS")
    misconfigured = policy.label_mismatch(backend.labels, unsafe, setting=UNSAFE_LABELS_SETTING)
    if misconfigured:
        raise ShadowUnusable(misconfigured)
    todo = []
    for index, (_frames, original) in enumerate(images):
        results[index] = _reused(original, backend.name, unsafe)
        if results[index] is None:
            todo.append(index)
    scores = _scores_per_image(backend, [images[index][0] for index in todo])
    unusable = 0
    for index, frame_scores in zip(todo, scores, strict=True):
        if not all(math.isfinite(p) for frame in frame_scores for p in frame.values()):
            unusable += 1
            continue
        worst, score = policy.worst_frame(frame_scores, unsafe)
        results[index] = ShadowResult(score, dict(frame_scores[worst]), backend.name)
    if unusable:
        logger.warning(
            "No shadow scores for %d image(s): the shadow model returned no usable "
            "probabilities (NaN or infinite)",
            unusable,
        )


def _reused(
    original: ModeratedImage | None, model_name: str, unsafe: Sequence[str]
) -> ShadowResult | None:
    """The shadow result of identical bytes, when the same shadow model gave it."""
    if original is None or original.shadow_model_name != model_name or not original.shadow_scores:
        return None
    scores = dict(original.shadow_scores)
    return ShadowResult(policy.unsafe_score(scores, unsafe), scores, model_name)


def _scores_per_image(
    backend: Classifier, images: Sequence[Sequence[Image.Image]]
) -> list[list[dict[str, float]]]:
    """The shadow's scores of each image's frames, classified in one pass."""
    frames = [frame for image in images for frame in image]
    scores = classify_all(backend, frames)
    if len(scores) != len(frames):
        raise ShadowUnusable(
            f"the shadow model returned {len(scores)} result(s) for {len(frames)} frame(s)"
        )
    per_image, position = [], 0
    for image in images:
        per_image.append(list(scores[position : position + len(image)]))
        position += len(image)
    return per_image
