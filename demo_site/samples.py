"""Harmless sample pictures, drawn with Pillow: gradients, shapes and text."""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Iterator

from django.core.files.base import ContentFile
from PIL import Image, ImageDraw, ImageFont

SIZE = (640, 480)
Colour = tuple[int, int, int]


def _gradient(top: Colour, bottom: Colour, size: tuple[int, int] = SIZE) -> Image.Image:
    width, height = size
    image = Image.new("RGB", size)
    draw = ImageDraw.Draw(image)
    for y in range(height):
        t = y / max(1, height - 1)
        colour = tuple(round(a + (b - a) * t) for a, b in zip(top, bottom, strict=True))
        draw.line([(0, y), (width, y)], fill=colour)
    return image


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


def sunset() -> Image.Image:
    image = _gradient((40, 40, 110), (250, 150, 60))
    draw = ImageDraw.Draw(image)
    draw.ellipse([250, 260, 390, 400], fill=(255, 210, 90))
    draw.rectangle([0, 360, SIZE[0], SIZE[1]], fill=(20, 40, 70))
    return image


def circles() -> Image.Image:
    image = _gradient((230, 240, 250), (180, 200, 230))
    draw = ImageDraw.Draw(image)
    palette = [(47, 95, 208), (30, 123, 70), (160, 90, 0), (120, 60, 160)]
    for i in range(12):
        x, y = 60 + (i % 4) * 170, 80 + (i // 4) * 150
        draw.ellipse([x - 50, y - 50, x + 50, y + 50], fill=palette[i % len(palette)])
    return image


def stripes() -> Image.Image:
    image = Image.new("RGB", SIZE, (250, 250, 250))
    draw = ImageDraw.Draw(image)
    for i in range(0, SIZE[0] + SIZE[1], 40):
        draw.line([(i, 0), (i - SIZE[1], SIZE[1])], fill=(47, 95, 208), width=14)
    return image


def waves() -> Image.Image:
    image = _gradient((10, 60, 90), (20, 140, 160))
    draw = ImageDraw.Draw(image)
    for row in range(6):
        points = [
            (x, 120 + row * 60 + 18 * math.sin(x / 40 + row)) for x in range(0, SIZE[0] + 1, 8)
        ]
        draw.line(points, fill=(220, 240, 250), width=4)
    return image


def hello() -> Image.Image:
    image = _gradient((30, 123, 70), (140, 200, 120))
    draw = ImageDraw.Draw(image)
    draw.text((320, 220), "Hello, moderators!", font=_font(48), fill="white", anchor="mm")
    draw.text((320, 290), "a generated sample image", font=_font(24), fill="white", anchor="mm")
    return image


def grid() -> Image.Image:
    image = Image.new("RGB", SIZE, (32, 36, 48))
    draw = ImageDraw.Draw(image)
    for x in range(0, SIZE[0], 80):
        for y in range(0, SIZE[1], 80):
            hue = (x + y) % 255
            draw.rounded_rectangle([x + 8, y + 8, x + 72, y + 72], 12, fill=(hue, 180, 255 - hue))
    return image


SAMPLES: dict[str, Callable[[], Image.Image]] = {
    "Sunset over the bay": sunset,
    "Circles": circles,
    "Stripes": stripes,
    "Waves": waves,
    "Hello": hello,
    "Tiles": grid,
}


def as_file(image: Image.Image, name: str) -> ContentFile[bytes]:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return ContentFile(buffer.getvalue(), name=name)


def sample_files() -> Iterator[tuple[str, ContentFile[bytes]]]:
    """``(title, file)`` for every sample picture."""
    for title, draw in SAMPLES.items():
        slug = title.lower().replace(" ", "-").replace(",", "")
        yield title, as_file(draw(), f"{slug}.png")


def avatar(letter: str) -> ContentFile[bytes]:
    """A round avatar with one letter on it."""
    image = Image.new("RGB", (256, 256), (245, 247, 250))
    draw = ImageDraw.Draw(image)
    draw.ellipse([8, 8, 248, 248], fill=(47, 95, 208))
    draw.text((128, 128), letter.upper(), font=_font(120), fill="white", anchor="mm")
    return as_file(image, f"avatar-{letter.lower()}.png")
