"""A hostile corpus, generated in code: files crafted to cost a decoder time or memory.

Each builder writes the container by hand where an encoder would refuse or take
too long (tens of thousands of frames), so building a file takes milliseconds.
"""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)  # type: ignore[arg-type]
    return buffer.getvalue()


_GIF_FRAME_DATA = b"\x02\x02\x44\x01\x00"  # LZW minimum code size 2, one pixel, end


def _gif(canvas: tuple[int, int], body: bytes) -> bytes:
    screen = struct.pack("<HHBBB", *canvas, 0x80, 0, 0)  # 2-colour global palette
    return b"GIF89a" + screen + b"\x00\x00\x00\xff\xff\xff" + body + b";"


def _gif_frame(at: tuple[int, int] = (0, 0)) -> bytes:
    return b"," + struct.pack("<HHHHB", *at, 1, 1, 0) + _GIF_FRAME_DATA


def gif_frames(count: int, canvas: tuple[int, int] = (1, 1)) -> bytes:
    """A GIF of ``count`` frames of one pixel each on a ``canvas``.

    50,000 frames take 0.75 MB: every frame is a 10-byte descriptor and 5 bytes of data.
    """
    return _gif(canvas, _gif_frame() * count)


def growing_gif(count: int, to: tuple[int, int]) -> bytes:
    """A GIF whose header says 1×1 and whose frames after the first sit at ``to`` − 1.

    Pillow enlarges the canvas to hold such a frame, so every frame from the
    second on is decoded on a ``to``-sized canvas.
    """
    corner = (to[0] - 1, to[1] - 1)
    return _gif((1, 1), _gif_frame() + _gif_frame(corner) * (count - 1))


def gif_comment_blocks(count: int) -> bytes:
    """A two-frame GIF with a comment of ``count`` one-byte blocks between its frames."""
    comment = b"!\xfe" + b"\x01x" * count + b"\x00"
    return _gif((1, 1), _gif_frame() + comment + _gif_frame())


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _png_rows(row: bytes, height: int) -> bytes:
    compressor = zlib.compressobj(9)
    return b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()


def apng_frames(count: int, size: tuple[int, int] = (1, 1)) -> bytes:
    """An APNG of ``count`` greyscale frames on a ``size`` canvas."""
    width, height = size
    pixels = _png_rows(b"\x00" + b"\x80" * width, height)
    chunks = [
        png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)),
        png_chunk(b"acTL", struct.pack(">II", count, 0)),
    ]
    sequence = 0
    for index in range(count):
        control = struct.pack(">IIIIIHHBB", sequence, width, height, 0, 0, 1, 25, 0, 0)
        chunks.append(png_chunk(b"fcTL", control))
        sequence += 1
        if index == 0:
            chunks.append(png_chunk(b"IDAT", pixels))
        else:
            chunks.append(png_chunk(b"fdAT", struct.pack(">I", sequence) + pixels))
            sequence += 1
    return b"\x89PNG\r\n\x1a\n" + b"".join(chunks) + png_chunk(b"IEND", b"")


def _riff_chunk(kind: bytes, body: bytes) -> bytes:
    return kind + struct.pack("<I", len(body)) + body + (b"\x00" if len(body) % 2 else b"")


def _webp_bitstream(size: tuple[int, int]) -> bytes:
    """The VP8L chunk of a lossless grey WebP of ``size``, made by Pillow."""
    buffer = io.BytesIO()
    Image.new("RGB", size, (128, 128, 128)).save(buffer, "WEBP", lossless=True)
    data = buffer.getvalue()
    start = data.index(b"VP8L")
    (length,) = struct.unpack("<I", data[start + 4 : start + 8])
    return data[start : start + 8 + length + length % 2]


def webp_frames(count: int, size: tuple[int, int] = (1, 1)) -> bytes:
    """An animated WebP of ``count`` lossless frames on a ``size`` canvas."""
    width, height = size
    canvas = struct.pack("<I", 0x02)[:1] + b"\x00\x00\x00"  # flags: animation
    extent = (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    header = _riff_chunk(b"VP8X", canvas + extent) + _riff_chunk(b"ANIM", b"\x00" * 4 + b"\x00\x00")
    bitstream = _webp_bitstream(size)
    frame = _riff_chunk(
        b"ANMF", b"\x00" * 6 + extent + (25).to_bytes(3, "little") + b"\x00" + bitstream
    )
    body = b"WEBP" + header + frame * count
    return b"RIFF" + struct.pack("<I", len(body)) + body


def palette_png(size: tuple[int, int] = (8000, 8000)) -> bytes:
    """A palette PNG of one colour: 64 MP by default, in about 60 KB."""
    width, height = size
    header = struct.pack(">IIBBBBB", width, height, 8, 3, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"PLTE", bytes((200, 30, 30)))
        + png_chunk(b"IDAT", _png_rows(b"\x00" * (1 + width), height))
        + png_chunk(b"IEND", b"")
    )


def png_empty_chunks(count: int) -> bytes:
    """A 1×1 PNG with ``count`` empty private chunks before its pixels: 12 bytes each."""
    header = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"prIv", b"") * count
        + png_chunk(b"IDAT", zlib.compress(b"\x00\x80"))
        + png_chunk(b"IEND", b"")
    )


def jpeg_comment_markers(count: int) -> bytes:
    """A small JPEG with ``count`` empty comment segments after its start: 4 bytes each."""
    data = encode(Image.new("RGB", (16, 16), (90, 90, 90)), "JPEG")
    return data[:2] + b"\xff\xfe\x00\x02" * count + data[2:]


def rgba_png(size: tuple[int, int], frames: int = 1) -> bytes:
    """A half-transparent RGBA PNG of one colour, or an APNG of ``frames`` such frames."""
    width, height = size
    pixels = _png_rows(b"\x00" + b"\x80\x20\x20\x80" * width, height)
    chunks = [png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0))]
    if frames > 1:
        chunks.append(png_chunk(b"acTL", struct.pack(">II", frames, 0)))
    sequence = 0
    for index in range(frames):
        if frames > 1:
            control = struct.pack(">IIIIIHHBB", sequence, width, height, 0, 0, 1, 25, 0, 0)
            chunks.append(png_chunk(b"fcTL", control))
            sequence += 1
        if index == 0:
            chunks.append(png_chunk(b"IDAT", pixels))
        else:
            chunks.append(png_chunk(b"fdAT", struct.pack(">I", sequence) + pixels))
            sequence += 1
    return b"\x89PNG\r\n\x1a\n" + b"".join(chunks) + png_chunk(b"IEND", b"")


def padded_jpeg(total: int) -> bytes:
    """A small valid JPEG followed by zero bytes up to ``total`` bytes."""
    data = encode(Image.new("RGB", (64, 48), (20, 120, 200)), "JPEG")
    return data + b"\x00" * (total - len(data))
