from __future__ import annotations

import uuid

from django.core.files.storage import FileSystemStorage, InMemoryStorage
from django.db import models

memory_storage = InMemoryStorage()
# Like django-storages' S3 default (file_overwrite=True): a name is reused, not suffixed.
overwriting_storage = FileSystemStorage(allow_overwrite=True)


class Photo(models.Model):
    """Integer primary key, filesystem storage."""

    title = models.CharField(max_length=100, blank=True)
    image = models.ImageField(upload_to="photos", blank=True)

    def __str__(self) -> str:
        return self.title


class ProxyPhoto(Photo):
    class Meta:
        proxy = True


class FeaturedPhoto(Photo):
    """Multi-table inheritance from a moderated model: inherits its ``image``."""

    headline = models.CharField(max_length=100, blank=True)


def member_avatar(instance: Member, filename: str) -> str:
    return f"members/{instance.pk}.png"


class Member(models.Model):
    """One avatar per member under a fixed name, on a storage that overwrites."""

    nickname = models.CharField(max_length=50, blank=True)
    avatar = models.ImageField(upload_to=member_avatar, storage=overwriting_storage, blank=True)


class Document(models.Model):
    """UUID primary key, a plain FileField on a non-filesystem storage."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    file = models.FileField(upload_to="docs", storage=memory_storage, blank=True)


class SignedDocument(Document):
    """Multi-table inheritance from a model with a UUID primary key."""

    signer = models.CharField(max_length=50, blank=True)


class Slide(models.Model):
    """String primary key."""

    slug = models.CharField(primary_key=True, max_length=50)
    picture = models.ImageField(upload_to="slides", blank=True)


class Profile(models.Model):
    """Two moderated fields, and one that is not."""

    name = models.CharField(max_length=50, blank=True)
    avatar = models.ImageField(upload_to="avatars", blank=True)
    banner = models.ImageField(upload_to="banners", blank=True)
    attachment = models.FileField(upload_to="attachments", blank=True)


class BaseBanner(models.Model):
    image = models.ImageField(upload_to="banners", blank=True)

    class Meta:
        abstract = True


class Banner(BaseBanner):
    """Inherits its field from an abstract model; registered in code."""

    caption = models.CharField(max_length=50, blank=True)
