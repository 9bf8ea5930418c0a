"""The optional app of the REST framework integration: it adds its system checks."""

from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RestFrameworkConfig(AppConfig):
    name = "nsfw_moderation.contrib.rest_framework"
    # Not "rest_framework": that label is Django REST framework's own.
    label = "nsfw_moderation_rest_framework"
    verbose_name = _("NSFW moderation: REST framework")

    def ready(self) -> None:
        from nsfw_moderation.contrib.rest_framework import checks  # noqa: F401
