"""Safe decoding of untrusted image bytes. Independent of Django.

Every failure raises :class:`ImageDecodeError` with a message a moderator can
read; nothing else escapes :func:`load_frames`.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

#: Images are decoded to at least this size (JPEG draft mode), never smaller.
MIN_DECODE_SIZE = (224, 224)

#: Transparent pixels are composited onto this neutral grey.
BACKGROUND = (128, 128, 128)

# Formats we decode. Vector and document formats (SVG, PDF, EPS) are refused:
# Pillow either cannot read them or would hand them to external programs.
ALLOWED_FORMATS = frozenset(
    {"JPEG", "MPO", "PNG", "GIF", "WEBP", "BMP", "DIB", "TIFF", "ICO", "PPM", "TGA",
     "HEIF", "AVIF", "JPEG2000"}
)


class ImageDecodeError(ValueError):
    """The bytes are not an image we can safely decode."""


@dataclass(frozen=True)
class Limits:
    max_pixels: int = 64_000_000
    max_bytes: int = 50 * 1024 * 1024
    max_frames: int = 8


def load_frames(data: bytes, limits: Limits | None = None) -> list[Image.Image]:
    """Decode ``data`` into RGB frames ready for a classifier.

    A still image gives one frame; an animated one gives up to
    ``limits.max_frames`` frames spread evenly over the animation.
    """
    limits = limits or Limits()
    if not data:
        raise ImageDecodeError("The file is empty.")
    if len(data) > limits.max_bytes:
        raise ImageDecodeError(
            f"The file is {len(data):,} bytes, over the {limits.max_bytes:,}-byte limit."
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            # Not a ``with`` block: closing the image would discard the pixels
            # of a still frame that is returned as it is.
            image = Image.open(io.BytesIO(data))
            _check_header(image, limits)
            return [_to_rgb(frame) for frame in _sample_frames(image, limits.max_frames)]
    except ImageDecodeError:
        raise
    except UnidentifiedImageError:
        raise ImageDecodeError("The file is not an image in a format we can read.") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageDecodeError(f"The image is too large to decode safely: {exc}") from None
    except (OSError, SyntaxError, ValueError, EOFError, MemoryError, IndexError) as exc:
        raise ImageDecodeError(f"The image is damaged or truncated: {exc}") from None
    except Exception as exc:  # Pillow plugins raise a zoo of types on hostile input.
        raise ImageDecodeError(f"The image could not be decoded: {exc!r}") from None


def _check_header(image: Image.Image, limits: Limits) -> None:
    """Refuse before any pixel is decoded: only the header has been read so far."""
    if image.format not in ALLOWED_FORMATS:
        raise ImageDecodeError(f"Images in {image.format} format are not accepted.")
    width, height = image.size
    if width < 1 or height < 1:
        raise ImageDecodeError("The image has no pixels.")
    if width * height > limits.max_pixels:
        raise ImageDecodeError(
            f"The image is {width}×{height} = {width * height:,} pixels, "
            f"over the {limits.max_pixels:,}-pixel limit."
        )


def _sample_frames(image: Image.Image, max_frames: int) -> Iterator[Image.Image]:
    count = max(1, int(getattr(image, "n_frames", 1)))
    for index in frame_indices(count, max_frames):
        image.seek(index)
        if image.format == "JPEG":
            image.draft("RGB", _draft_size(image))
        frame = image.copy() if count > 1 else image
        frame.load()
        yield ImageOps.exif_transpose(frame) if index == 0 else frame


def frame_indices(count: int, max_frames: int) -> list[int]:
    """Up to ``max_frames`` indices spread evenly over ``count`` frames, first included."""
    if count <= max_frames:
        return list(range(count))
    step = count / max_frames
    return sorted({int(i * step) for i in range(max_frames)})


def _draft_size(image: Image.Image) -> tuple[int, int]:
    # Keep the shorter side at least MIN_DECODE_SIZE so resizing never upsamples
    # a draft that is smaller than the model's input.
    width, height = image.size
    scale = max(MIN_DECODE_SIZE[0] / width, MIN_DECODE_SIZE[1] / height)
    return (max(1, round(width * min(scale, 1))), max(1, round(height * min(scale, 1))))


def _to_rgb(image: Image.Image) -> Image.Image:
    mode = image.mode
    if mode == "RGB":
        return image
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        return _scale_to_l(image).convert("RGB")
    if mode == "P":
        image = image.convert("RGBA")
    elif mode in ("LA", "PA", "La", "RGBa"):
        image = image.convert("RGBA")
    if image.mode == "RGBA":
        background = Image.new("RGB", image.size, BACKGROUND)
        background.paste(image, mask=image.getchannel("A"))
        return background
    return image.convert("RGB")


def _scale_to_l(image: Image.Image) -> Image.Image:
    """High-bit-depth greyscale to 8-bit, stretching its actual range."""
    image = image.convert("F") if image.mode != "F" else image
    low, high = image.getextrema()
    if not isinstance(low, (int, float)) or not isinstance(high, (int, float)):
        raise ImageDecodeError("The image has an unsupported pixel format.")
    span = (high - low) or 1.0
    return image.point(lambda v: (v - low) * 255.0 / span).convert("L")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
