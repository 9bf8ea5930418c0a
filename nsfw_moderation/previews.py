"""Safe preview images for moderators: small re-encoded JPEGs, never the uploaded bytes.

The stored file is decoded by the same safe loader the worker uses and
re-encoded without any of the upload's metadata. A file that does not decode
gets a generated placeholder instead.
"""

from __future__ import annotations

import functools
import io
import logging

from PIL import Image, ImageDraw

from nsfw_moderation import imaging, storage
from nsfw_moderation.models import ModeratedImage

logger = logging.getLogger(__name__)

#: Longest side of a preview, in pixels.
PREVIEW_SIZE = 480
PREVIEW_QUALITY = 80


def preview_bytes(row: ModeratedImage) -> tuple[bytes, str]:
    """A re-encoded JPEG thumbnail of ``row``'s file, or a placeholder.

    Returns ``(jpeg, "image")`` or ``(jpeg, "placeholder")``.
    """
    try:
        # The worker's limits: a file it could decode can be previewed, and a
        # decompression bomb is refused here too.
        frames = imaging.load_frames(storage.read_file(row), storage.decode_limits())
    except (imaging.ImageDecodeError, storage.InputMissing):
        return placeholder_jpeg(), "placeholder"
    except Exception:  # a storage failure must not break the whole grid
        logger.warning("Could not read %s for a preview", row.file_name, exc_info=True)
        return placeholder_jpeg(), "placeholder"
    # Show the frame of an animation that scored highest: the one to judge.
    frame = frames[min(row.frame or 0, len(frames) - 1)]
    return encode_jpeg(frame), "image"


def encode_jpeg(image: Image.Image) -> bytes:
    thumbnail = image.convert("RGB")
    thumbnail.thumbnail((PREVIEW_SIZE, PREVIEW_SIZE))
    # Pixels only: Pillow would copy the upload's comment (and other info)
    # into the JPEG, and the upload's bytes must not reach the browser.
    clean = Image.new("RGB", thumbnail.size)
    clean.paste(thumbnail)
    buffer = io.BytesIO()
    clean.save(buffer, format="JPEG", quality=PREVIEW_QUALITY)
    return buffer.getvalue()


@functools.cache
def placeholder_jpeg() -> bytes:
    """A grey card with a cross: "there is no picture to show"."""
    width, height = 240, 180
    image = Image.new("RGB", (width, height), (150, 150, 150))
    draw = ImageDraw.Draw(image)
    draw.line([(0, 0), (width, height)], fill=(110, 110, 110), width=3)
    draw.line([(0, height), (width, 0)], fill=(110, 110, 110), width=3)
    return encode_jpeg(image)
