"""What happens when an image is blocked or rejected: ``ON_REJECT`` and the blocklist.

Set ``NSFW_MODERATION["ON_REJECT"]`` to the dotted path of a callable taking
``(row, obj)`` — the :class:`~nsfw_moderation.models.ModeratedImage` and the
host object (``None`` if it is gone). It runs after a worker blocks an image
and after a moderator rejects one. Nothing is deleted unless your callable
deletes it. The ``image_blocked`` and ``image_reviewed`` signals fire either way.

Ready-made callables (the row and its audit trail stay as the record of the
decision in every case):

- ``nsfw_moderation.hooks.quarantine`` moves the file to the private storage
  named by ``QUARANTINE_STORAGE`` (an alias in Django's ``STORAGES``) and
  empties the field: the site no longer hosts it, and it can still be
  produced later (reports to authorities, appeals).
- ``nsfw_moderation.hooks.delete_file`` deletes the file from its storage and
  empties the field.
- ``nsfw_moderation.hooks.clear_field`` empties the field only: the file stays
  in storage, at its URL, unless you serve media through
  :mod:`nsfw_moderation.media`.

The receivers here are connected in :meth:`NsfwModerationConfig.ready`.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.files.storage import Storage, storages
from django.db import models
from django.utils.module_loading import import_string

from nsfw_moderation import blocklist, registry
from nsfw_moderation.conf import conf
from nsfw_moderation.models import ModeratedImage, ModerationEvent, Verdict

logger = logging.getLogger(__name__)


def on_blocked(sender: Any, instance: ModeratedImage, **kwargs: Any) -> None:
    run_reject_hook(instance)


def on_reviewed(
    sender: Any, instance: ModeratedImage, previous_verdict: str = "", **kwargs: Any
) -> None:
    # A decision that takes back a rejection (an undo) lifts what the rejection added.
    blocklist.remember_decision(instance, taken_back=previous_verdict == Verdict.REJECTED)
    if instance.verdict == Verdict.REJECTED:
        run_reject_hook(instance)


def on_appeal_decided(sender: Any, instance: ModeratedImage, **kwargs: Any) -> None:
    # An upheld appeal approved the image: it leaves the blocklist.
    blocklist.remember_decision(instance)


def run_reject_hook(row: ModeratedImage) -> None:
    """Call ``ON_REJECT`` for ``row``; a failing hook is logged, never raised."""
    if not conf.ON_REJECT:
        return
    try:
        hook = import_string(conf.ON_REJECT)
        hook(row, row.content_object)
    except Exception:
        logger.exception("ON_REJECT hook %s failed for moderated image %s", conf.ON_REJECT, row.pk)


def clear_field(row: ModeratedImage, obj: models.Model | None) -> None:
    """Empty the moderated field on the host object. The file stays in storage."""
    if obj is None:
        return
    setattr(obj, row.field_name, None)
    obj.save(update_fields=[row.field_name])


def delete_file(row: ModeratedImage, obj: models.Model | None) -> None:
    """Delete the rejected file from its storage and empty the field that holds it."""
    source = _removable(row, obj)
    if source is None:
        return
    _clear_if_current(row, obj)
    source.delete(row.file_name)
    _record(row, "The file was deleted from storage.")


def quarantine(row: ModeratedImage, obj: models.Model | None) -> None:
    """Move the rejected file to ``QUARANTINE_STORAGE`` and empty the field that holds it.

    The copy is made first and the original deleted last, so a failure on the
    way leaves the file where it was (and logged), never lost.
    """
    target = quarantine_storage()
    source = _removable(row, obj)
    if source is None:
        return
    with source.open(row.file_name, "rb") as handle:
        kept_as = target.save(row.file_name, handle)
    _clear_if_current(row, obj)
    source.delete(row.file_name)
    _record(row, f"The file was moved to the quarantine storage as {kept_as!r}.")


def quarantine_storage() -> Storage:
    """The storage named by ``QUARANTINE_STORAGE`` (an alias in ``settings.STORAGES``)."""
    alias = conf.QUARANTINE_STORAGE
    if not alias:
        raise ImproperlyConfigured(
            "ON_REJECT quarantine needs QUARANTINE_STORAGE: the alias of a private storage "
            "in settings.STORAGES."
        )
    return storages[alias]


def _removable(row: ModeratedImage, obj: models.Model | None) -> Storage | None:
    """The storage of the row's file, unless the file is gone or another object holds it too."""
    model = row.content_type.model_class()
    if model is None or not row.file_name:
        return None
    source: Storage = model._meta.get_field(row.field_name).storage  # type: ignore[union-attr]
    if not source.exists(row.file_name):
        return None
    others = model._base_manager.filter(**{row.field_name: row.file_name})
    if obj is not None:
        others = others.exclude(pk=obj.pk)
    if others.exists():
        logger.warning(
            "Left %s in place: other %s objects hold it too", row.file_name, model._meta.label
        )
        return None
    return source


def _clear_if_current(row: ModeratedImage, obj: models.Model | None) -> None:
    # The object may hold a newer upload by now: that one is not ours to remove.
    if obj is not None and registry.file_name(obj, row.field_name) == row.file_name:
        clear_field(row, obj)


def _record(row: ModeratedImage, note: str) -> None:
    ModerationEvent.record(
        row, ModerationEvent.Kind.FILE_REMOVED, verdict_before=row.verdict, note=note
    )
