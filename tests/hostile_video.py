"""A hostile video corpus, generated in code: clips crafted to cost a decoder time or memory.

Each builder encodes a tiny real clip with PyAV and, where an encoder would
refuse or take too long, patches its container's header by hand, so building
any of them takes milliseconds.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Callable
from fractions import Fraction

import av
import numpy as np

from tests import videos


def enormous_dimensions() -> bytes:
    """An IVF (VP8) clip whose header declares 65535×65535 frames."""
    data = videos.clip([(0.0, videos.SAFE)], seconds=1, codec="libvpx", fmt="ivf")
    buffer = bytearray(data)
    struct.pack_into("<HH", buffer, 12, 65535, 65535)
    return bytes(buffer)


def hours_of_tiny_frames(hours: float = 2, every: float = 10) -> bytes:
    """``hours`` of 16×16 frames, one every ``every`` seconds, each a keyframe."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=Fraction(1, int(every)))
        stream.width, stream.height, stream.pix_fmt = 16, 16, "yuv420p"
        stream.options = {"preset": "ultrafast"}
        stream.codec_context.gop_size = 1
        pixels = np.zeros((16, 16, 3), dtype=np.uint8)
        for index in range(int(hours * 3600 / every)):
            pixels[:] = index % 251
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            frame.pts = index
            frame.time_base = Fraction(int(every), 1)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return buffer.getvalue()


def many_streams(count: int = 1000) -> bytes:
    """A Matroska file with one short video stream and ``count`` - 1 empty subtitle streams.

    A thousand is as many as FFmpeg lets a file hold (its ``max_streams``):
    PyAV's muxer crashes past it.
    """
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="matroska") as out:
        stream = out.add_stream("mpeg4", rate=5)
        stream.width, stream.height, stream.pix_fmt = 16, 16, "yuv420p"
        for _ in range(count - 1):
            out.add_stream("ass")
        frame = av.VideoFrame.from_ndarray(np.zeros((16, 16, 3), dtype=np.uint8), format="rgb24")
        frame.pts = 0
        for packet in [*stream.encode(frame), *stream.encode()]:
            out.mux(packet)
    return buffer.getvalue()


def truncated(fraction: float = 0.5) -> bytes:
    data = videos.clip([(0.0, videos.SAFE)], seconds=4, fmt="matroska")
    return data[: int(len(data) * fraction)]


def broken_mp4() -> bytes:
    """An MP4 whose boxes after the file type are noise."""
    data = videos.clip([(0.0, videos.SAFE)], seconds=2)
    noise = np.random.default_rng(7).integers(0, 256, len(data) - 32, dtype=np.uint8)
    return data[:32] + noise.tobytes()


def moov_only() -> bytes:
    """An MP4 whose sample data is cut off: the index points past the end of the file."""
    data = videos.clip([(0.0, videos.SAFE)], seconds=2)
    mdat = data.find(b"mdat")
    return data[: mdat + 8]


def negative_timestamps() -> bytes:
    """A clip whose frames start two seconds before zero (Matroska keeps them as they are)."""
    return _timed_clip([index / 5 - 2 for index in range(30)], fmt="matroska")


def zero_length_frames() -> bytes:
    """A clip whose frames all share one timestamp: it lasts no time at all."""
    return _timed_clip([0.0] * 10, fmt="matroska", distinct=False)


def variable_frame_rate() -> bytes:
    """Frames at uneven times, the way phones record: gaps from 10 ms to 3 s."""
    gaps = [0.01, 0.5, 3.0, 0.04, 1.2, 0.01, 2.5, 0.3]
    times = [sum(gaps[: i + 1]) for i in range(len(gaps))]
    return _timed_clip([0.0, *times], fmt="mp4")


def _timed_clip(times: list[float], *, fmt: str, distinct: bool = True) -> bytes:
    buffer = io.BytesIO()
    base = Fraction(1, 1000)
    with av.open(buffer, "w", format=fmt) as out:
        stream = out.add_stream("mpeg4", rate=5)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        stream.codec_context.time_base = base
        stream.time_base = base
        pixels = np.zeros((32, 32, 3), dtype=np.uint8)
        for index, when in enumerate(times):
            pixels[:] = (index * 20) % 256
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            frame.pts = round(when * 1000) if distinct else index
            frame.time_base = base
            for packet in stream.encode(frame):
                if not distinct:
                    packet.pts = packet.dts = 0
                out.mux(packet)
        for packet in stream.encode():
            if not distinct:
                packet.pts = packet.dts = 0
            out.mux(packet)
    return buffer.getvalue()


def ten_bit_hdr() -> bytes:
    """A 10-bit HEVC clip tagged as HDR (BT.2020, PQ), as phones record."""
    codec = "libx265" if videos.encodable("libx265") else "libx264"
    return videos.clip([(0.0, videos.UNSAFE)], seconds=1, codec=codec, pix_fmt="yuv420p10le")


def still_image_in_a_container() -> bytes:
    """One PNG picture in a QuickTime file: a still image dressed as a video."""
    return videos.clip([(0.0, videos.UNSAFE)], seconds=0.2, codec="png", fmt="mov", pix_fmt="rgb24")


def at_the_pixel_limit() -> bytes:
    """Two 4K UHD frames: the largest a clip may have at the default ``VIDEO_MAX_PIXELS``."""
    return videos.clip([(0.0, videos.SAFE)], seconds=0.4, size=(3840, 2160))


#: The corpus: name → builder. Each clip is bounded or refused, fast.
CORPUS: dict[str, Callable[[], bytes]] = {
    "five-hours": lambda: hours_of_tiny_frames(hours=5, every=60),
    "enormous-dimensions": enormous_dimensions,
    "hours-of-tiny-frames": hours_of_tiny_frames,
    "many-streams": many_streams,
    "truncated": truncated,
    "broken-mp4": broken_mp4,
    "moov-only": moov_only,
    "negative-timestamps": negative_timestamps,
    "zero-length-frames": zero_length_frames,
    "variable-frame-rate": variable_frame_rate,
    "ten-bit-hdr": ten_bit_hdr,
    "still-image": still_image_in_a_container,
    "at-the-pixel-limit": at_the_pixel_limit,
}
