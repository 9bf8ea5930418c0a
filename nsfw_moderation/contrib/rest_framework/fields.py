"""Serializer fields that give a moderated file's URL only while moderation lets it be shown.

::

    class PhotoSerializer(serializers.ModelSerializer):
        image = ModeratedImageField(read_only=True)  # null while hidden

The rule is :func:`nsfw_moderation.query.is_visible`'s, the template filters'
one. A list costs one query for the verdicts of the whole page, however long:
the first object of a page fetches them all (:func:`~nsfw_moderation.query.prefetch_verdicts`),
unless the queryset already carries them (:func:`~nsfw_moderation.query.with_verdict`,
or :class:`~nsfw_moderation.contrib.rest_framework.filters.VisibleOnlyFilter`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db import models
from rest_framework import serializers
from rest_framework.fields import get_attribute

from nsfw_moderation import query

#: What :meth:`ModeratedFileField.get_attribute` returns for a hidden file.
HIDDEN = object()


class ModeratedFileField(serializers.FileField):
    """A ``FileField`` whose URL is ``placeholder`` (``None``: null) while the file is hidden.

    Writable like DRF's own, for uploads; a new upload reads back as hidden
    until moderation allows it.
    """

    def __init__(self, *, placeholder: str | None = None, **kwargs: Any) -> None:
        self.placeholder = placeholder
        if kwargs.get("read_only"):
            kwargs.setdefault("allow_null", True)  # the schema says it: an empty field is null
        super().__init__(**kwargs)

    def get_attribute(self, instance: Any) -> Any:
        holder, field_name = self._holder(instance)
        if holder is None:
            return None
        if query.annotation_name(field_name) not in holder.__dict__:
            query.prefetch_verdicts(self._page_of(holder), field_name)
        if not query.is_visible(holder, field_name):
            return HIDDEN
        return super().get_attribute(instance)

    def to_representation(self, value: Any) -> Any:
        if value is HIDDEN:
            return self.placeholder
        return super().to_representation(value)

    def _holder(self, instance: Any) -> tuple[models.Model | None, str]:
        """The object that holds the file (``source="photo.image"``: the photo) and its field."""
        if self.source == "*":
            raise ImproperlyConfigured(f"{type(self).__name__} needs a file field as its source.")
        return self._walk(instance, self.source_attrs[:-1]), self.source_attrs[-1]

    @staticmethod
    def _walk(instance: Any, attrs: Sequence[str]) -> Any:
        try:
            return get_attribute(instance, list(attrs))
        except (AttributeError, KeyError, models.ObjectDoesNotExist):
            return None

    def _page_of(self, holder: models.Model) -> list[models.Model]:
        """The holders of the list being serialized, when ``holder`` is one of them."""
        listing = self.parent.parent if self.parent is not None else None
        page = getattr(listing, "instance", None)
        if not isinstance(listing, serializers.ListSerializer) or page is None:
            return [holder]
        if isinstance(page, models.Manager):  # a fresh queryset: other instances
            return [holder]
        holders = [self._walk(item, self.source_attrs[:-1]) for item in page]
        found = [h for h in holders if isinstance(h, models.Model)]
        return found if any(h is holder for h in found) else [holder]


class ModeratedImageField(ModeratedFileField, serializers.ImageField):
    """:class:`ModeratedFileField` for images: uploads are validated as images, as DRF does."""
