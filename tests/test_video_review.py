"""A video on the review card and the change page: a strip of its sampled frames, worst first."""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.files.base import ContentFile
from django.test import Client
from django.urls import reverse
from PIL import Image

pytest.importorskip("av")

from nsfw_moderation import registry
from nsfw_moderation.models import ModeratedImage, Verdict, VideoFrame
from tests import videos
from tests.testapp.models import Document

pytest_plugins = ["tests.admin_fixtures"]
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("colour_backend")]

PREFIX = "admin:nsfw_moderation_moderatedimage"
SCENES = [(0.0, videos.SAFE), (37.0, videos.UNSAFE), (39.0, videos.SAFE)]


@pytest.fixture
def video_row() -> ModeratedImage:
    data = videos.clip(SCENES, seconds=45, gop=10)
    document = Document.objects.create(file=ContentFile(data, name="clip.mp4"))
    (field_name,) = registry.fields_for(Document)
    row = ModeratedImage.objects.of_object(document, field_name).get()
    assert row.verdict == Verdict.FLAGGED
    return row


def test_the_card_shows_the_sampled_frames_worst_first(
    client: Client, reviewer: User, video_row: ModeratedImage
) -> None:
    client.force_login(reviewer)
    response = client.get(reverse(f"{PREFIX}_review"))
    (card,) = [card for card in response.context["cards"] if card.row.pk == video_row.pk]
    assert [frame.clock for frame in card.frames][:1] == ["0:37"]
    assert len(card.frames) == VideoFrame.objects.filter(image=video_row).count()
    html = response.content.decode()
    assert 'class="nsfw-strip"' in html
    assert card.frames[0].url in html


def test_one_frame_opens_larger_as_a_re_encoded_jpeg(
    client: Client, reviewer: User, video_row: ModeratedImage
) -> None:
    client.force_login(reviewer)
    response = client.get(reverse(f"{PREFIX}_review"))
    (card,) = [card for card in response.context["cards"] if card.row.pk == video_row.pk]
    frame = client.get(card.frames[0].url)
    assert frame.status_code == 200
    assert frame["X-Moderation-Preview"] == "image"
    assert frame["Cache-Control"] == "private, no-store"
    picture = Image.open(io.BytesIO(frame.content)).convert("RGB")
    red, _, blue = picture.getpixel((5, 5))  # type: ignore[misc]
    assert red > 200
    assert blue < 60
    # Without the bytes it was shown for, nothing but a placeholder.
    stale = client.get(card.frames[0].url.split("?")[0])
    assert stale["X-Moderation-Preview"] == "changed"


def test_frames_need_the_review_permission(
    client: Client, staff: User, video_row: ModeratedImage
) -> None:
    frame = VideoFrame.objects.filter(image=video_row).first()
    assert frame is not None
    client.force_login(staff)
    url = reverse(f"{PREFIX}_frame", args=[video_row.pk, frame.pk])
    response = client.get(url, {"sha256": video_row.sha256})
    assert response.status_code == 403


def test_the_change_page_shows_the_strip(
    client: Client, reviewer: User, video_row: ModeratedImage
) -> None:
    client.force_login(reviewer)
    response: Any = client.get(reverse(f"{PREFIX}_change", args=[video_row.pk]))
    assert response.status_code == 200
    assert [frame.clock for frame in response.context["video_frames"]][:1] == ["0:37"]
    assert 'class="nsfw-strip"' in response.content.decode()
