"""Stable dotted paths for django-q2: ``nsfw_moderation.tasks.classify``, ``.maintain``…

Queued tasks and ``Schedule`` rows name these paths, so they outlive any move
of the code behind them, which lives in :mod:`nsfw_moderation.worker.tasks`.
"""

from __future__ import annotations

from nsfw_moderation.worker.tasks import classify, maintain, match_stored, requeue_stale

__all__ = ["classify", "maintain", "match_stored", "requeue_stale"]
