"""Turn classifier scores into a verdict."""

from __future__ import annotations

from collections.abc import Mapping

from nsfw_moderation.conf import conf


def unsafe_score(scores: Mapping[str, float]) -> float:
    """The probability that the image is unsafe: the sum over ``UNSAFE_LABELS``."""
    total = sum(scores.get(label, 0.0) for label in conf.UNSAFE_LABELS)
    return min(max(total, 0.0), 1.0)


def verdict_for(score: float) -> str:
    """``blocked``, ``flagged`` or ``allowed`` for an unsafe score in [0, 1]."""
    from nsfw_moderation.models import Verdict

    block = conf.BLOCK_THRESHOLD
    if block is not None and score >= block:
        return Verdict.BLOCKED
    if score >= conf.FLAG_THRESHOLD:
        return Verdict.FLAGGED
    return Verdict.ALLOWED


def verdict_on_error() -> str:
    """The verdict of an image that could not be classified (``ON_ERROR``)."""
    from nsfw_moderation.models import Verdict

    return Verdict.ALLOWED if conf.ON_ERROR == "allow" else Verdict.FLAGGED
