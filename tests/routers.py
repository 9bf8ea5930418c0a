"""A database router that keeps nsfw_moderation's tables in a database of their own."""

from __future__ import annotations

from typing import Any

from django.db import models


class ModerationRouter:
    def db_for_read(self, model: type[models.Model], **hints: Any) -> str | None:
        return "moderation" if model._meta.app_label == "nsfw_moderation" else None

    db_for_write = db_for_read

    def allow_relation(self, obj1: models.Model, obj2: models.Model, **hints: Any) -> bool:
        # ModeratedImage points at content types and users, which live in both
        # test databases with the same ids (both are migrated the same way).
        return True
