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


def picture(seed: int = 0, size: int = 512) -> Image.Image:
    """A photo-like picture (soft overlapping discs), different for every seed.

    Little red in it: tests.backends.ColourBackend allows it.
    """
    from random import Random

    from PIL import ImageDraw, ImageFilter

    rnd = Random(seed)

    def colour() -> tuple[int, int, int]:
        return (rnd.randrange(80), rnd.randrange(256), rnd.randrange(256))

    image = Image.new("RGB", (size, size), colour())
    draw = ImageDraw.Draw(image)
    for _ in range(40):
        x, y, r = rnd.randrange(size), rnd.randrange(size), rnd.randrange(size // 10, size // 3)
        draw.ellipse([x - r, y - r, x + r, y + r], fill=colour())
    return image.filter(ImageFilter.GaussianBlur(6))


def encoded(image: Image.Image, name: str = "picture.jpg", quality: int = 90) -> ContentFile:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return ContentFile(buffer.getvalue(), name=name)
