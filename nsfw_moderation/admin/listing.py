"""Listing moderated images cheaply: page counts and filter choices from the kept counts.

Django's changelist counts its rows (``COUNT(*)``) and lists the values of a
field's filter (``SELECT DISTINCT``) on every request: reads of the whole
table. These read :mod:`nsfw_moderation.counts` instead wherever it can tell
(every row, or rows narrowed by ``=`` on verdict, status, content type or
model). Otherwise (a search, a date range, a scoped admin) the rows are
counted, unless PostgreSQL's planner expects more than ``ESTIMATE_ABOVE`` of
them: then the page count is that estimate, as the "about" of a search engine.
"""

from __future__ import annotations

import json
from functools import cached_property
from typing import Any

from django.contrib import admin
from django.contrib.contenttypes.models import ContentType
from django.core.paginator import Paginator
from django.db import connections
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy

from nsfw_moderation import counts
from nsfw_moderation.models import ModeratedImage

#: Above this many rows (by the planner's estimate), a listing shows the estimate.
ESTIMATE_ABOVE = 50_000


class CountingPaginator(Paginator):
    """A paginator whose ``count`` is kept, estimated when large, or counted."""

    @cached_property
    def count(self) -> int:
        rows = self.object_list
        if not isinstance(rows, QuerySet):
            return super().count
        kept = counts.count(rows)
        if kept is not None:
            return kept
        estimate = _estimated_count(rows)
        return estimate if estimate is not None and estimate > ESTIMATE_ABOVE else super().count


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
        return queryset.filter(content_type_id=value) if value else queryset


class ModelNameFilter(admin.SimpleListFilter):
    """Rows classified by one model."""

    title = gettext_lazy("model")
    parameter_name = "model_name"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[Any, str]]:
        return [(name, name) for name in model_names_in(model_admin.get_queryset(request))]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        return queryset.filter(model_name=value) if value else queryset
