"""Host models of the benchmarks.

``PlainPhoto`` and ``ModeratedPhoto`` are the same model, registered for
moderation or not (``benchmarks/run.py``). ``ScalePhoto`` (UUID primary key)
and ``ScaleAvatar`` (integer primary key) hold the objects of the scaling
benchmark (``benchmarks/scale.py``).
"""

from __future__ import annotations

import uuid

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


class ScalePhoto(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    title = models.CharField(max_length=100, blank=True)
    image = models.ImageField(upload_to="photos", blank=True)

    def __str__(self) -> str:
        return self.title


class ScaleAvatar(models.Model):
    title = models.CharField(max_length=100, blank=True)
    image = models.ImageField(upload_to="avatars", blank=True)

    def __str__(self) -> str:
        return self.title
