from __future__ import annotations

from django.apps import AppConfig


class GalleryConfig(AppConfig):
    # Photo.image is moderated through settings: NSFW_MODERATION["MODELS"].
    name = "demo_site.gallery"
    label = "gallery"
    verbose_name = "Gallery"
    default_auto_field = "django.db.models.BigAutoField"
