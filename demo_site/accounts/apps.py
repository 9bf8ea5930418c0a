from __future__ import annotations

from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "demo_site.accounts"
    label = "accounts"
    verbose_name = "Accounts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        import nsfw_moderation
        from demo_site.accounts.models import Profile

        # Registered in code; gallery.Photo shows the settings way (MODELS).
        nsfw_moderation.register(Profile, fields=["avatar"])
