"""Stable dotted paths of the work: ``nsfw_moderation.tasks.classify``, ``.maintain``…

django-q2's queued tasks and ``Schedule`` rows name these paths, and Celery's
tasks carry them as names (:mod:`nsfw_moderation.queues`), so they outlive
any move of the code behind them, which lives in :mod:`nsfw_moderation.worker.tasks`.
"""

from __future__ import annotations

from nsfw_moderation.worker.tasks import classify, maintain, match_stored, requeue_stale

__all__ = ["classify", "maintain", "match_stored", "requeue_stale"]
