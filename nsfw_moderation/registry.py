"""Which (model, file field) pairs are moderated.

Fields come from two places: ``NSFW_MODERATION["MODELS"]`` (resolved when the
app registry is ready) and :func:`register` calls in code. Whoever must act on
a change (the signal receivers in :mod:`nsfw_moderation.handlers`) listens to
:data:`model_registered` and :data:`model_unregistered`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from django.apps import apps
from django.core.exceptions import FieldDoesNotExist, ImproperlyConfigured
from django.db import models
from django.dispatch import Signal

from nsfw_moderation.conf import conf

#: Sent with ``sender=<concrete model>`` when a model gains moderated fields.
model_registered = Signal()
#: Sent with ``sender=<concrete model>`` when a model stops being moderated.
model_unregistered = Signal()

_registered: dict[type[models.Model], tuple[str, ...]] = {}
# What MODELS added, so a settings change can take exactly that back.
_from_settings: dict[type[models.Model], tuple[str, ...]] = {}


def register(model: type[models.Model], fields: Iterable[str]) -> None:
    """Moderate ``fields`` (names of ``FileField``/``ImageField``) of ``model``.

    Safe to call more than once; fields accumulate. Call it from your
    ``AppConfig.ready()``.
    """
    names = tuple(fields)
    if isinstance(fields, str) or not names:
        raise ImproperlyConfigured(
            f"nsfw_moderation.register({model.__name__}, fields=...) needs a list of field names."
        )
    for name in names:
        _check_file_field(model, name)
    concrete = model._meta.concrete_model or model
    merged = _registered.get(concrete, ()) + tuple(
        n for n in names if n not in _registered.get(concrete, ())
    )
    _registered[concrete] = merged
    model_registered.send(sender=concrete)


def unregister(model: type[models.Model]) -> None:
    """Stop moderating every field of ``model`` (mainly for tests)."""
    concrete = model._meta.concrete_model or model
    if _registered.pop(concrete, None) is not None:
        model_unregistered.send(sender=concrete)


def fields_for(model: type[models.Model]) -> tuple[str, ...]:
    """The moderated field names of ``model``: its own and those it inherits.

    A proxy has its concrete model's fields; a multi-table subclass also has
    the moderated fields of its parents (it holds their files too).
    """
    concrete = model._meta.concrete_model or model
    names: list[str] = []
    for owner in [*reversed(concrete._meta.get_parent_list()), concrete]:
        names += [name for name in _registered.get(owner, ()) if name not in names]
    return tuple(names)


def file_name(obj: models.Model, field_name: str) -> str:
    """The name of the file ``obj.<field_name>`` holds now ("" when empty)."""
    return name_of(getattr(obj, field_name))


def name_of(value: Any) -> str:
    """A file field's value (a ``FieldFile``, a name or ``None``) as a name."""
    return str(getattr(value, "name", value) or "")


def models_registered() -> list[type[models.Model]]:
    """The (concrete) models with moderated fields."""
    return list(_registered)


def registered() -> Iterator[tuple[type[models.Model], str]]:
    """Every moderated ``(model, field_name)`` pair."""
    for model, names in list(_registered.items()):
        for name in names:
            yield model, name


def load_from_settings() -> None:
    """Register what ``NSFW_MODERATION["MODELS"]`` names, skipping bad entries.

    Bad entries are reported by the system checks rather than crashing start-up.
    Calling it again first takes back what the previous call registered.
    """
    for model, names in _from_settings.items():
        remaining = tuple(n for n in _registered.get(model, ()) if n not in names)
        unregister(model)
        if remaining:
            register(model, remaining)
    _from_settings.clear()
    if not isinstance(conf.MODELS, Mapping):
        return
    for label, fields in conf.MODELS.items():
        try:
            model = apps.get_model(label)
            new = tuple(n for n in fields if n not in fields_for(model))
            register(model, fields)
        except (LookupError, ValueError, TypeError, ImproperlyConfigured):
            continue
        _from_settings[model._meta.concrete_model or model] = new


def _check_file_field(model: type[models.Model], name: str) -> None:
    try:
        field = model._meta.get_field(name)
    except FieldDoesNotExist:
        raise ImproperlyConfigured(
            f"{model._meta.label} has no field {name!r} to moderate."
        ) from None
    if not isinstance(field, models.FileField):
        raise ImproperlyConfigured(
            f"{model._meta.label}.{name} is a {type(field).__name__}, "
            "not a FileField or ImageField."
        )
