"""Test images, generated in code: flat colours, gradients and odd formats."""

from __future__ import annotations

import io

from django.core.files.base import ContentFile
from PIL import Image


def image_bytes(
    color: tuple[int, ...] | str = (0, 128, 255),
    size: tuple[int, int] = (64, 48),
    fmt: str = "PNG",
    mode: str = "RGB",
    **save_options: object,
) -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, color).save(buffer, format=fmt, **save_options)  # type: ignore[arg-type]
    return buffer.getvalue()


def image_file(name: str = "picture.png", **kwargs: object) -> ContentFile:
    fmt = kwargs.pop("fmt", None) or ("JPEG" if name.endswith((".jpg", ".jpeg")) else "PNG")
    return ContentFile(image_bytes(fmt=fmt, **kwargs), name=name)  # type: ignore[arg-type]


def red(name: str = "red.png") -> ContentFile:
    """Scored unsafe (1.0) by tests.backends.ColourBackend."""
    return image_file(name, color=(255, 0, 0))


def blue(name: str = "blue.png") -> ContentFile:
    """Scored safe (0.0) by tests.backends.ColourBackend."""
    return image_file(name, color=(0, 0, 255))
