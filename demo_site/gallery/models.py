from __future__ import annotations

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.db.models import CharField, OuterRef, Subquery
from django.db.models.functions import Cast

from nsfw_moderation import formats
from nsfw_moderation.models import ModeratedImage
from nsfw_moderation.query import shown_verdicts


class PhotoQuerySet(models.QuerySet["Photo"]):
    def with_moderation(self) -> PhotoQuerySet:
        """Annotate each photo with its moderation row's fields, in the same query.

        ``ModeratedImage.object_id`` is a string (so any primary key type
        works), hence the cast of our integer pk.
        """
        rows = ModeratedImage.objects.filter(
            content_type=ContentType.objects.get_for_model(self.model),
            object_id=Cast(OuterRef("pk"), CharField()),
            field_name="image",
            # The row of the file the photo holds now, not of one it held before.
            file_name=OuterRef("image"),
        )
        return self.annotate(
            **{
                f"moderation_{name}": Subquery(rows.values(name)[:1])
                for name in ("status", "verdict", "score", "model_name")
            }
        )


class Photo(models.Model):
    title = models.CharField(max_length=200)
    image = models.ImageField(upload_to="photos/%Y/%m/")
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="photos",
    )
    created = models.DateTimeField(auto_now_add=True)

    objects = PhotoQuerySet.as_manager()

    class Meta:
        ordering = ["-created", "-pk"]

    def __str__(self) -> str:
        return self.title

    @property
    def is_video(self) -> bool:
        """Whether the upload is a clip (its name says so; the form checked its bytes)."""
        return bool(formats.names_video(self.image.name))

    @property
    def is_visible(self) -> bool:
        """Whether the public may see the image (needs ``with_moderation()``).

        The app's own rule (``query.visible``): allowed or approved; pending
        images wait unseen, as ``SHOW_PENDING`` is off.
        """
        return getattr(self, "moderation_verdict", None) in shown_verdicts()
