"""Videos in registered file fields: sampled, scored by their worst frame, stored frame by frame.

Clips are encoded in code with PyAV, one for each container and codec family
browsers play that the installed wheel can encode, and saved through the
models with ``QUEUE="sync"``: each goes through the real worker pipeline.
"""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.core.files.base import ContentFile

pytest.importorskip("av")

import itertools

from nsfw_moderation import registry, video
from nsfw_moderation.models import (
    ModeratedImage,
    Preview,
    Status,
    Verdict,
    VideoFrame,
)
from tests import videos
from tests.conftest import moderation
from tests.testapp.models import Document

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("colour_backend")]

#: Safe at first, unsafe from 37 s to 39 s, safe again after.
SCENES = [(0.0, videos.SAFE), (37.0, videos.UNSAFE), (39.0, videos.SAFE)]


def row_of(obj: Any) -> ModeratedImage:
    (field_name,) = registry.fields_for(type(obj))
    return ModeratedImage.objects.of_object(obj, field_name).get()


def upload(data: bytes, name: str, **settings: Any) -> ModeratedImage:
    with moderation(**settings):
        document = Document.objects.create(file=ContentFile(data, name=name))
    return row_of(document)


@pytest.mark.parametrize("family", list(videos.FAMILIES))
def test_an_unsafe_scene_at_37_seconds_flags_the_clip_with_that_time(family: str) -> None:
    codec, fmt, extension = videos.FAMILIES[family]
    if not videos.encodable(codec):
        pytest.skip(f"this PyAV wheel cannot encode {codec}")
    # A keyframe every two seconds at most, as streaming presets put them.
    data = videos.clip(SCENES, seconds=45, codec=codec, fmt=fmt, gop=10)
    row = upload(data, f"clip{extension}")
    assert (row.status, row.verdict) == (Status.DONE, Verdict.FLAGGED), row.error
    assert row.frame_time == 37.0
    assert row.file_format == ("AVI" if fmt == "avi" else "MATROSKA" if fmt == "webm" else "MP4")
    frames = list(VideoFrame.of(row))
    worst = frames[0]
    assert (worst.time, worst.score) == (37.0, row.score)
    # A frame every two seconds (the default interval) besides the scene changes.
    times = sorted(frame.time for frame in frames)
    assert times[0] == 0.0
    assert times[-1] >= 40.0
    assert all(later - earlier <= 2.5 for earlier, later in itertools.pairwise(times))
    assert all(
        frame.score is not None and frame.score < 0.5 for frame in frames[1:] if frame.time < 37
    )
    assert Preview.objects.get(image=row).jpeg


def test_a_safe_clip_is_allowed_and_its_frames_are_kept() -> None:
    data = videos.clip([(0.0, videos.SAFE)], seconds=6, gop=10)
    row = upload(data, "holiday.mp4")
    assert (row.status, row.verdict) == (Status.DONE, Verdict.ALLOWED), row.error
    assert sorted(VideoFrame.of(row).values_list("time", flat=True)) == [0.0, 2.0, 4.0]
    assert row.sha256


def test_the_interval_and_the_frame_cap_are_settings() -> None:
    data = videos.clip([(0.0, videos.SAFE)], seconds=20, gop=5)
    row = upload(data, "a.mp4", VIDEO_FRAME_INTERVAL=1, VIDEO_MAX_FRAMES=4)
    assert VideoFrame.of(row).count() == 4


def test_frames_sit_at_keyframes_and_a_scene_change_between_marks_is_found() -> None:
    # Marks at 0, 10, 20 s; the unsafe scene at 13 s lies between them, on a keyframe.
    scenes = [(0.0, videos.SAFE), (13.0, videos.UNSAFE), (14.0, videos.SAFE)]
    data = videos.clip(scenes, seconds=30, gop=300)
    row = upload(data, "cut.mp4", VIDEO_FRAME_INTERVAL=10)
    assert row.verdict == Verdict.FLAGGED
    assert row.frame_time == 13.0


