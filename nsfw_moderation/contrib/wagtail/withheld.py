"""Which Wagtail images must not be shown: the core's visibility rule, applied to images.

An image is **withheld** when one of its moderated fields is not visible to
the public by :mod:`nsfw_moderation.query` (flagged, blocked, rejected, not
yet seen, and pending unless ``SHOW_PENDING``). An image model that is not
moderated (not in ``NSFW_MODERATION["MODELS"]``) withholds nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
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


def prefetch_verdicts(images: Iterable[_M]) -> list[_M]:
    """Give a page of images their verdicts in one query per moderated field (none if unmoderated).

    :func:`is_withheld` and :func:`verdict_of` then ask nothing per image.
    """
    found = list(images)
    for name in registry.fields_for(type(found[0])) if found else ():
        query.prefetch_verdicts(found, name)
    return found
