from __future__ import annotations

from django.apps import AppConfig


class TestAppConfig(AppConfig):
    name = "tests.testapp"
    label = "testapp"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        import nsfw_moderation

        from .models import Banner

        # Registered in code rather than in settings.
        nsfw_moderation.register(Banner, fields=["image"])
