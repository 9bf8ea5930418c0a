"""Helpers for host apps: which objects are safe to show.

An object is **visible** for one of its moderated fields when

- the field is empty (there is nothing to moderate), or
- the moderation row for the file the field holds *now* has the verdict
  ``allowed`` or ``approved`` — or ``pending`` when the setting
  ``NSFW_MODERATION["SHOW_PENDING"]`` is ``True`` (default ``False``).

Everything else is **hidden**: flagged, blocked and rejected images, pending ones
by default, and images with no row for their current file (uploads that
bypassed the save signals, e.g. ``bulk_create`` or ``QuerySet.update``, until
``manage.py nsfw_scan`` has seen them). Failing closed means an image nobody
has checked is never shown by accident.

The queryset helpers add one subquery that looks up each listed object's row
through the unique index, so listing stays one query and a page of objects
costs a page of index probes, however large the moderation table::

    from nsfw_moderation.query import visible

    photos = visible(Photo.objects.all(), "image")

For templates, annotate the verdicts once and use the ``nsfw_moderation``
template filters, which then need no query per object::

    photos = with_verdict(Photo.objects.all(), "image")
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

from django.core.exceptions import ImproperlyConfigured
from django.db import connections, models
from django.db.models import BooleanField, Exists, ExpressionWrapper, OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce

from nsfw_moderation import registry
from nsfw_moderation.conf import conf
from nsfw_moderation.models import ModeratedImage, Verdict, moderated_model, object_id_for

_M = TypeVar("_M", bound=models.Model)

#: Verdicts under which an image may be shown.
SHOWN_VERDICTS = (Verdict.ALLOWED, Verdict.APPROVED)


def shown_verdicts() -> tuple[str, ...]:
    """The verdicts under which an image is visible, given ``SHOW_PENDING``."""
    return (*SHOWN_VERDICTS, Verdict.PENDING) if conf.SHOW_PENDING else SHOWN_VERDICTS


def visible(queryset: models.QuerySet[_M], field_name: str) -> models.QuerySet[_M]:
    """The objects of ``queryset`` whose ``field_name`` image may be shown."""
    return queryset.filter(_visible_q(queryset, field_name))


def hidden(queryset: models.QuerySet[_M], field_name: str) -> models.QuerySet[_M]:
    """The objects of ``queryset`` whose ``field_name`` image must not be shown."""
    return queryset.exclude(_visible_q(queryset, field_name))


def with_verdict(queryset: models.QuerySet[_M], field_name: str) -> models.QuerySet[_M]:
    """Annotate each object with the verdict of its current ``field_name`` file.

    The annotation is named by :func:`annotation_name` (``nsfw_verdict_<field>``)
    and is ``None`` when there is no row for the current file. The template
    filters and :func:`verdict_of` use it instead of querying.
    """
    verdict = Subquery(_rows_for(queryset.model, field_name).values("verdict")[:1])
    return queryset.annotate(**{annotation_name(field_name): verdict})


def prefetch_verdicts(objects: Iterable[_M], field_name: str) -> list[_M]:
    """Give objects already fetched (a page) what :func:`with_verdict` gives: one query in all.

    For a list that can no longer be annotated in SQL (a sliced page, a list
    built by hand). Sets the same attribute as :func:`with_verdict`, so
    :func:`verdict_of`, :func:`is_visible` and the template filters then need
    no query per object. Returns the objects as a list.
    """
    found = list(objects)
    by_model: dict[type[models.Model], list[_M]] = {}
    for obj in found:
        by_model.setdefault(type(obj), []).append(obj)
    for model, same in by_model.items():
        _check_moderated(model, field_name)
        owner = moderated_model(model, field_name)
        rows = ModeratedImage.objects.of(model, [obj.pk for obj in same], field_name)
        # A row counts only for the file its object holds now, as in with_verdict().
        verdicts = {(o, f): v for o, f, v in rows.values_list("object_id", "file_name", "verdict")}
        for obj in same:
            key = (object_id_for(owner, obj.pk), registry.file_name(obj, field_name))
            obj.__dict__[annotation_name(field_name)] = verdicts.get(key)
    return found


def annotation_name(field_name: str) -> str:
    return f"nsfw_verdict_{field_name}"


def verdict_of(obj: models.Model, field_name: str) -> str:
    """The verdict of ``obj``'s current ``field_name`` file, or ``""`` when it has none.

    ``""`` means the field is empty or the current file has not been seen by
    moderation yet. Uses the :func:`with_verdict` annotation when present.
    """
    _check_moderated(type(obj), field_name)
    if not registry.file_name(obj, field_name):
        return ""
    name = annotation_name(field_name)
    if name in obj.__dict__:
        return str(obj.__dict__[name] or "")
    rows = ModeratedImage.objects.of_object(obj, field_name).filter(
        file_name=registry.file_name(obj, field_name)
    )
    return rows.values_list("verdict", flat=True).first() or ""


def is_visible(obj: models.Model, field_name: str) -> bool:
    """Whether ``obj``'s ``field_name`` image may be shown (same rule as :func:`visible`)."""
    if not registry.file_name(obj, field_name):
        _check_moderated(type(obj), field_name)
        return True
    return verdict_of(obj, field_name) in shown_verdicts()


def _visible_q(queryset: models.QuerySet[Any], field_name: str) -> Q:
    rows = _rows_for(queryset.model, field_name).filter(verdict__in=shown_verdicts())
    return _empty_q(field_name) | Q(_has_row(rows, connections[queryset.db].vendor))


def _has_row(rows: models.QuerySet[ModeratedImage], vendor: str) -> Any:
    """Whether the outer object has one of ``rows``, looked up once per object."""
    if vendor != "postgresql":
        return Exists(rows)  # SQLite probes once per object either way, and builds it faster
    # PostgreSQL may answer an EXISTS under OR by hashing every row of the
    # content type (O(table) per page). A scalar subquery is always one probe
    # per object, and its default selectivity keeps LIMIT plans cheap. COALESCE
    # makes "no row" false, so that hidden() (NOT …) keeps such objects hidden.
    true = ExpressionWrapper(Value(True), output_field=BooleanField())
    return Coalesce(Subquery(rows.values_list(true)[:1]), Value(False))


def _empty_q(field_name: str) -> Q:
    return Q(**{field_name: ""}) | Q(**{f"{field_name}__isnull": True})


def _rows_for(model: type[models.Model], field_name: str) -> models.QuerySet[ModeratedImage]:
    """The row of the outer object's *current* file: a row for an older file does not count."""
    _check_moderated(model, field_name)
    rows = ModeratedImage.objects.of(_concrete(model), OuterRef("pk"), field_name)
    # At most one row (the unique key): no ordering to sort by.
    return rows.filter(file_name=OuterRef(field_name)).order_by()


def _check_moderated(model: type[models.Model], field_name: str) -> None:
    if field_name not in registry.fields_for(model):
        moderated = ", ".join(registry.fields_for(model)) or "none"
        raise ImproperlyConfigured(
            f"{model._meta.label}.{field_name} is not moderated by nsfw_moderation "
            f"(moderated fields of {model._meta.label}: {moderated}). Add it to "
            'NSFW_MODERATION["MODELS"] or call nsfw_moderation.register().'
        )


def _concrete(model: type[models.Model]) -> type[models.Model]:
    return model._meta.concrete_model or model