def test_rotation_from_the_display_matrix_is_applied() -> None:
    data = videos.clip([(0.0, videos.SAFE)], seconds=1, size=(64, 32), rotation=90)
    (frame,) = video.decode(io.BytesIO(data)).frames
    assert frame.image.size == (32, 64)


def test_a_video_is_identified_by_its_bytes_not_its_name() -> None:
    data = videos.clip([(0.0, videos.UNSAFE)], seconds=1)
    row = upload(data, "no-extension")
    assert (row.status, row.verdict, row.file_format) == (Status.DONE, Verdict.FLAGGED, "MP4")


def test_a_video_named_as_an_image_is_flagged_with_a_preview() -> None:
    data = videos.clip([(0.0, videos.SAFE)], seconds=1)
    row = upload(data, "innocent.jpg", ON_ERROR="allow")
    assert (row.status, row.verdict) == (Status.FAILED, Verdict.FLAGGED)
    assert "its name and its contents disagree" in row.error
    assert Preview.objects.filter(image=row).exists()


def test_statement_of_reasons_says_video_and_names_the_time() -> None:
    from nsfw_moderation import notices
    from nsfw_moderation.models import Statement

    data = videos.clip(SCENES, seconds=45)
    row = upload(data, "clip.mp4", BLOCK_THRESHOLD=0.6)
    assert row.verdict == Verdict.BLOCKED
    statement = Statement.objects.get(image=row)
    assert statement.frame_time == 37.0
    assert "video" in notices.reasons(statement)
    assert "0:37" in notices.reasons(statement)


def test_a_known_image_inside_a_clip_matches_its_hash_bank() -> None:
    from nsfw_moderation import banks, hashing
    from nsfw_moderation.models import HashBank
    from tests.images import picture

    if not hashing.available():
        pytest.skip("pdqhash is not installed")
    known = picture(1)
    blocked = HashBank.objects.create(name="partner list", action=HashBank.Action.BLOCK)
    banks.add_entries(blocked, [(*hashing.pdq(known), "known")])
    banks.forget_index()
    scenes = [(0.0, picture(2)), (5.0, known), (7.0, picture(3))]
    data = videos.clip(scenes, seconds=10, size=(256, 256), gop=10)
    row = upload(data, "reel.mp4")
    assert row.verdict == Verdict.BLOCKED
    assert row.bank_entry is not None
    assert row.bank_entry.bank == blocked
    # Every sampled frame's hash is kept, the known one's among them.
    known_hash = hashing.pdq(known).hex
    frames = {frame.time: frame.pdq for frame in VideoFrame.of(row)}
    distances = hashing.distances(hashing.to_words([frames[5.0]]), hashing.to_words([known_hash]))
    assert int(distances[0, 0]) <= 31  # re-encoded, yet within the matching distance


def test_a_frame_every_interval_even_where_keyframes_are_far_apart() -> None:
    # libx264's default: a keyframe every 250 frames, 50 s at 5 frames a second.
    data = videos.clip(SCENES, seconds=45)
    decoded = video.decode(io.BytesIO(data))
    times = [frame.time for frame in decoded.frames]
    assert set(range(0, 45, 2)) <= set(times)
    assert 37.0 in times  # the scene cut, a keyframe met on the way


def test_the_upload_validator_takes_images_and_videos_named_as_such() -> None:
    from django.core.exceptions import ValidationError
    from django.core.files.uploadedfile import SimpleUploadedFile

    from nsfw_moderation.validators import validate_image_or_video
    from tests.images import image_bytes

    data = videos.clip([(0.0, videos.SAFE)], seconds=1)
    validate_image_or_video(SimpleUploadedFile("clip.webm", data))
    validate_image_or_video(SimpleUploadedFile("clip", data))
    validate_image_or_video(SimpleUploadedFile("photo.png", image_bytes()))
    for name, content in [("clip.jpg", data), ("clip.html", data), ("notes.mp4", b"hello")]:
        with pytest.raises(ValidationError):
            validate_image_or_video(SimpleUploadedFile(name, content))
