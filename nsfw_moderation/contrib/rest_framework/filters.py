"""A filter backend for listings of visible objects only.

::

    class PhotoList(generics.ListAPIView):
        filter_backends = [VisibleOnlyFilter]
        nsfw_visible_fields = ["image"]  # default: every moderated field of the model

The rule is :func:`nsfw_moderation.query.visible`'s. The listed objects also
carry their verdicts (:func:`~nsfw_moderation.query.with_verdict`), so the
moderated fields of the page need no query of their own. Like every filter
backend it applies to the view's detail route too: a hidden object is a 404.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import models
from rest_framework.filters import BaseFilterBackend
from rest_framework.request import Request

from nsfw_moderation import query, registry


class VisibleOnlyFilter(BaseFilterBackend):
    """Only the objects whose images in ``view.nsfw_visible_fields`` may all be shown."""

    def filter_queryset(
        self, request: Request, queryset: models.QuerySet[Any], view: Any
    ) -> models.QuerySet[Any]:
        for field_name in self.fields_of(view, queryset.model):
            queryset = query.with_verdict(query.visible(queryset, field_name), field_name)
        return queryset

    @staticmethod
    def fields_of(view: Any, model: type[models.Model]) -> Sequence[str]:
        names = getattr(view, "nsfw_visible_fields", None)
        return registry.fields_for(model) if names is None else names
