"""System checks of the REST framework integration (``nsfw_moderation_rest_framework.W001`` …)."""

from __future__ import annotations

from typing import Any

from django.core.checks import CheckMessage, Tags, Warning, register

from nsfw_moderation.conf import conf


@register(Tags.compatibility)
def check_owner(**kwargs: Any) -> list[CheckMessage]:
    if conf.OWNER:
        return []
    return [
        Warning(
            "The moderation API cannot tell who owns an object: "
            "its status and statement endpoints answer 404 to everyone.",
            hint='Set NSFW_MODERATION["OWNER"] to a function that returns an object\'s owner.',
            id="nsfw_moderation_rest_framework.W001",
        )
    ]
