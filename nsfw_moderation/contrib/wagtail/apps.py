"""Wiring at start-up: the rendition and insertion guards, the checks, the rendition clean-up."""

from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class NsfwModerationWagtailConfig(AppConfig):
    name = "nsfw_moderation.contrib.wagtail"
    label = "nsfw_moderation_wagtail"
    verbose_name = _("NSFW moderation for Wagtail")

    def ready(self) -> None:
        from nsfw_moderation import signals
        from nsfw_moderation.contrib.wagtail import checks, guards  # noqa: F401

        guards.install()
        for name in ("image_flagged", "image_blocked", "image_reviewed"):
            getattr(signals, name).connect(
                guards.drop_renditions, dispatch_uid=f"nsfw_moderation_wagtail:{name}"
            )
