from __future__ import annotations

from django.apps import AppConfig


class WagtailAppConfig(AppConfig):
    name = "tests.wagtailapp"
    default_auto_field = "django.db.models.BigAutoField"
