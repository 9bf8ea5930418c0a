"""Which Wagtail images must not be shown: the core's visibility rule, applied to images.

An image is **withheld** when one of its moderated fields is not visible to
the public by :mod:`nsfw_moderation.query` (flagged, blocked, rejected, not
yet seen, and pending unless ``SHOW_PENDING``). An image model that is not
moderated (not in ``NSFW_MODERATION["MODELS"]``) withholds nothing.
"""

from __future__ import annotations

from typing import Any, TypeVar

from django.db import models

from nsfw_moderation import query, registry

_M = TypeVar("_M", bound=models.Model)


def is_withheld(image: models.Model) -> bool:
    """Must ``image`` be kept from the public? (No query for a model that is not moderated.)"""
    return any(not query.is_visible(image, name) for name in registry.fields_for(type(image)))


def verdict_of(image: models.Model) -> str:
    """The verdict to show on ``image``'s badge: the first withheld field's, else the first's."""
    fields = registry.fields_for(type(image))
    verdicts = [query.verdict_of(image, name) for name in fields]
    shown = query.shown_verdicts()
    return next((verdict for verdict in verdicts if verdict not in shown), verdicts[0])


def is_moderated(image: Any) -> bool:
    return bool(registry.fields_for(type(image)))


def shown_only(images: models.QuerySet[_M]) -> models.QuerySet[_M]:
    """The images of ``images`` that are not withheld (one subquery per moderated field)."""
    for name in registry.fields_for(images.model):
        images = query.visible(images, name)
    return images
