"""Hostile videos: each is bounded or refused, fast, and nothing is lost (DESIGN invariant 6)."""

from __future__ import annotations

import io
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from django.core.files.base import ContentFile

pytest.importorskip("av")

from nsfw_moderation import imaging, registry, video
from nsfw_moderation.models import ModeratedImage, Status, Verdict
from tests import hostile_video, videos
from tests.conftest import moderation
from tests.testapp.models import Document

#: What each clip of the corpus comes to: "refused" (flagged for a person), "damaged", or frames.
EXPECTED: dict[str, str | int] = {
    "five-hours": "refused",
    "enormous-dimensions": 1,
    "hours-of-tiny-frames": 32,
    "many-streams": "refused",
    "truncated": "damaged",
    "broken-mp4": "damaged",
    "moov-only": "damaged",
    "negative-timestamps": 3,
    "zero-length-frames": 1,
    "variable-frame-rate": 8,
    "ten-bit-hdr": 1,
    "still-image": 1,
    "at-the-pixel-limit": 1,
}


@pytest.fixture(scope="module")
def corpus() -> dict[str, bytes]:
    return {name: build() for name, build in hostile_video.CORPUS.items()}


@pytest.mark.parametrize("name", list(hostile_video.CORPUS))
def test_every_hostile_clip_is_bounded_or_refused_fast(corpus: dict[str, bytes], name: str) -> None:
    data = corpus[name]
    assert video.looks_like_video(data[: video.HEAD_BYTES])
    started = time.monotonic()
    try:
        decoded = video.decode(io.BytesIO(data))
    except imaging.ImageRefused:
        outcome: str | int = "refused"
    except imaging.ImageDecodeError:
        outcome = "damaged"
    else:
        outcome = len(decoded.frames)
        assert all(max(frame.image.size) <= 448 for frame in decoded.frames)
        assert [frame.time for frame in decoded.frames] == sorted(
            {frame.time for frame in decoded.frames}
        )
        assert all(frame.time >= 0 for frame in decoded.frames)
    assert time.monotonic() - started < 3
    if name == "negative-timestamps":
        # Its frames are not all keyframes: three marks, whatever the encoder chose besides.
        assert isinstance(outcome, int)
        assert outcome >= EXPECTED[name]
    else:
        assert outcome == EXPECTED[name]


def test_two_hours_of_frames_cost_the_frame_cap(
    corpus: dict[str, bytes],
) -> None:
    data = corpus["hours-of-tiny-frames"]
    decoded = video.decode(io.BytesIO(data), video.VideoLimits(max_frames=8))
    assert decoded.duration == 7200
    assert len(decoded.frames) == 8
    # Spread over the whole clip, not its start.
    assert decoded.frames[-1].time >= 6000


def test_the_pixel_limit_is_checked_before_any_frame_is_decoded() -> None:
    data = videos.clip([(0.0, videos.SAFE)], seconds=1, size=(640, 480))
    with pytest.raises(imaging.ImageRefused, match="over the 100,000-pixel limit"):
        video.decode(io.BytesIO(data), video.VideoLimits(max_pixels=100_000))


def test_decoding_stops_at_the_time_limit() -> None:
    data = videos.clip([(0.0, videos.SAFE)], seconds=1)
    with pytest.raises(imaging.ImageRefused, match="took too long"):
        video.decode(io.BytesIO(data), video.VideoLimits(decode_timeout=1e-9))


def test_an_empty_file_and_noise_are_not_videos() -> None:
    assert not video.looks_like_video(b"")
    assert not video.looks_like_video(b"\x89PNG\r\n\x1a\n" + bytes(100))
    # AVIF is an image in an ISO base media file: Pillow's, not FFmpeg's.
    assert not video.looks_like_video(b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1miaf")


def row_of(obj: Any) -> ModeratedImage:
    (field_name,) = registry.fields_for(type(obj))
    return ModeratedImage.objects.of_object(obj, field_name).get()


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("colour_backend")
def test_refused_clips_are_flagged_for_a_person_and_damaged_ones_follow_on_error(
    corpus: dict[str, bytes],
) -> None:
    with moderation(ON_ERROR="allow"):
        refused = Document.objects.create(file=ContentFile(corpus["five-hours"], name="a.mp4"))
        damaged = Document.objects.create(file=ContentFile(corpus["truncated"], name="b.mkv"))
    refused_row, damaged_row = row_of(refused), row_of(damaged)
    assert (refused_row.status, refused_row.verdict) == (Status.FAILED, Verdict.FLAGGED)
    assert "over the 14,400-second limit" in refused_row.error
    assert (damaged_row.status, damaged_row.verdict) == (Status.FAILED, Verdict.ALLOWED)
    assert damaged_row.error == "The video is damaged or truncated."


def test_a_worker_decoding_16_hostile_clips_stays_under_1_5_gb(
    corpus: dict[str, bytes], tmp_path: Path
) -> None:
    root = Path(__file__).resolve().parent.parent
    for name, data in corpus.items():
        (tmp_path / name).write_bytes(data)
    result = subprocess.run(
        [sys.executable, "-m", "tests.video_rss", str(tmp_path)],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    frames, peak = map(int, result.stdout.split())
    assert frames > 16  # the batch was decoded, not refused wholesale
    assert peak <= 1_500_000_000, f"peak RSS {peak:,} bytes"


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("colour_backend")
def test_nothing_is_lost_every_hostile_clip_ends_with_an_outcome(
    corpus: dict[str, bytes],
) -> None:
    with moderation(ON_ERROR="allow", BATCH_SIZE=16):
        documents = {
            name: Document.objects.create(file=ContentFile(data, name=f"{name}.mkv"))
            for name, data in corpus.items()
        }
    for name, document in documents.items():
        row = row_of(document)
        if EXPECTED[name] == "refused":
            assert (row.status, row.verdict) == (Status.FAILED, Verdict.FLAGGED), name
        elif EXPECTED[name] == "damaged":
            assert (row.status, row.verdict) == (Status.FAILED, Verdict.ALLOWED), name
        else:
            assert row.status == Status.DONE, (name, row.error)
            assert row.frame_time is not None
