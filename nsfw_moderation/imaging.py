"""Safe decoding of untrusted image bytes. Independent of Django.

Every failure raises :class:`ImageDecodeError` with a message a moderator can
read; nothing else escapes :func:`load_frames`. Sizes are checked from the
header, before any pixel buffer exists, and again after every seek because
later frames (TIFF pages, MPO pictures) may declare sizes of their own.
"""

from __future__ import annotations

import hashlib
import io
import math
import struct
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

from PIL import ExifTags, Image, UnidentifiedImageError

#: Images are decoded to at least this size (JPEG draft mode), never smaller.
MIN_DECODE_SIZE = (224, 224)

#: Transparent pixels are composited onto this neutral grey.
BACKGROUND = (128, 128, 128)

# Formats we decode, in the order Pillow tries them. Vector and document
# formats (SVG, PDF, EPS) are refused: Pillow either cannot read them or would
# hand them to external programs. ICO is refused because an icon may embed a
# PNG far larger than its directory declares, which our pixel limit cannot see
# before the PNG is decoded. HEIF only opens where a plugin such as pillow-heif
# has registered it.
ALLOWED_FORMATS = (
    "JPEG",
    "MPO",
    "PNG",
    "GIF",
    "WEBP",
    "BMP",
    "DIB",
    "TIFF",
    "PPM",
    "TGA",
    "JPEG2000",
    "AVIF",
    "HEIF",
)

_HIGH_BIT_DEPTH_MODES = frozenset({"I;16", "I;16B", "I;16L", "I;16N", "I", "F"})
_ALPHA_MODES = frozenset({"RGBA", "LA", "PA", "P", "RGBa"})
# Modes whose transparency is a single colour key in ``info`` (PNG tRNS).
_KEYED_TRANSPARENCY_MODES = frozenset({"1", "L", "RGB"})

# Not ImageOps.exif_transpose: that turns one image and raises on a damaged
# EXIF block, while every sampled frame of an animation needs the first
# frame's orientation, and a bad EXIF block must not cost us the picture.
_ORIENTATION_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


# What Pillow's parsers raise on malformed bytes, beyond OSError: headers that
# end early, fields that point nowhere, sizes that do not add up.
_DAMAGED_FILE_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    IndexError,
    KeyError,
    TypeError,
    ZeroDivisionError,
    struct.error,
)


class ImageDecodeError(ValueError):
    """The bytes are not an image we can safely decode."""


class ImageRefused(ImageDecodeError):
    """The bytes may well be an image, but decoding them is refused: too large, too
    many pixels, a format that is not accepted. Unlike damaged bytes, a refused
    file is never let through by a lenient setting: it is for a person to see."""


@dataclass(frozen=True)
class Limits:
    max_pixels: int = 64_000_000
    max_bytes: int = 50 * 1024 * 1024
    max_frames: int = 8
    #: GIF, WebP and APNG decode every frame up to the one asked for, so an
    #: animation costs (frames reached) × (canvas pixels). Past this budget the
    #: sample is taken from the frames that fit, from the start.
    max_animation_pixels: int = 256_000_000


def load_frames(data: bytes, limits: Limits | None = None) -> list[Image.Image]:
    """Decode ``data`` into RGB frames ready for a classifier.

    A still image gives one frame; an animated one gives up to
    ``limits.max_frames`` frames spread evenly over the animation. The frames
    are fully loaded and share nothing with the decoder.
    """
    limits = limits or Limits()
    _check_length(data, limits)
    try:
        with warnings.catch_warnings():
            # Hostile files make Pillow warn about every odd EXIF block and
            # palette; the verdict is what matters, not the noise.
            warnings.simplefilter("ignore")
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return _decode(data, limits)
    except ImageDecodeError:
        raise
    except Exception as exc:  # Pillow plugins raise a zoo of types on hostile input.
        raise _as_decode_error(exc) from None


def _check_length(data: bytes, limits: Limits) -> None:
    if not data:
        raise ImageDecodeError("The file is empty.")
    if len(data) > limits.max_bytes:
        raise ImageRefused(
            f"The file is {len(data):,} bytes, over the {limits.max_bytes:,}-byte limit."
        )


def _as_decode_error(exc: Exception) -> ImageDecodeError:
    if isinstance(exc, UnidentifiedImageError):
        return ImageDecodeError("The file is not an image in a format we can read.")
    if isinstance(exc, (Image.DecompressionBombError, Image.DecompressionBombWarning)):
        return ImageRefused(f"The image is too large to decode safely: {exc}")
    if isinstance(exc, MemoryError):
        return ImageRefused("The image needs more memory to decode than is available.")
    if isinstance(exc, _DAMAGED_FILE_ERRORS):
        return ImageDecodeError(f"The image is damaged or truncated: {exc}")
    return ImageDecodeError(f"The image could not be decoded: {exc!r}")


def _decode(data: bytes, limits: Limits) -> list[Image.Image]:
    # Restricting the plugins Pillow tries keeps hostile bytes away from the
    # parsers of formats we never meant to accept.
    image = Image.open(io.BytesIO(data), formats=_openable_formats())
    if image.format not in ALLOWED_FORMATS:
        raise ImageRefused(f"Images in {image.format} format are not accepted.")
    _check_size(image, limits)
    indices = frame_indices(_affordable_frame_count(image, limits), limits.max_frames)
    return list(_frames(image, indices, limits))


