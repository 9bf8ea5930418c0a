"""System checks of the Wagtail integration: the chooser setting, and template precedence."""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.core.checks import CheckMessage, Error, Tags, Warning, register

from nsfw_moderation.conf import WAGTAIL_CHOOSER_CHOICES, conf

APP = "nsfw_moderation.contrib.wagtail"


@register(Tags.compatibility)
def check_chooser(**kwargs: Any) -> list[CheckMessage]:
    value = conf.WAGTAIL_CHOOSER
    if value in WAGTAIL_CHOOSER_CHOICES:
        return []
    return [
        Error(
            f"NSFW_MODERATION['WAGTAIL_CHOOSER'] is {value!r}.",
            hint=f"Choose one of: {', '.join(WAGTAIL_CHOOSER_CHOICES)}.",
            id="nsfw_moderation_wagtail.E001",
        )
    ]


@register(Tags.templates)
def check_app_order(**kwargs: Any) -> list[CheckMessage]:
    return app_order_warnings([config.name for config in apps.get_app_configs()])


def app_order_warnings(names: list[str]) -> list[CheckMessage]:
    """The badges are template overrides: this app must come before ``wagtail.images``."""
    if "wagtail.images" not in names or names.index(APP) < names.index("wagtail.images"):
        return []
    return [
        Warning(
            f"{APP} comes after wagtail.images in INSTALLED_APPS: "
            "Wagtail's image listing and chooser will show no moderation badges.",
            hint=f"Put {APP!r} above 'wagtail.images'.",
            id="nsfw_moderation_wagtail.W001",
        )
    ]
