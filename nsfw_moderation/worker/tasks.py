"""The entry points of every queue (named by the stable paths in :mod:`nsfw_moderation.tasks`)."""

from __future__ import annotations

import logging
import uuid

from nsfw_moderation import banks, counts, notices, reconcile
from nsfw_moderation.worker import outcomes, pipeline

logger = logging.getLogger(__name__)


def classify(pk: int | None = None) -> dict[str, int]:
    """Classify row ``pk`` and, in the same pass, up to ``BATCH_SIZE - 1`` other queued rows.

    Running it for a row that is already done (or claimed by another worker)
    does nothing, so a duplicate or retried task is harmless.
    """
    token = uuid.uuid4()
    rows = outcomes.claim_batch(token, first=pk)
    if not rows:
        return {"claimed": 0}
    return pipeline.process(rows, token)


def requeue_stale(older_than: float | None = None) -> dict[str, int]:
    """Recover rows a worker dropped: killed mid-batch, or a task the broker lost.

    Installed as a periodic django-q2 ``Schedule``; also run by
    ``manage.py nsfw_requeue``. A row whose worker died ``MAX_ATTEMPTS`` times
    is failed instead of being retried forever.
    """
    return outcomes.requeue_stale(older_than)


def maintain() -> dict[str, int]:
    """The periodic job: recover dropped rows, reconcile files, fold counts, deliver notices.

    Installed by ``migrate`` as a django-q2 ``Schedule``; a Celery beat entry
    (``queues.celery.maintenance_schedule``); run by ``manage.py nsfw_maintain``
    from cron on any queue.
    """
    results: dict[str, int] = {}
    # Each part runs even when another fails: a sweep that breaks must not
    # stop reconciliation, nor the other way round.
    for part in (outcomes.requeue_stale, reconcile.reconcile, counts.fold, notices.deliver_waiting):
        try:
            results.update(part())
        except Exception:
            logger.exception("Moderation maintenance: %s failed", part.__name__)
    return results


def match_stored(bank_pk: int, after: int = 0) -> dict[str, int]:
    """Block or flag stored images that match a bank's entries newer than ``after``."""
    return banks.match_stored(bank_pk, after)
