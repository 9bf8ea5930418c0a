"""Listing moderated images cheaply: page counts and filter choices from the kept counts.

Django's changelist counts its rows (``COUNT(*)``) and lists the values of a
field's filter (``SELECT DISTINCT``) on every request: reads of the whole
table. These read :mod:`nsfw_moderation.counts` instead wherever it can tell
(every row, or rows narrowed by ``=`` on verdict, status, content type or
model), part by part for a :class:`Merged` listing. Otherwise (a search, a
date range, a scoped admin) the rows are counted, unless PostgreSQL's planner
expects more than ``ESTIMATE_ABOVE`` of them: then the page count is that
estimate, as the "about" of a search engine.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator, Sequence
from functools import cached_property
from typing import Any, overload

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.contenttypes.models import ContentType
from django.core.paginator import Paginator
from django.db import connections
from django.db.models import F, OrderBy, QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy

from nsfw_moderation import counts, params
from nsfw_moderation.models import ModeratedImage

#: Above this many rows (by the planner's estimate), a listing shows the estimate.
ESTIMATE_ABOVE = 50_000


class CountingPaginator(Paginator):
    """A paginator whose ``count`` is kept, estimated when large, or counted."""

    @cached_property
    def count(self) -> int:
        rows = self.object_list
        return listed_count(rows) if isinstance(rows, QuerySet) else super().count


#: An order of a listing: (field, descending) pairs; a field's empty values come last.
Ordering = Sequence[tuple[str, bool]]


def order_by(rows: QuerySet[Any], ordering: Ordering) -> QuerySet[Any]:
    """``rows`` in ``ordering``: empty values last, on every database."""
    return rows.order_by(*(_order_of(rows, name, descending) for name, descending in ordering))


def _order_of(rows: QuerySet[Any], name: str, descending: bool) -> OrderBy | str:
    if not rows.model._meta.get_field(name).null:
        # As the indexes have it: PostgreSQL reads one backwards for "-created_at",
        # not for "created_at DESC NULLS LAST".
        return f"-{name}" if descending else name
    column = F(name)
    return column.desc(nulls_last=True) if descending else column.asc(nulls_last=True)


class Merged:
    """Disjoint querysets listed as one, in one order: a page reads a page from each.

    The database answers an ``OR`` of two indexed conditions (flagged, or an
    audit sample) by reading every row that matches either, then sorting
    them; here each part is read in order from its own index, up to the end
    of the page asked for, and the parts are merged. Counted part by part, so
    a part narrowed by equalities is counted from the kept counts.
    """

    #: Paginator: no warning, the parts are ordered.
    ordered = True

    def __init__(self, parts: Sequence[QuerySet[Any]], ordering: Ordering) -> None:
        self.parts = [order_by(part, ordering) for part in parts]
        self.ordering = ordering

    def count(self) -> int:
        return sum(listed_count(part.order_by()) for part in self.parts)

    def __len__(self) -> int:
        return self.count()

    def __iter__(self) -> Iterator[Any]:
        return iter(self[:])

    @overload
    def __getitem__(self, index: int) -> Any: ...

    @overload
    def __getitem__(self, index: slice) -> list[Any]: ...

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, int):
            return self[index : index + 1][0] if index >= 0 else self[:][index]
        # The sort keys of each part up to the end of the page (values, not
        # rows), merged; then only the page's rows are fetched.
        names = [name for name, _descending in self.ordering]
        fields = names if "pk" in names else [*names, "pk"]
        position = fields.index("pk")
        keyed: list[tuple[int, tuple[Any, ...]]] = []
        for number, part in enumerate(self.parts):
            keys: QuerySet[Any] = part.values_list(*fields)
            if index.stop is not None:
                keys = keys[: index.stop]
            keyed += [(number, tuple(key)) for key in keys]
        keyed.sort(key=lambda item: functools.cmp_to_key(self._compare)(item[1]))
        page = keyed[index]
        wanted: dict[int, list[Any]] = {}
        for number, key in page:
            wanted.setdefault(number, []).append(key[position])
        found = {
            (number, row.pk): row
            for number, pks in wanted.items()
            for row in self.parts[number].filter(pk__in=pks)
        }
        return [
            found[number, key[position]] for number, key in page if (number, key[position]) in found
        ]

    def _compare(self, a: tuple[Any, ...], b: tuple[Any, ...]) -> int:
        for (_name, descending), x, y in zip(self.ordering, a, b, strict=False):
            if x == y:
                continue
            if x is None or y is None:  # empty values last, either way
                return 1 if x is None else -1
            return (1 if x > y else -1) * (-1 if descending else 1)
        return 0


def listed_count(rows: QuerySet[Any]) -> int:
    """``rows.count()``: kept, or estimated when large, or counted."""
    kept = counts.count(rows)
    if kept is not None:
        return kept
    estimate = _estimated_count(rows)
    return estimate if estimate is not None and estimate > ESTIMATE_ABOVE else rows.count()


def _estimated_count(rows: QuerySet[Any]) -> int | None:
    """How many rows PostgreSQL's planner expects ``rows`` to hold (None elsewhere)."""
    if connections[rows.db].vendor != "postgresql":
        return None
    (plan,) = json.loads(rows.order_by().explain(format="json"))
    return int(plan["Plan"]["Plan Rows"])


def content_types_in(rows: QuerySet[ModeratedImage]) -> list[ContentType]:
    """The content types ``rows`` has rows of, by name."""
    found = {group.content_type_id for group in counts.groups(rows) if group.n > 0}
    return sorted(
        (ContentType.objects.get_for_id(pk) for pk in found), key=lambda ct: str(ct).lower()
    )


def model_names_in(rows: QuerySet[ModeratedImage]) -> list[str]:
    """The names of the models that classified ``rows``."""
    return sorted({group.model_name for group in counts.groups(rows) if group.model_name})


class ContentTypeFilter(admin.SimpleListFilter):
    """Rows of one content type (only those with rows are offered)."""

    title = gettext_lazy("content type")
    parameter_name = "content_type__id__exact"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[Any, str]]:
        rows = model_admin.get_queryset(request)
        return [(str(ct.pk), str(ct)) for ct in content_types_in(rows)]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if not value:
            return queryset
        pk = params.parse_id(value)
        if pk is None:
            # The admin redirects to the unfiltered list with ?e=1.
            raise IncorrectLookupParameters(f"Not a content type: {value!r}")
        return queryset.filter(content_type_id=pk)


class ModelNameFilter(admin.SimpleListFilter):
    """Rows classified by one model."""

    title = gettext_lazy("model")
    parameter_name = "model_name"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[Any, str]]:
        return [(name, name) for name in model_names_in(model_admin.get_queryset(request))]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        return queryset.filter(model_name=value) if value else queryset
