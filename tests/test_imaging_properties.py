"""Property: whatever the bytes, load_frames gives RGB frames or ImageDecodeError."""

from __future__ import annotations

import io
from functools import cache

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from PIL import Image

from nsfw_moderation.imaging import ImageDecodeError, Limits, load_frames

# Small limits keep a mutated header that declares a big canvas from costing
# seconds per example; the refusal path is the same at any size.
LIMITS = Limits(max_pixels=1_000_000, max_frames=3, max_decode_pixels=4_000_000)

PROPERTY_SETTINGS = settings(
    max_examples=300,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def _encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _animation(fmt: str, **options: object) -> bytes:
    frames = [Image.new("RGB", (12, 8), (i * 60, 255 - i * 60, 90)) for i in range(4)]
    return _encode(frames[0], fmt, save_all=True, append_images=frames[1:], **options)


@cache
def seeds() -> tuple[bytes, ...]:
    """Small valid files of each kind, the raw material for mutations."""
    picture = Image.linear_gradient("L").resize((24, 16)).convert("RGB")
    exif = Image.Exif()
    exif[0x0112] = 6
    return (
        _encode(picture, "PNG"),
        _encode(picture.convert("RGBA"), "PNG"),
        _encode(picture.convert("P"), "PNG", transparency=3),
        _encode(picture, "JPEG", quality=80),
        _encode(picture, "JPEG", exif=exif, progressive=True),
        _encode(picture.convert("CMYK"), "JPEG"),
        _encode(picture, "GIF"),
        _encode(picture, "WEBP"),
        _encode(picture, "BMP"),
        _encode(picture.convert("I;16"), "TIFF"),
        _animation("GIF"),
        _animation("WEBP", lossless=True),
        _animation("PNG"),
    )


@st.composite
def mutated_images(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(seeds())))
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        position = draw(st.integers(min_value=0, max_value=max(0, len(data) - 1)))
        kind = draw(st.sampled_from(["flip", "truncate", "insert", "delete", "overwrite"]))
        if kind == "flip" and data:
            data[position] ^= 1 << draw(st.integers(min_value=0, max_value=7))
        elif kind == "truncate":
            del data[max(1, position) :]
        elif kind == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "delete":
            del data[position : position + draw(st.integers(min_value=1, max_value=16))]
        elif kind == "overwrite":
            chunk = draw(st.binary(min_size=1, max_size=4))
            data[position : position + len(chunk)] = chunk
    return bytes(data)


MAGIC = [b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF89a", b"RIFF\x00\x00\x00\x00WEBPVP8 ", b"BM"]


def decode(data: bytes) -> list[Image.Image] | str:
    """The frames, or the refusal's message."""
    try:
        return load_frames(data, LIMITS)
    except ImageDecodeError as exc:
        return str(exc)


def assert_rgb_frames_or_decode_error(data: bytes) -> None:
    # Any other exception escapes decode() and fails the test.
    outcome = decode(data)
    if isinstance(outcome, str):
        assert outcome
        event(f"refused: {outcome.split(':')[0]}")
        return
    event("decoded")
    assert 1 <= len(outcome) <= LIMITS.max_frames
    for frame in outcome:
        assert frame.mode == "RGB"
        assert frame.width * frame.height <= LIMITS.max_pixels
        assert len(frame.tobytes()) == frame.width * frame.height * 3


@PROPERTY_SETTINGS
@given(st.binary(max_size=2_048))
def test_random_bytes(data: bytes) -> None:
    assert_rgb_frames_or_decode_error(data)


@PROPERTY_SETTINGS
@given(st.sampled_from(MAGIC), st.binary(max_size=512))
def test_random_bytes_behind_a_real_signature(magic: bytes, rest: bytes) -> None:
    assert_rgb_frames_or_decode_error(magic + rest)


@PROPERTY_SETTINGS
@given(mutated_images())
def test_mutated_images(data: bytes) -> None:
    assert_rgb_frames_or_decode_error(data)


def test_seeds_decode_unmutated() -> None:
    # Without this the mutation test could pass on seeds that never decode at all.
    for seed in seeds():
        assert load_frames(seed, LIMITS)
