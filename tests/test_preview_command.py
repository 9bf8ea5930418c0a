"""``nsfw_previews``: rows classified before previews were stored get one."""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.core.management import call_command
from PIL import Image

from nsfw_moderation.models import ModeratedImage, Preview, Status
from tests.images import blue, image_bytes
from tests.testapp.models import Photo

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("colour_backend")]


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("nsfw_previews", *args, stdout=out)
    return out.getvalue()


def as_before_previews(*photos: Any) -> None:
    """Rows as a worker of an earlier version left them: classified, without a preview."""
    Preview.objects.filter(image__object_id__in=[str(p.pk) for p in photos]).delete()


def test_classified_rows_without_a_preview_get_one() -> None:
    photos = [Photo.objects.create(image=blue(f"{i}.png")) for i in range(3)]
    as_before_previews(*photos)
    assert run("--dry-run") == "3 row(s) have no preview.\n"
    assert "Made 3 preview(s)" in run()
    for photo in photos:
        row = ModeratedImage.objects.of_object(photo, "image").get()
        jpeg = Preview.objects.get(image=row, file_name=row.file_name).jpeg
        assert Image.open(io.BytesIO(bytes(jpeg))).format == "JPEG"
    assert run("--dry-run") == "0 row(s) have no preview.\n"


def test_missing_and_undecodable_files_keep_their_placeholder() -> None:
    gone = Photo.objects.create(image=blue())
    broken = Photo.objects.create(image=ContentFile(b"not an image", name="x.png"))
    as_before_previews(gone, broken)
    gone.image.storage.delete(gone.image.name)
    out = run()
    assert "Made 0 preview(s); 1 file(s) gone, 1 not decodable" in out


def test_rows_waiting_for_the_worker_are_left_to_it(settings: Any) -> None:
    settings.NSFW_MODERATION = {**settings.NSFW_MODERATION, "QUEUE": "django_q"}
    photo = Photo.objects.create(image=ContentFile(image_bytes(), name="new.png"))
    assert ModeratedImage.objects.of_object(photo, "image").get().status == Status.QUEUED
    assert run("--dry-run") == "0 row(s) have no preview.\n"


def test_limit() -> None:
    photos = [Photo.objects.create(image=blue(f"{i}.png")) for i in range(3)]
    as_before_previews(*photos)
    assert "Made 2 preview(s)" in run("--limit", "2")
    assert run("--dry-run") == "1 row(s) have no preview.\n"
