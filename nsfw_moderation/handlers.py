"""Signal receivers that notice when a moderated file is set, changed or removed.

They are connected per model, for the registered model, its proxies and its
multi-table subclasses, when a model is registered (:func:`connect_registry`
follows the registry). They never decode an image or touch the model: they
write one ``ModeratedImage`` row and enqueue its pk once the transactions
commit.

New bytes are noticed however they arrive: a new file assigned (not yet
stored at ``pre_save``), a different name, or a name set again after the
object was loaded — which is what ``FieldFile.save()`` does, and on a storage
that overwrites (``allow_overwrite``, S3's ``file_overwrite``) that name may be
the old one.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from django.apps import apps
from django.db import models
from django.db.models.fields.files import FieldFile
from django.db.models.signals import post_delete, post_init, post_save, pre_save

from nsfw_moderation import enqueue, registry
from nsfw_moderation.db import UPLOAD_PATIENCE, retry_when_locked, write_transaction

logger = logging.getLogger(__name__)

# Per-instance state lives in the instance __dict__ under these keys.
ORIGINAL_NAMES = "_nsfw_moderation_names"
UPLOADING = "_nsfw_moderation_uploading"
NAMES_SET = "_nsfw_moderation_names_set"


class NoticesNamesSet:
    """Mixin for a file field's descriptor: remember a file or name set after loading.

    Django's own descriptor (``FileDescriptor``) does the work; this only
    notes the field, for :func:`note_uploads`. ``FieldFile.save()`` sets the
    stored name (``ImageFieldFile``: the content first); a form that keeps the
    current file sets its ``FieldFile`` back, which is not noted.
    """

    field: models.FileField

    def __set__(self, instance: models.Model, value: Any) -> None:
        super().__set__(instance, value)  # type: ignore[misc]
        if not isinstance(value, FieldFile) and ORIGINAL_NAMES in instance.__dict__:
            instance.__dict__.setdefault(NAMES_SET, set()).add(self.field.attname)


def _notice_names_set(model: type[models.Model]) -> None:
    for name in registry.fields_for(model):
        field = model._meta.get_field(name)
        assert isinstance(field, models.FileField)  # the registry accepts nothing else
        owner = field.model
        descriptor = owner.__dict__.get(field.attname)
        if descriptor is None or isinstance(descriptor, NoticesNamesSet):
            continue
        noticing = type(
            f"Noticing{type(descriptor).__name__}", (NoticesNamesSet, type(descriptor)), {}
        )
        setattr(owner, field.attname, noticing(field))


def connect_registry() -> None:
    """Follow the registry: connect models registered so far and from now on."""
    registry.model_registered.connect(_on_registered, dispatch_uid="nsfw_moderation:registered")
    registry.model_unregistered.connect(
        _on_unregistered, dispatch_uid="nsfw_moderation:unregistered"
    )
    for model in registry.models_registered():
        connect(model)


def _on_registered(sender: type[models.Model], **kwargs: Any) -> None:
    connect(sender)


def _on_unregistered(sender: type[models.Model], **kwargs: Any) -> None:
    disconnect(sender)


def connect(model: type[models.Model]) -> None:
    """Connect the receivers for ``model``, its proxies and its subclasses."""
    _notice_names_set(model)
    for sender in _senders(model):
        uid = _uid(sender)
        post_init.connect(remember_names, sender=sender, dispatch_uid=uid)
        pre_save.connect(note_uploads, sender=sender, dispatch_uid=uid)
        post_save.connect(moderate_changes, sender=sender, dispatch_uid=uid)
        post_delete.connect(forget_object, sender=sender, dispatch_uid=uid)


def disconnect(model: type[models.Model]) -> None:
    for sender in _senders(model):
        uid = _uid(sender)
        for signal in (post_init, pre_save, post_save, post_delete):
            signal.disconnect(sender=sender, dispatch_uid=uid)
    # A subclass or parent that is still registered keeps its receivers.
    for other in registry.models_registered():
        if issubclass(other, model) or issubclass(model, other):
            connect(other)


def remember_names(sender: type[models.Model], instance: models.Model, **kwargs: Any) -> None:
    """Record the file names an instance was loaded with, to detect changes later."""
    instance.__dict__[ORIGINAL_NAMES] = {
        name: registry.name_of(instance.__dict__[name])
        for name in registry.fields_for(sender)
        if name in instance.__dict__
    }


def note_uploads(
    sender: type[models.Model], instance: models.Model, raw: bool = False, **kwargs: Any
) -> None:
    """Remember fields that hold a new, not yet stored file.

    Such a save changes the file even if storage ends up reusing the old name.
    """
    names_set = _take_names_set(instance, kwargs.get("update_fields"))
    if raw:
        return
    instance.__dict__[UPLOADING] = {
        name
        for name in registry.fields_for(sender)
        if name in instance.__dict__
        and (name in names_set or not getattr(getattr(instance, name), "_committed", True))
    }


def _take_names_set(instance: models.Model, update_fields: Iterable[str] | None) -> set[str]:
    """The fields noted by :class:`NoticesNamesSet` that this save stores.

    A field the save leaves out (``update_fields``) keeps its note for a later save.
    """
    noted: set[str] = instance.__dict__.pop(NAMES_SET, set())
    if update_fields is None:
        return noted
    saved = set(update_fields)
    if noted - saved:
        instance.__dict__[NAMES_SET] = noted - saved
    return noted & saved


def moderate_changes(
    sender: type[models.Model],
    instance: models.Model,
    created: bool = False,
    raw: bool = False,
    update_fields: frozenset[str] | None = None,
    **kwargs: Any,
) -> None:
    """Queue every moderated field whose file this save set or changed."""
    # Storing an upload (FileField.pre_save) sets its name again: that is this
    # save's own file, already handled here, not new bytes for the next save.
    _take_names_set(instance, update_fields)
    if raw:
        return
    originals: dict[str, str] = instance.__dict__.setdefault(ORIGINAL_NAMES, {})
    uploading: set[str] = instance.__dict__.pop(UPLOADING, set())
    for name in registry.fields_for(sender):
        if name not in instance.__dict__:  # deferred and never loaded: unchanged
            continue
        if update_fields is not None and name not in update_fields:
            continue
        current = registry.name_of(instance.__dict__[name])
        # A new object with an empty field has nothing to queue or withdraw.
        changed = (created and bool(current)) or (
            not created and (name in uploading or originals.get(name) != current)
        )
        if changed:
            # A field loaded now (deferred before) may hold the file its row
            # names: unchanged, unless new bytes were stored under that name.
            only_if_changed = name not in originals and name not in uploading
            _submit_safely(instance, name, current, only_if_changed=only_if_changed)
        originals[name] = current


def forget_object(sender: type[models.Model], instance: models.Model, **kwargs: Any) -> None:
    """A deleted object has nothing left to moderate (its decided rows stay as records)."""
    # A delete must not fail because moderation failed either.
    try:
        retry_when_locked(lambda: enqueue.withdraw(instance), patience=UPLOAD_PATIENCE)
    except Exception:
        logger.exception(
            "Could not withdraw %s %s from moderation", instance._meta.label, instance.pk
        )


def _submit_safely(
    instance: models.Model, name: str, current: str, *, only_if_changed: bool
) -> None:
    # The upload must never fail, nor wait long, because of moderation: wait
    # for a locked database at most UPLOAD_PATIENCE (or the database's timeout,
    # which the site's own write waits too), then log and move on. The periodic reconciliation
    # finds a file that was left without a row and queues it.
    def write() -> None:
        # A savepoint: a failure here must not break the caller's transaction.
        with write_transaction():
            if current:
                enqueue.submit(instance, name, current, only_if_changed=only_if_changed)
            else:
                enqueue.withdraw(instance, name)

    try:
        retry_when_locked(write, patience=UPLOAD_PATIENCE)
    except Exception:
        logger.exception(
            "Could not queue %s.%s of %s for moderation", instance._meta.label, name, instance.pk
        )


def _senders(model: type[models.Model]) -> list[type[models.Model]]:
    """``model``, its proxies and its multi-table subclasses (and theirs): all hold its files."""
    return [model] + [m for m in apps.get_models() if m is not model and issubclass(m, model)]


def _uid(sender: type[models.Model]) -> str:
    return f"nsfw_moderation:{sender._meta.label}"
