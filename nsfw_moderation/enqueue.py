"""Getting work onto the queue: rows for new files, and tasks for those rows.

``QUEUE`` picks how a row's pk reaches a worker: django-q2 (the default),
Django's Tasks framework, Celery, or ``"sync"`` (classified in this process,
for development and tests); each is an adapter in :mod:`nsfw_moderation.queues`.

Whatever the queue, the task is named by its dotted path (:data:`TASK`), so
this module never imports the worker.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import models, transaction
from django.utils import timezone

from nsfw_moderation import queues, registry
from nsfw_moderation.db import moderation_db, write_transaction
from nsfw_moderation.models import ModeratedImage, ModerationEvent, Status, Verdict, row_key

logger = logging.getLogger(__name__)

# The stable path of the worker's entry point (an alias of
# nsfw_moderation.worker.tasks.classify): queued tasks and Schedules name it,
# so it must survive upgrades of the code behind it.
TASK = "nsfw_moderation.tasks.classify"

#: What a row is reset to when its file changes.
FRESH: dict[str, Any] = {
    "status": Status.QUEUED,
    "verdict": Verdict.PENDING,
    "score": None,
    "scores": {},
    "sha256": "",
    "file_format": "",
    "model_name": "",
    "audit": False,
    "shadow_score": None,
    "shadow_scores": {},
    "shadow_model_name": "",
    "frame": None,
    "pdq": "",
    "pdq_quality": None,
    "bank_entry": None,
    "bank_distance": None,
    "reused_from": None,
    "similar_to": None,
    "error": "",
    "attempts": 0,
    "waits": 0,
    "claim_token": None,
    "claimed_at": None,
    "retry_at": None,
    "classified_at": None,
    "reviewed_by": None,
    "reviewed_at": None,
}


def submit(
    obj: models.Model, field_name: str, file_name: str, *, only_if_changed: bool = False
) -> ModeratedImage | None:
    """Queue ``obj.<field_name>`` (holding ``file_name``) for classification.

    Creates or resets the one row for that (object, field) and enqueues it once
    the current transaction commits. With ``only_if_changed``, a row that
    already covers ``file_name`` is left alone.
    """
    rows = ModeratedImage.objects.of_object(obj, field_name)
    if only_if_changed and rows.filter(file_name=file_name).exists():
        return None
    row = reset_row(obj, field_name, file_name)
    enqueue_on_commit(row.pk, after=obj._state.db)
    return row


def reset_row(obj: models.Model, field_name: str, file_name: str) -> ModeratedImage:
    """The one row of ``obj.<field_name>``, created or reset to ``queued`` for ``file_name``.

    Resetting a row that had a verdict records a ``replaced`` event first: the
    verdict of the old file stays on record.
    """
    key = row_key(type(obj), obj.pk, field_name)
    with write_transaction():
        old = ModeratedImage.objects.select_for_update().filter(**key).first()
        if old is not None and old.verdict != Verdict.PENDING:
            ModerationEvent.record(
                old,
                ModerationEvent.Kind.REPLACED,
                verdict_before=old.verdict,
                verdict_after=Verdict.PENDING,
                note=f"Replaced by {file_name}",
            )
        if old is None:
            # Created (a concurrent save may create it first: then it is updated).
            row, _ = ModeratedImage.objects.update_or_create(
                **key, defaults={**FRESH, "file_name": file_name}
            )
            return row
        for name, value in {**FRESH, "file_name": file_name}.items():
            setattr(old, name, value)
        old.save()
    return old


def withdraw(obj: models.Model, field_name: str | None = None) -> None:
    """Drop the rows of ``obj`` (or of one of its fields): nothing left to moderate.

    Rows of blocked, rejected or approved images are kept: they are the record
    of a decision. The others go, each leaving a ``withdrawn`` event, and
    nothing is left waiting in the queue.
    """
    fields = registry.fields_for(type(obj)) if field_name is None else [field_name]
    rows = ModeratedImage.objects.of_object(obj, fields).exclude(
        verdict__in=[Verdict.BLOCKED, Verdict.REJECTED, Verdict.APPROVED]
    )
    note = "The object was deleted." if field_name is None else "The field was emptied."
    with write_transaction():
        gone = list(rows.select_for_update())
        ModerationEvent.objects.bulk_create(
            ModerationEvent.record(
                row,
                ModerationEvent.Kind.WITHDRAWN,
                verdict_before=row.verdict,
                note=note,
                save=False,
            )
            for row in gone
        )
        ModeratedImage.objects.filter(pk__in=[row.pk for row in gone]).delete()


def enqueue_on_commit(pk: int, *, after: str | None = None) -> None:
    """Enqueue row ``pk`` once it is committed (and database ``after`` has committed too).

    ``after`` is the host object's database: when it is not the moderation
    database, the task waits for both transactions, so a worker never looks
    for an object that is not committed yet, or never will be.
    """
    using = moderation_db()

    def when_the_row_is_committed() -> None:
        transaction.on_commit(lambda: enqueue(pk), using=using)

    if after is None or after == using:
        when_the_row_is_committed()
    else:
        transaction.on_commit(when_the_row_is_committed, using=after)


def dispatch(task: str, *args: Any) -> None:
    """Run the task at dotted path ``task`` in a worker (or here, with ``QUEUE="sync"``).

    For work other than classifying rows, such as matching stored images
    against a bank's new hashes. Never raises: a lost task is logged.
    """
    try:
        queues.adapter().send(task, *args)
    except Exception:
        logger.exception("Could not run %s%r", task, args)


def enqueue(pk: int, *, delay: float = 0) -> None:
    """Hand row ``pk`` to a worker, now or after ``delay`` seconds.

    Never raises: a row that could not be enqueued stays ``queued`` and the
    stale-row sweep (``requeue_stale``) enqueues it again.
    """
    try:
        if delay > 0:
            queues.adapter().send_later(TASK, delay, pk)
        else:
            queues.adapter().send(TASK, pk)
    except Exception:
        logger.exception("Could not enqueue moderated image %s", pk)


def requeue(rows: models.QuerySet[ModeratedImage], *, user: Any = None, note: str = "") -> int:
    """Classify ``rows`` again from scratch (e.g. after changing the model).

    Their verdicts go back to ``pending``, human decisions included; each
    reset of a verdict is recorded as a ``requeued`` event. Returns how many
    rows were queued.
    """
    with write_transaction():
        # Under a lock: the verdict "before" must be the one replaced.
        before = list(ModeratedImage.objects.select_for_update().filter(pk__in=rows.values("pk")))
        pks = [row.pk for row in before]
        ModeratedImage.objects.filter(pk__in=pks).update(**FRESH, updated_at=timezone.now())
        ModerationEvent.objects.bulk_create(
            ModerationEvent.record(
                row,
                ModerationEvent.Kind.REQUEUED,
                verdict_before=row.verdict,
                verdict_after=Verdict.PENDING,
                actor=user,
                note=note,
                save=False,
            )
            for row in before
            if row.verdict != Verdict.PENDING
        )
        for pk in pks:
            enqueue_on_commit(pk)
    return len(pks)
