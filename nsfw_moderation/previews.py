"""What moderators see of an upload: a small JPEG made by the worker, never the uploaded bytes.

The worker, which has already decoded the file safely, re-encodes one frame
(the one that scored worst) at :data:`PREVIEW_SIZE` pixels, pixels only, and
stores it with the row (:class:`~nsfw_moderation.models.Preview`). The review
pages serve that stored JPEG, or a generated placeholder for a row without one
(not classified yet, or a file that could not be decoded): the web process
never opens, let alone decodes, an upload.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Sequence

from django.http import HttpResponse
from PIL import Image, ImageDraw

from nsfw_moderation.models import ModeratedImage, Preview, Statement

#: Longest side of a preview, in pixels.
PREVIEW_SIZE = 256
PREVIEW_QUALITY = 80


def stored_preview(row: ModeratedImage) -> tuple[bytes, str]:
    """The stored preview of ``row``'s current file, or a placeholder.

    Returns ``(jpeg, "image")`` or ``(jpeg, "placeholder")``; one query, no file.
    A preview counts only for the name and the bytes (SHA-256) the row holds now.
    """
    jpeg = (
        Preview.objects.filter(image=row, file_name=row.file_name, sha256=row.sha256)
        .values_list("jpeg", flat=True)
        .first()
    )
    if jpeg is None:
        return placeholder_jpeg(), "placeholder"
    return bytes(jpeg), "image"


def row_preview(row: ModeratedImage, shown_sha256: str | None) -> tuple[bytes, str]:
    """The preview of ``row`` for a review page rendered for ``shown_sha256`` (``None``: any).

    Returns ``(jpeg, kind)`` for :func:`preview_response`; the caller checks
    the review permission first. Shared by the Django admin and Wagtail.
    """
    if shown_sha256 is not None and shown_sha256 != row.sha256:
        # The page was rendered for other bytes: never show the new ones
        # under a card the decision buttons of which mean the old ones.
        return placeholder_jpeg(), "changed"
    # The stored preview the worker made: this process never opens the upload.
    return stored_preview(row)


def statement_preview(statement: Statement) -> tuple[bytes, str]:
    """The stored preview of the bytes ``statement`` is about, or a placeholder.

    Only while the row still holds those bytes (their preview is the one
    stored); once the file was replaced or the row is gone, a placeholder. A
    hash-bank match is never shown again, not even blurred: a placeholder too.
    """
    jpeg = (
        Preview.objects.filter(
            image_id=statement.image_id,
            file_name=statement.file_name,
            sha256=statement.sha256,
            image__bank_entry__isnull=True,
        )
        .values_list("jpeg", flat=True)
        .first()
    )
    if statement.image_id is None or jpeg is None:
        return placeholder_jpeg(), "placeholder"
    return bytes(jpeg), "image"


def preview_response(data: bytes, kind: str) -> HttpResponse:
    """A preview JPEG for one viewer's browser: never cached, never sniffed, never a document."""
    response = HttpResponse(data, content_type="image/jpeg")
    response["Cache-Control"] = "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Disposition"] = 'inline; filename="preview.jpg"'
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["X-Moderation-Preview"] = kind
    return response


def preview_of(frames: Sequence[Image.Image], frame: int | None) -> bytes:
    """The preview JPEG of decoded ``frames``: the one at index ``frame`` (the worst one)."""
    return encode_jpeg(frames[min(frame or 0, len(frames) - 1)])


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
