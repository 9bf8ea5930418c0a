"""Synthetic photographs: smooth colour gradients plus noise, saved as JPEG.

Noise gives the files a photograph's entropy, so their sizes and decoding
costs are realistic (a 4000×3000 file is a few MB). The content is abstract.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

SIZES = {"224×224": (224, 224), "1024×768": (1024, 768), "4000×3000": (4000, 3000)}


def jpeg(size: tuple[int, int], seed: int, quality: int = 90) -> bytes:
    rng = np.random.default_rng(seed)
    width, height = size
    x = np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :]
    y = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None]
    phase = rng.uniform(0, 2 * np.pi, 3).astype(np.float32)
    channels = [
        127 + 100 * np.sin(2 * np.pi * (x * (1 + i) + y * (2 - i)) + phase[i]) for i in range(3)
    ]
    pixels = np.stack(np.broadcast_arrays(*channels), axis=-1)
    pixels += rng.normal(0, 12, pixels.shape).astype(np.float32)
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def image_set(count: int, first_seed: int = 0) -> dict[str, list[bytes]]:
    """``count`` different JPEG files of each size in :data:`SIZES`."""
    return {
        name: [jpeg(size, first_seed + i + 1000 * n) for i in range(count)]
        for n, (name, size) in enumerate(SIZES.items())
    }
