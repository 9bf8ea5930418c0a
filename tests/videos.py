"""Video clips generated in code with PyAV: solid-colour scenes, tiny and fast to encode."""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from fractions import Fraction

import numpy as np
from PIL import Image

# SVT-AV1 reports every encoder it opens, unless told to say errors only.
os.environ.setdefault("SVT_LOG", "1")

import av

SAFE = (40, 90, 200)
UNSAFE = (230, 20, 20)

#: (codec, container, extension) of each family browsers play, where the wheel encodes it.
FAMILIES = {
    "h264-mp4": ("libx264", "mp4", ".mp4"),
    "hevc-mp4": ("libx265", "mp4", ".mp4"),
    "av1-mp4": ("libsvtav1", "mp4", ".mp4"),
    "h264-mov": ("libx264", "mov", ".mov"),
    "vp8-webm": ("libvpx", "webm", ".webm"),
    "vp9-webm": ("libvpx-vp9", "webm", ".webm"),
    "av1-webm": ("libsvtav1", "webm", ".webm"),
    "mpeg4-avi": ("mpeg4", "avi", ".avi"),
}

#: Encoder options that keep encoding fast and quiet.
_OPTIONS = {
    "libx264": {"preset": "ultrafast"},
    "libx265": {"preset": "ultrafast", "x265-params": "log-level=error"},
    "libsvtav1": {"preset": "12"},
    "libvpx": {"deadline": "realtime", "cpu-used": "8"},
    "libvpx-vp9": {"deadline": "realtime", "cpu-used": "8"},
}


def encodable(codec: str) -> bool:
    try:
        av.codec.Codec(codec, "w")
    except Exception:
        return False
    return True


#: A scene's picture: a solid colour, or an image (resized to the clip's size).
Picture = tuple[int, int, int] | Image.Image


def clip(
    scenes: Sequence[tuple[float, Picture]],
    *,
    seconds: float,
    fps: int = 5,
    size: tuple[int, int] = (64, 48),
    codec: str = "libx264",
    fmt: str = "mp4",
    pix_fmt: str = "yuv420p",
    rotation: int | None = None,
    gop: int | None = None,
) -> bytes:
    """A clip of ``seconds`` whose picture changes at each scene ``(start second, picture)``.

    Each scene starts on a keyframe, as an encoder's scene-cut detection would put it.
    """
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=fmt) as out:
        stream = out.add_stream(codec, rate=fps)
        stream.width, stream.height = size
        stream.pix_fmt = pix_fmt
        stream.options = dict(_OPTIONS.get(codec, {}))
        if gop is not None:
            stream.codec_context.gop_size = gop
        if rotation is not None:
            stream.set_display_rotation(rotation)
        starts = {round(start * fps) for start, _ in scenes}
        for index in range(round(seconds * fps)):
            pixels = _pixels(_picture_at(scenes, index / fps), size)
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            frame.pts = index
            frame.time_base = Fraction(1, fps)
            if index in starts:
                frame.pict_type = av.video.frame.PictureType.I
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return buffer.getvalue()


def _picture_at(scenes: Sequence[tuple[float, Picture]], second: float) -> Picture:
    picture = scenes[0][1]
    for start, scene_picture in scenes:
        if second + 1e-9 >= start:
            picture = scene_picture
    return picture


def _pixels(picture: Picture, size: tuple[int, int]) -> np.ndarray:
    if isinstance(picture, Image.Image):
        return np.asarray(picture.convert("RGB").resize(size))
    pixels = np.empty((size[1], size[0], 3), dtype=np.uint8)
    pixels[:] = picture
    return pixels
