"""Turn classifier scores into a verdict: thresholds, unsafe labels, the worst frame."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from nsfw_moderation.conf import conf
from nsfw_moderation.models import Verdict


def unsafe_score(scores: Mapping[str, float], labels: Sequence[str] | None = None) -> float:
    """The probability that the image is unsafe: the sum over ``labels`` (``UNSAFE_LABELS``)."""
    unsafe = conf.UNSAFE_LABELS if labels is None else labels
    total = sum(scores.get(label, 0.0) for label in unsafe)
    return min(max(total, 0.0), 1.0)


def label_mismatch(
    labels: Sequence[str],
    unsafe: Sequence[str] | None = None,
    *,
    setting: str = "NSFW_MODERATION['UNSAFE_LABELS']",
) -> str:
    """Why scores from a model with ``labels`` cannot be judged ("" when they can).

    ``unsafe`` (``UNSAFE_LABELS``, from ``setting``) that name none of the
    model's labels would score every image 0 and allow it: that is a
    misconfiguration, never a verdict.
    """
    unsafe = conf.UNSAFE_LABELS if unsafe is None else unsafe
    if set(unsafe) & set(labels):
        return ""
    return (
        f"UNSAFE_LABELS {list(unsafe)} name none of the model's labels "
        f"{list(labels)}: no verdict can be given. Fix {setting}."
    )


def worst_frame(
    frame_scores: Sequence[Mapping[str, float]], labels: Sequence[str] | None = None
) -> tuple[int, float]:
    """``(index, unsafe score)`` of the most unsafe frame: an animation is as unsafe as it.

    ``labels``: the unsafe labels (default ``UNSAFE_LABELS``).
    """
    unsafe = [unsafe_score(scores, labels) for scores in frame_scores]
    worst = max(range(len(unsafe)), key=unsafe.__getitem__)
    return worst, unsafe[worst]


def verdict_for(score: float) -> str:
    """``blocked``, ``flagged`` or ``allowed`` for an unsafe score in [0, 1]."""
    block = conf.BLOCK_THRESHOLD
    if block is not None and score >= block:
        return Verdict.BLOCKED
    if score >= conf.FLAG_THRESHOLD:
        return Verdict.FLAGGED
    return Verdict.ALLOWED


def verdict_on_error() -> str:
    """The verdict of an image that could not be classified (``ON_ERROR``)."""
    return Verdict.ALLOWED if conf.ON_ERROR == "allow" else Verdict.FLAGGED
