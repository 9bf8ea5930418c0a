"""Two identical models: one registered for moderation, one not."""

from __future__ import annotations

from django.db import models


class PlainPhoto(models.Model):
    title = models.CharField(max_length=100, blank=True)
    image = models.ImageField(upload_to="plain", blank=True)

    def __str__(self) -> str:
        return self.title


class ModeratedPhoto(models.Model):
    title = models.CharField(max_length=100, blank=True)
    image = models.ImageField(upload_to="moderated", blank=True)

    def __str__(self) -> str:
        return self.title
