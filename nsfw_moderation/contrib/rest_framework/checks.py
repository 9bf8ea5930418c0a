"""System checks of the REST framework integration (``nsfw_moderation_rest_framework.W001`` …)."""

from __future__ import annotations

from typing import Any

from django.core.checks import CheckMessage, Tags, Warning, register
from django.urls import NoReverseMatch, reverse

from nsfw_moderation.conf import conf


@register(Tags.urls)
def check_owner(**kwargs: Any) -> list[CheckMessage]:
    """W001: the owner's endpoints are mounted, but nothing says who owns an object.

    A site that uses only the serializer fields and the filter needs no owner:
    it gets no warning.
    """
    if conf.OWNER or not _endpoints_mounted():
        return []
    return [
        Warning(
            "The moderation API cannot tell who owns an object: "
            "its status and statement endpoints answer 404 to everyone.",
            hint='Set NSFW_MODERATION["OWNER"] to a function that returns an object\'s owner.',
            id="nsfw_moderation_rest_framework.W001",
        )
    ]


def _endpoints_mounted() -> bool:
    try:
        reverse("nsfw_moderation_api:statements")
    except NoReverseMatch:
        return False
    return True
