"""How the moderator pages show values: scores, tables of scores, host objects by their names.

A changelist or a queue page names each record's host object by its own
``__str__`` ("Sunset over the bay", not "gallery.photo 10"): the objects of a
page are fetched in bulk, one query per content type (:func:`host_labels`),
never one per row. An object that is gone keeps the old text.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from django.contrib.admin.views.main import ChangeList
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _

#: A record's host object: (content type id, object id).
HostKey = tuple[int, str]


def format_score(value: float | None) -> str:
    """A probability as moderators read it: ``0.076``; ``<0.001`` rather than ``0.000``."""
    if value is None:
        return "–"
    if 0 < value < 0.0005:
        return "<0.001"
    return f"{value:.3f}"


def scores_table(scores: Mapping[str, Any] | None) -> SafeString:
    """``{label: probability}`` as a small two-column table, highest first."""
    if not scores:
        return format_html("{}", "–")
    numbers = {str(label): value for label, value in scores.items()}
    ordered = sorted(numbers.items(), key=lambda item: _sort_key(item[1]), reverse=True)
    rows = format_html_join(
        "",
        "<tr><th scope='row'>{}</th><td>{}</td></tr>",
        ((label, _cell(value)) for label, value in ordered),
    )
    return format_html(
        '<table class="nsfw-scores"><thead><tr><th scope="col">{}</th><th scope="col">{}</th>'
        "</tr></thead><tbody>{}</tbody></table>",
        _("label"),
        _("score"),
        rows,
    )


def _sort_key(value: Any) -> float:
    return float(value) if isinstance(value, int | float) else float("-inf")


def _cell(value: Any) -> str:
    return format_score(float(value)) if isinstance(value, int | float) else str(value)


def cut(text: str) -> SafeString:
    """A long value (a hash, a file name) cut to a column's width; the whole of it on hover."""
    return format_html('<span class="nsfw-cut" title="{}">{}</span>', text, text)


def fallback_label(content_type: ContentType | None, object_id: str) -> str:
    """``app.model id``: how a record names an object whose own name cannot be read."""
    if content_type is None:
        return str(object_id)
    return f"{content_type.app_label}.{content_type.model} {object_id}"


def host_labels(records: Iterable[Any]) -> dict[HostKey, str]:
    """The ``__str__`` of each record's host object, keyed by (content type id, object id).

    ``records`` have ``content_type_id`` and ``object_id`` (moderated rows,
    statements, events). One query per content type; objects that are gone,
    whose model is gone, or whose name is empty are left out.
    """
    wanted: dict[int, set[str]] = defaultdict(set)
    for record in records:
        if record.content_type_id is not None:
            wanted[record.content_type_id].add(record.object_id)
    labels: dict[HostKey, str] = {}
    for content_type_id, object_ids in wanted.items():
        model = ContentType.objects.get_for_id(content_type_id).model_class()
        if model is None:
            continue
        try:
            found = list(model._default_manager.filter(pk__in=object_ids))
        except (ValidationError, ValueError, TypeError):
            continue  # an id of another type than the pk's: nothing to name
        for obj in found:
            name = str(obj).strip()
            if name:
                labels[content_type_id, str(obj.pk)] = name
    return labels


def object_label(record: Any) -> str:
    """The name of ``record``'s host object: its ``__str__``, else ``app.model id``."""
    labels: dict[HostKey, str] | None = getattr(record, "_host_labels", None)
    if labels is None:  # one record on its own page: its object alone
        labels = host_labels([record])
    label = labels.get((record.content_type_id, record.object_id))
    if label is not None:
        return label
    content_type = (
        None
        if record.content_type_id is None
        else ContentType.objects.get_for_id(record.content_type_id)
    )
    return fallback_label(content_type, record.object_id)


def label_all(records: list[Any]) -> list[Any]:
    """``records``, each carrying the host labels of them all (for :func:`object_label`)."""
    labels = host_labels(records)
    for record in records:
        record._host_labels = labels
    return records


class HostLabelsMixin:
    """A changelist whose rows name their host objects, read in bulk for the page."""

    def get_changelist_instance(self, request: HttpRequest) -> ChangeList:
        changelist: ChangeList = super().get_changelist_instance(request)  # type: ignore[misc]
        # The page's rows are read once here, and the same instances are listed.
        label_all(list(changelist.result_list))
        return changelist
