"""Reconciliation: find moderated files that have no current row, and queue them.

Saves go through the signal receivers, but some writes never do: a
``QuerySet.update()``, ``bulk_create()``, raw SQL, another program on the same
database, or a save whose row could not be written (a locked database). The
periodic maintenance task walks every moderated field's objects a slice at a
time (keyset pagination, ``RECONCILE_BATCH`` objects per run, resuming where
the last run stopped), compares each object's file with its row, and queues
what it finds, recording a ``discovered`` event for each.

``manage.py nsfw_scan`` uses the same building blocks for a whole pass.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator, Sequence
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db import models

from nsfw_moderation import enqueue, registry
from nsfw_moderation.conf import conf
from nsfw_moderation.db import retry_when_locked, write_transaction
from nsfw_moderation.models import (
    ModeratedImage,
    ModerationEvent,
    ScanPosition,
    Verdict,
    object_id_for,
)

logger = logging.getLogger(__name__)

CHUNK_SIZE = 500


def with_files(model: type[models.Model], field_name: str) -> models.QuerySet[Any]:
    """The objects whose ``field_name`` holds a file (the base manager: hidden ones too)."""
    empty = models.Q(**{field_name: ""}) | models.Q(**{f"{field_name}__isnull": True})
    return model._base_manager.exclude(empty).order_by("pk").only("pk", field_name)


def chunks(objects: models.QuerySet[Any], size: int, after: Any = None) -> Iterator[list[Any]]:
    """``objects`` (ordered by pk) in chunks, each fetched by ``pk > last``: cheap at any depth."""
    chunk = list((objects if after is None else objects.filter(pk__gt=after))[:size])
    while chunk:
        yield chunk
        chunk = list(objects.filter(pk__gt=chunk[-1].pk)[:size])


def existing_rows(
    model: type[models.Model], field_name: str, objects: Sequence[models.Model]
) -> dict[str, dict[str, Any]]:
    """The rows of ``objects``' field by object id: one query."""
    rows = ModeratedImage.objects.of(model, [obj.pk for obj in objects], field_name).values(
        "object_id", "file_name", "status", "model_name", "verdict"
    )
    return {row["object_id"]: dict(row) for row in rows}


def unmoderated(
    model: type[models.Model], field_name: str, objects: Sequence[models.Model]
) -> list[models.Model]:
    """The ``objects`` whose current file has no row."""
    rows = existing_rows(model, field_name, objects)
    return [
        obj
        for obj in objects
        if (row := rows.get(object_id_for(model, obj.pk))) is None
        or row["file_name"] != registry.file_name(obj, field_name)
    ]


def reconcile(budget: int | None = None) -> dict[str, int]:
    """Check up to ``budget`` objects (``RECONCILE_BATCH``), shared fairly between fields.

    ``budget=0`` checks every object now. Returns ``{"checked": n, "found": m}``.
    """
    budget = conf.RECONCILE_BATCH if budget is None else budget
    targets = list(registry.registered())
    totals = {"checked": 0, "found": 0}
    for model, field_name in targets:
        share = 0 if budget == 0 else max(1, budget // len(targets))
        # Safe to run again from its start: a locked SQLite database gets a retry.
        checked, found = retry_when_locked(
            functools.partial(_reconcile_field, model, field_name, share)
        )
        totals["checked"] += checked
        totals["found"] += found
    if totals["found"]:
        logger.warning(
            "Reconciliation found %d moderated file(s) without a current moderation row "
            "(saved around the signals, or while the database was locked) and queued them.",
            totals["found"],
        )
    return totals


def _reconcile_field(model: type[models.Model], field_name: str, budget: int) -> tuple[int, int]:
    position, _ = ScanPosition.objects.get_or_create(
        content_type=ContentType.objects.get_for_model(model), field_name=field_name
    )
    pk_field = model._meta.pk
    assert pk_field is not None
    after = pk_field.to_python(position.last_object_id) if position.last_object_id else None
    checked = found = 0
    last = None
    for chunk in chunks(with_files(model, field_name), _chunk_size(budget, checked), after):
        found += _queue(model, field_name, unmoderated(model, field_name, chunk))
        checked += len(chunk)
        last = chunk[-1].pk
        if budget and checked >= budget:
            break
    else:
        last = None  # the end: the next run starts again from the first object
    position.last_object_id = "" if last is None else object_id_for(model, last)
    position.save(update_fields=["last_object_id", "updated_at"])
    return checked, found


def _chunk_size(budget: int, checked: int) -> int:
    return CHUNK_SIZE if not budget else max(1, min(CHUNK_SIZE, budget - checked))


def _queue(model: type[models.Model], field_name: str, objects: Sequence[models.Model]) -> int:
    # The names again, now: an upload saved since the chunk was read must not
    # have its row reset to the file it replaced.
    current = dict(
        model._base_manager.filter(pk__in=[obj.pk for obj in objects]).values_list("pk", field_name)
    )
    found = 0
    with write_transaction():
        for obj in objects:
            name = registry.name_of(current.get(obj.pk))
            if not name:
                continue
            row = enqueue.submit(obj, field_name, name, only_if_changed=True)
            if row is None:
                continue  # its row caught up meanwhile
            found += 1
            assert row is not None
            ModerationEvent.record(
                row,
                ModerationEvent.Kind.DISCOVERED,
                verdict_before=Verdict.PENDING,
                note="This file had no moderation row: found by reconciliation.",
            )
    return found