_openable: tuple[int, list[str]] = (-1, [])


def _openable_formats() -> list[str]:
    # Recomputed when Pillow's registry changes: a HEIF plugin may register
    # itself after import.
    global _openable
    Image.init()
    if _openable[0] != len(Image.OPEN):
        _openable = (len(Image.OPEN), [name for name in ALLOWED_FORMATS if name in Image.OPEN])
    return _openable[1]


def _check_size(image: Image.Image, limits: Limits) -> None:
    """Refuse before any pixel is decoded: only the header has been read so far."""
    width, height = image.size
    if width < 1 or height < 1:
        raise ImageDecodeError("The image has no pixels.")
    if width * height > limits.max_pixels:
        raise ImageRefused(
            f"The image is {width}×{height} = {width * height:,} pixels, "
            f"over the {limits.max_pixels:,}-pixel limit."
        )


def _affordable_frame_count(image: Image.Image, limits: Limits) -> int:
    count = max(1, int(getattr(image, "n_frames", 1)))
    if count == 1 or image.format == "MPO":
        # Browsers show only the primary picture of a multi-picture JPEG, and
        # Pillow's draft mode on it breaks seeking to the others.
        return 1
    width, height = image.size
    return max(1, min(count, limits.max_animation_pixels // (width * height)))


def _frames(image: Image.Image, indices: list[int], limits: Limits) -> Iterator[Image.Image]:
    transpose: Image.Transpose | None = None
    animated = indices != [0]
    for index in indices:
        if animated:
            image.seek(index)
            _check_size(image, limits)
        if image.format in ("JPEG", "MPO"):
            image.draft("RGB", _draft_size(image.size))
        image.load()
        if index == 0:
            # Some formats (PNG eXIf) only reveal EXIF once loaded.
            transpose = _exif_transpose_method(image)
        yield _finish(image, transpose, animated)


def _finish(image: Image.Image, transpose: Image.Transpose | None, animated: bool) -> Image.Image:
    frame = to_rgb(image)
    if transpose is not None:
        frame = frame.transpose(transpose)
    if frame is not image:
        return frame
    # The frame is the decoder's own image. An animation will seek on and may
    # overwrite it, so it needs a copy; a still image can hand its pixels over
    # to a fresh Image that holds no file, so closing the source cannot touch it.
    return image.copy() if animated else image._new(image.im)


def _exif_transpose_method(image: Image.Image) -> Image.Transpose | None:
    try:
        orientation = image.getexif().get(ExifTags.Base.Orientation)
    except Exception:  # A damaged EXIF block should not cost us the picture.
        return None
    if not isinstance(orientation, int):
        return None
    return _ORIENTATION_TRANSPOSE.get(orientation)


def frame_indices(count: int, max_frames: int) -> list[int]:
    """Up to ``max_frames`` indices spread evenly over ``count`` frames.

    The first and the last frame are always included: what an animation ends
    on matters as much as what it starts with.
    """
    if count < 1:
        return []
    max_frames = max(1, max_frames)
    if count <= max_frames:
        return list(range(count))
    if max_frames == 1:
        return [0]
    step = (count - 1) / (max_frames - 1)
    return [round(i * step) for i in range(max_frames)]


def _draft_size(size: tuple[int, int]) -> tuple[int, int]:
    # Keep both sides at least MIN_DECODE_SIZE so resizing never upsamples a
    # draft that is smaller than the model's input.
    width, height = size
    scale = min(1.0, max(MIN_DECODE_SIZE[0] / width, MIN_DECODE_SIZE[1] / height))
    return (max(1, round(width * scale)), max(1, round(height * scale)))


def to_rgb(image: Image.Image) -> Image.Image:
    """``image`` as RGB, transparency composited onto :data:`BACKGROUND`.

    Returns ``image`` itself when it is already RGB without transparency.
    """
    mode = image.mode
    if mode in _HIGH_BIT_DEPTH_MODES:
        return _scale_to_l(image).convert("RGB")
    if mode == "La":
        # Pillow has no direct La→RGBA conversion; LA is the unpremultiplied twin.
        return _composite(image.convert("LA").convert("RGBA"))
    if mode in _ALPHA_MODES or (
        mode in _KEYED_TRANSPARENCY_MODES and image.info.get("transparency") is not None
    ):
        return _composite(image.convert("RGBA"))
    if mode == "RGB":
        return image
    try:
        return image.convert("RGB")
    except ValueError:
        raise ImageDecodeError(f"Images with {mode} pixels are not supported.") from None


def _composite(image: Image.Image) -> Image.Image:
    background = Image.new("RGB", image.size, BACKGROUND)
    background.paste(image, mask=image.getchannel("A"))
    return background


def _scale_to_l(image: Image.Image) -> Image.Image:
    """High-bit-depth greyscale to 8-bit, stretching its actual range."""
    image = image.convert("F") if image.mode != "F" else image
    low, high = image.getextrema()
    if not isinstance(low, (int, float)) or not isinstance(high, (int, float)):
        raise ImageDecodeError("The image has an unsupported pixel format.")
    if not (math.isfinite(low) and math.isfinite(high)):
        # NaN or infinite samples: there is no range to stretch, so clip.
        return image.convert("L")
    span = (high - low) or 1.0
    return image.point(lambda v: (v - low) * 255.0 / span).convert("L")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
