"""Decoding untrusted bytes: odd-but-valid images decode, everything else is refused.

Every image is generated here, in code.
"""

from __future__ import annotations

import io
import json
import struct
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageFile, ImageSequence, JpegImagePlugin, features

from nsfw_moderation import imaging
from nsfw_moderation.imaging import ImageDecodeError, Limits, load_frames

RED = (255, 0, 0)
GREEN = (0, 255, 0)
BLUE = (0, 0, 255)
# Ten colours far apart, so lossy codecs cannot blur one into another.
PALETTE_10 = [
    (255, 0, 0),
    (0, 255, 0),
    (0, 0, 255),
    (255, 255, 0),
    (0, 255, 255),
    (255, 0, 255),
    (255, 255, 255),
    (0, 0, 0),
    (128, 0, 0),
    (0, 128, 0),
]


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def solid(
    color: tuple[int, ...] | int, size: tuple[int, int] = (32, 24), mode: str = "RGB"
) -> bytes:
    return encode(Image.new(mode, size, color), "PNG")


def only_frame(data: bytes, limits: Limits | None = None) -> Image.Image:
    frames = load_frames(data, limits)
    assert len(frames) == 1
    assert frames[0].mode == "RGB"
    return frames[0]


def near(actual: tuple[int, ...], expected: tuple[int, ...], tolerance: int = 2) -> bool:
    return all(abs(a - e) <= tolerance for a, e in zip(actual, expected, strict=True))


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_bomb(width: int, height: int) -> bytes:
    """A 1-bit black PNG of the given size: a few KB, streamed so no row buffer grows."""
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    row = b"\x00" * (1 + (width + 7) // 8)
    compressor = zlib.compressobj(9)
    body = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", body)
        + png_chunk(b"IEND", b"")
    )


def gif_declaring(width: int, height: int) -> bytes:
    """A GIF whose header claims a huge canvas but carries one pixel of data."""
    screen = struct.pack("<HHBBB", width, height, 0x80, 0, 0)  # 2-colour global palette
    descriptor = b"," + struct.pack("<HHHHB", 0, 0, width, height, 0)
    pixels = b"\x02\x02\x44\x01\x00"  # LZW min code 2, one sub-block, end
    return b"GIF89a" + screen + b"\x00\x00\x00\xff\xff\xff" + descriptor + pixels + b";"


# -- Not images ------------------------------------------------------------------


def test_empty_file_is_refused() -> None:
    with pytest.raises(ImageDecodeError, match="The file is empty"):
        load_frames(b"")


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"Just some words in a file called photo.jpg\n", id="text"),
        pytest.param(b"<!DOCTYPE html><html><body><p>hi</p></body></html>", id="html"),
        pytest.param(
            b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" '
            b'height="10"><rect width="10" height="10" fill="red"/></svg>',
            id="svg",
        ),
        pytest.param(b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF", id="pdf"),
        pytest.param(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n", id="eps"),
    ],
)
def test_documents_under_an_image_name_are_refused(content: bytes) -> None:
    with pytest.raises(ImageDecodeError, match="not an image in a format we can read"):
        load_frames(content)


def test_icon_is_refused_because_it_can_hide_a_bigger_png() -> None:
    icon = encode(Image.new("RGB", (32, 32), RED), "ICO")
    with pytest.raises(ImageDecodeError, match="not an image in a format we can read"):
        load_frames(icon)


def test_file_over_the_byte_limit_is_refused_before_decoding() -> None:
    data = encode(Image.effect_noise((64, 64), 64), "PNG")
    assert len(data) > 1_000
    with pytest.raises(ImageDecodeError, match=r"over the 1,000-byte limit"):
        load_frames(data, Limits(max_bytes=1_000))


def test_gif_javascript_polyglot_decodes_as_the_gif_it_also_is() -> None:
    # The logical screen width is the bytes "/*", opening a JS comment that the
    # appended "*/" closes: the file is also `GIF89a = alert(1);`.
    width = int.from_bytes(b"/*", "little")
    gif = encode(Image.new("P", (width, 1), 0), "GIF")
    assert gif[6:8] == b"/*"
    assert b"*/" not in gif
    polyglot = gif + b"*/=alert(1);"
    frame = only_frame(polyglot, Limits(frame_side=width))
    assert frame.size == (width, 1)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_truncated_image_is_refused(fmt: str) -> None:
    data = encode(Image.linear_gradient("L").convert("RGB"), fmt)
    with pytest.raises(ImageDecodeError, match="damaged or truncated"):
        load_frames(data[: len(data) // 2])


def test_png_with_a_broken_header_checksum_is_not_recognised() -> None:
    data = bytearray(solid(RED))
    data[29] ^= 0xFF  # inside the IHDR CRC
    with pytest.raises(ImageDecodeError, match="not an image in a format we can read"):
        load_frames(bytes(data))


def test_png_with_garbled_pixel_data_is_refused() -> None:
    data = bytearray(solid(RED))
    start = data.index(b"IDAT") + 4
    data[start : start + 8] = b"\xff" * 8  # not a zlib stream any more
    with pytest.raises(ImageDecodeError, match="damaged or truncated"):
        load_frames(bytes(data))


# -- Too big to decode -------------------------------------------------------------


@pytest.fixture
def loads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records every pixel load, to show refusals happen on the header alone."""
    calls: list[str] = []
    original = ImageFile.ImageFile.load

    def spy(image: ImageFile.ImageFile) -> object:
        calls.append(f"{image.format} {image.size}")
        return original(image)

    monkeypatch.setattr(ImageFile.ImageFile, "load", spy)
    return calls


def test_decompression_bomb_is_refused_by_pillow_before_loading(loads: list[str]) -> None:
    bomb = png_bomb(20_000, 20_000)
    assert len(bomb) < 100_000
    with pytest.raises(ImageDecodeError, match="too large to decode safely"):
        load_frames(bomb, Limits(max_pixels=10**9))
    assert loads == []


def test_bomb_under_pillows_threshold_is_refused_by_our_pixel_limit(loads: list[str]) -> None:
    bomb = png_bomb(9_000, 9_000)  # 81 Mpx: below Pillow's own warning, above ours
    with pytest.raises(
        ImageDecodeError, match=r"9000×9000 = 81,000,000 pixels, over the 64,000,000"
    ):
        load_frames(bomb)
    assert loads == []


def test_pillows_decompression_bomb_warning_is_a_refusal_too(loads: list[str]) -> None:
    bomb = png_bomb(10_000, 10_000)  # 100 Mpx: Pillow warns, it does not raise
    with pytest.raises(ImageDecodeError, match="too large to decode safely"):
        load_frames(bomb, Limits(max_pixels=10**9))
    assert loads == []


def test_pixel_limit_is_configurable(loads: list[str]) -> None:
    with pytest.raises(ImageDecodeError, match=r"over the 1,000-pixel limit"):
        load_frames(solid(RED, (50, 50)), Limits(max_pixels=1_000))
    assert loads == []


def test_huge_declared_gif_canvas_is_refused(loads: list[str]) -> None:
    with pytest.raises(ImageDecodeError, match="too large to decode safely"):
        load_frames(gif_declaring(60_000, 60_000))
    assert loads == []


def test_later_tiff_page_over_the_pixel_limit_is_refused() -> None:
    small = Image.new("L", (10, 10), 0)
    big = Image.new("L", (2_000, 2_000), 0)
    tiff = encode(small, "TIFF", save_all=True, append_images=[big], compression="tiff_deflate")
    with pytest.raises(ImageDecodeError, match=r"2000×2000 = 4,000,000 pixels"):
        load_frames(tiff, Limits(max_pixels=1_000_000))


_MEASURE = """
import json, sys
from nsfw_moderation.imaging import ImageDecodeError, Limits, load_frames

def high_water_kb():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))

data = open(sys.argv[1], "rb").read()
limits = Limits(**json.loads(sys.argv[2]))
load_frames(open(sys.argv[3], "rb").read())  # warm up: plugins, codecs, allocator
before = high_water_kb()
try:
    outcome = [frame.size for frame in load_frames(data, limits)]
except ImageDecodeError as exc:
    outcome = str(exc)
print(json.dumps({"growth_kb": high_water_kb() - before, "outcome": outcome}))
"""


needs_proc = pytest.mark.skipif(
    not Path("/proc/self/status").exists(), reason="reads peak memory from Linux /proc"
)


def peak_growth_mb(tmp_path: Path, data: bytes, **limits: int) -> tuple[float, object]:
    """Decode in a fresh process; how far its peak RSS grew (MB), and the outcome.

    Pillow allocates pixel buffers in C, outside tracemalloc's sight, so the
    process's peak resident size is the honest measure. It is read from
    /proc (VmHWM) rather than getrusage: ru_maxrss survives exec, so a child of
    this big test process would start from the parent's peak.
    """
    target, warm = tmp_path / "input", tmp_path / "warm"
    target.write_bytes(data)
    warm.write_bytes(solid(RED))
    result = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(target), json.dumps(limits), str(warm)],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parent.parent,
        timeout=120,
    )
    report = json.loads(result.stdout)
    return report["growth_kb"] / 1024, report["outcome"]


@needs_proc
def test_refusing_bombs_allocates_no_pixel_buffers(tmp_path: Path) -> None:
    pillow_bomb, pillow_outcome = peak_growth_mb(tmp_path, png_bomb(20_000, 20_000))
    our_bomb, our_outcome = peak_growth_mb(tmp_path, png_bomb(9_000, 9_000))
    declared, declared_outcome = peak_growth_mb(tmp_path, gif_declaring(60_000, 60_000))
    assert "too large" in str(pillow_outcome)
    assert "pixel limit" in str(our_outcome)
    assert "too large" in str(declared_outcome)
    # Their pixel buffers would be 400 MB, 81 MB and 3.6 GB.
    assert pillow_bomb < 10
    assert our_bomb < 10
    assert declared < 10


@needs_proc
def test_peak_memory_measure_does_see_a_decoded_buffer(tmp_path: Path) -> None:
    # The control for the test above: a 6000×6000 image that is decoded (36 Mpx,
    # a 36 MB canvas: Pillow keeps 1-bit pixels a byte each) must show up in the
    # same measurement. (Converted a band of rows at a time, no RGB copy exists.)
    growth, outcome = peak_growth_mb(tmp_path, png_bomb(6_000, 6_000))
    assert outcome == [[448, 448]]  # shrunk after decoding
    assert growth > 30


# -- Odd but valid -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "kept"), [((10_000, 1), (448, 1)), ((1, 10_000), (1, 448)), ((1, 1), (1, 1))]
)
def test_extreme_aspect_ratios_and_single_pixels_decode(
    size: tuple[int, int], kept: tuple[int, int]
) -> None:
    frame = only_frame(solid(GREEN, size))
    assert frame.size == kept
    assert frame.getpixel((0, 0)) == GREEN


def test_single_pixel_jpeg_decodes() -> None:
    frame = only_frame(encode(Image.new("RGB", (1, 1), BLUE), "JPEG", quality=95))
    assert frame.size == (1, 1)
    assert near(frame.getpixel((0, 0)), BLUE, tolerance=8)  # type: ignore[arg-type]


def test_cmyk_jpeg_becomes_rgb() -> None:
    cmyk = Image.new("CMYK", (32, 32), (0, 255, 255, 0))  # no cyan, full magenta+yellow: red
    frame = only_frame(encode(cmyk, "JPEG", quality=95))
    assert near(frame.getpixel((16, 16)), RED, tolerance=8)  # type: ignore[arg-type]


def gradient(mode: str, low: float, high: float) -> Image.Image:
    image = Image.new(mode, (16, 4))
    for x in range(16):
        value = low + (high - low) * x / 15
        for y in range(4):
            image.putpixel((x, y), value if mode == "F" else int(value))
    return image


@pytest.mark.parametrize(
    ("mode", "fmt", "low", "high"),
    [
        ("I;16", "PNG", 1_000, 3_000),
        ("I;16", "TIFF", 0, 65_535),
        ("I", "TIFF", -100_000, 2_000_000),
        ("F", "TIFF", -1.5, 0.5),
    ],
)
def test_high_bit_depth_greyscale_is_stretched_to_8_bits(
    mode: str, fmt: str, low: float, high: float
) -> None:
    data = encode(gradient(mode, low, high), fmt)
    assert Image.open(io.BytesIO(data)).mode == mode
    frame = only_frame(data)
    assert frame.getpixel((0, 0)) == (0, 0, 0)
    assert frame.getpixel((15, 0)) == (255, 255, 255)
    middle = frame.getpixel((8, 0))
    assert isinstance(middle, tuple)
    assert 120 <= middle[0] <= 150
    assert middle[0] == middle[1] == middle[2]


def test_palette_without_transparency_keeps_its_colours() -> None:
    image = Image.new("P", (4, 1))
    image.putpalette([*RED, *GREEN, *BLUE])
    image.putdata([0, 1, 2, 0])
    frame = only_frame(encode(image, "PNG"))
    assert [frame.getpixel((x, 0)) for x in range(4)] == [RED, GREEN, BLUE, RED]


@pytest.mark.parametrize("fmt", ["PNG", "GIF"])
def test_palette_transparency_is_composited_on_grey(fmt: str) -> None:
    image = Image.new("P", (2, 1))
    image.putpalette([*RED, *GREEN])
    image.putdata([0, 1])
    data = encode(image, fmt, transparency=0)
    assert "transparency" in Image.open(io.BytesIO(data)).info
    frame = only_frame(data)
    assert frame.getpixel((0, 0)) == imaging.BACKGROUND
    assert frame.getpixel((1, 0)) == GREEN


def test_png_palette_with_partial_alpha_is_blended() -> None:
    image = Image.new("P", (2, 1))
    image.putpalette([*RED, *BLUE])
    image.putdata([0, 1])
    frame = only_frame(encode(image, "PNG", transparency=bytes([128, 255])))
    assert near(frame.getpixel((0, 0)), (191, 64, 64))  # type: ignore[arg-type]
    assert frame.getpixel((1, 0)) == BLUE


def test_rgba_transparency_is_composited_on_grey() -> None:
    image = Image.new("RGBA", (3, 1))
    image.putdata([(255, 0, 0, 0), (255, 0, 0, 128), (0, 0, 255, 255)])
    frame = only_frame(encode(image, "PNG"))
    assert frame.getpixel((0, 0)) == imaging.BACKGROUND
    assert near(frame.getpixel((1, 0)), (191, 64, 64))  # type: ignore[arg-type]
    assert frame.getpixel((2, 0)) == BLUE


def test_la_transparency_is_composited_on_grey() -> None:
    image = Image.new("LA", (3, 1))
    image.putdata([(250, 0), (0, 255), (255, 128)])
    frame = only_frame(encode(image, "PNG"))
    assert frame.getpixel((0, 0)) == imaging.BACKGROUND
    assert frame.getpixel((1, 0)) == (0, 0, 0)
    assert near(frame.getpixel((2, 0)), (191, 191, 191))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("mode", "key", "opaque", "expected"),
    [("RGB", RED, BLUE, BLUE), ("L", 200, 10, (10, 10, 10))],
)
def test_colour_key_transparency_is_composited_on_grey(
    mode: str, key: int | tuple[int, int, int], opaque: object, expected: tuple[int, int, int]
) -> None:
    image = Image.new(mode, (2, 1), opaque)  # type: ignore[arg-type]
    image.putpixel((0, 0), key)
    frame = only_frame(encode(image, "PNG", transparency=key))
    assert frame.getpixel((0, 0)) == imaging.BACKGROUND
    assert frame.getpixel((1, 0)) == expected


@pytest.mark.parametrize(
    ("mode", "pixel", "expected"),
    [
        ("1", 1, (255, 255, 255)),
        ("L", 7, (7, 7, 7)),
        ("PA", (0, 0), imaging.BACKGROUND),
        ("La", (200, 0), imaging.BACKGROUND),
        ("La", (200, 255), (200, 200, 200)),
        ("RGBa", (0, 0, 0, 0), imaging.BACKGROUND),
        ("RGBa", (0, 0, 255, 255), BLUE),
        ("CMYK", (0, 0, 0, 0), (255, 255, 255)),
        ("YCbCr", (255, 128, 128), (255, 255, 255)),
        ("HSV", (0, 255, 255), RED),
        ("I;16B", 500, (0, 0, 0)),
        ("LAB", (100, 128, 128), None),
    ],
)
def test_every_pillow_mode_converts_to_rgb(
    mode: str, pixel: object, expected: tuple[int, int, int] | None
) -> None:
    image = Image.new(mode, (2, 2), pixel)  # type: ignore[arg-type]
    if mode == "PA":
        image.putpalette([*RED, *GREEN], "RGB")
    rgb = imaging.to_rgb(image)
    assert rgb.mode == "RGB"
    assert rgb.size == (2, 2)
    if expected is not None:
        assert near(rgb.getpixel((0, 0)), expected)  # type: ignore[arg-type]


def test_rgb_image_is_returned_as_it_is_by_to_rgb() -> None:
    image = Image.new("RGB", (2, 2), RED)
    assert imaging.to_rgb(image) is image


def exif_jpeg(orientation: int) -> bytes:
    # Red left half, blue right half, as stored (before orientation).
    image = Image.new("RGB", (64, 32), RED)
    image.paste(BLUE, (32, 0, 64, 32))
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(image, "JPEG", exif=exif, quality=95)


@pytest.mark.parametrize(
    ("orientation", "size", "top_left", "bottom_right"),
    [
        (1, (64, 32), RED, BLUE),
        (3, (64, 32), BLUE, RED),
        (6, (32, 64), RED, BLUE),  # rotate 90° clockwise: the left half goes on top
        (8, (32, 64), BLUE, RED),  # rotate 90° anticlockwise: the right half goes on top
    ],
)
def test_exif_orientation_is_applied(
    orientation: int,
    size: tuple[int, int],
    top_left: tuple[int, int, int],
    bottom_right: tuple[int, int, int],
) -> None:
    frame = only_frame(exif_jpeg(orientation))
    assert frame.size == size
    assert near(frame.getpixel((2, 2)), top_left, tolerance=12)  # type: ignore[arg-type]
    assert near(frame.getpixel((size[0] - 3, size[1] - 3)), bottom_right, tolerance=12)  # type: ignore[arg-type]


def test_damaged_exif_does_not_cost_the_picture() -> None:
    data = encode(Image.new("RGB", (16, 8), RED), "JPEG", exif=b"Exif\x00\x00MM\x00*garbage")
    assert only_frame(data).size == (16, 8)


@pytest.mark.parametrize(
    ("fmt", "options"),
    [
        ("BMP", {}),
        ("TIFF", {}),
        ("TIFF", {"compression": "tiff_lzw"}),
        ("WEBP", {"lossless": True}),
        ("PPM", {}),
        ("JPEG2000", {}),
    ],
)
def test_other_raster_formats_decode(fmt: str, options: dict[str, object]) -> None:
    frame = only_frame(encode(Image.new("RGB", (20, 10), GREEN), fmt, **options))
    assert frame.size == (20, 10)
    assert near(frame.getpixel((10, 5)), GREEN, tolerance=4)  # type: ignore[arg-type]


def test_png_saved_under_a_jpg_name_is_read_by_its_content() -> None:
    # load_frames never sees the name: the bytes decide the format.
    frame = only_frame(solid(BLUE))
    assert frame.getpixel((0, 0)) == BLUE


@pytest.mark.skipif(not features.check("avif"), reason="this Pillow build cannot read AVIF")
def test_avif_decodes() -> None:
    frame = only_frame(encode(Image.new("RGB", (32, 32), RED), "AVIF", quality=90))
    assert frame.size == (32, 32)
    assert near(frame.getpixel((16, 16)), RED, tolerance=16)  # type: ignore[arg-type]


def test_heif_decodes_where_a_plugin_reads_it() -> None:
    Image.init()
    if "HEIF" not in Image.SAVE:
        pytest.skip("no HEIF plugin (such as pillow-heif) is registered with Pillow")
    frame = only_frame(encode(Image.new("RGB", (32, 32), RED), "HEIF"))
    assert frame.size == (32, 32)


# -- Animation ---------------------------------------------------------------------


def animation(fmt: str, colours: list[tuple[int, int, int]], **options: object) -> bytes:
    frames = [Image.new("RGB", (16, 16), colour) for colour in colours]
    return encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=40, **options)


@pytest.mark.parametrize(
    ("fmt", "options"),
    [("GIF", {}), ("WEBP", {"lossless": True}), ("PNG", {})],
    ids=["gif", "webp", "apng"],
)
def test_animation_is_sampled_evenly_first_and_last_included(
    fmt: str, options: dict[str, object]
) -> None:
    data = animation(fmt, PALETTE_10, **options)
    assert len(list(ImageSequence.Iterator(Image.open(io.BytesIO(data))))) == 10
    frames = load_frames(data, Limits(max_frames=4))
    assert [frame.mode for frame in frames] == ["RGB"] * 4
    colours = [frame.getpixel((8, 8)) for frame in frames]
    assert colours == [PALETTE_10[i] for i in (0, 3, 6, 9)]


def test_short_animation_gives_every_frame() -> None:
    frames = load_frames(animation("GIF", PALETTE_10[:3]), Limits(max_frames=8))
    assert [frame.getpixel((0, 0)) for frame in frames] == PALETTE_10[:3]


def test_multi_picture_jpeg_gives_its_primary_picture_drafted() -> None:
    # What a browser shows of an MPO is its first picture, so that is what is classified.
    pictures = [Image.new("RGB", (1200, 900), RED), Image.new("RGB", (1200, 900), BLUE)]
    data = encode(pictures[0], "MPO", save_all=True, append_images=pictures[1:], quality=95)
    assert Image.open(io.BytesIO(data)).format == "MPO"
    frame = only_frame(data)
    assert frame.size == (448, 336)
    assert near(frame.getpixel((5, 5)), RED, tolerance=8)  # type: ignore[arg-type]


def test_long_animation_is_refused_rather_than_sampled_from_its_start() -> None:
    colours = [(i * 10, 255 - i * 10, (i * 37) % 256) for i in range(25)]
    data = animation("WEBP", colours, lossless=True)
    # 16×16 canvas: a budget of 5 canvases would reach frames 0–4 only, and
    # frames 5–24 would pass unseen.
    limits = Limits(max_frames=4, max_decode_pixels=5 * 16 * 16, min_frame_pixels=1)
    with pytest.raises(imaging.ImageRefused, match="over the 1,280-pixel budget"):
        load_frames(data, limits)
    enough = Limits(max_frames=4, max_decode_pixels=25 * 16 * 16, min_frame_pixels=1)
    frames = load_frames(data, enough)
    assert [frame.getpixel((8, 8)) for frame in frames] == [colours[i] for i in (0, 8, 16, 24)]


@pytest.mark.parametrize(
    ("count", "max_frames", "expected"),
    [
        (1, 8, [0]),
        (5, 8, [0, 1, 2, 3, 4]),
        (10, 4, [0, 3, 6, 9]),
        (100, 3, [0, 50, 99]),
        (1000, 8, [0, 143, 285, 428, 571, 714, 856, 999]),
        (10, 1, [0]),
        (10, 0, [0]),
        (0, 8, []),
    ],
)
def test_frame_indices(count: int, max_frames: int, expected: list[int]) -> None:
    assert imaging.frame_indices(count, max_frames) == expected


# -- Draft mode and independence of the frames -----------------------------------


def test_big_jpeg_is_drafted_down_then_shrunk_to_the_frame_side(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    drafts: list[tuple[int, int]] = []
    real_draft = JpegImagePlugin.JpegImageFile.draft

    def remembering_draft(self: JpegImagePlugin.JpegImageFile, *args: Any) -> Any:
        result = real_draft(self, *args)
        drafts.append(self.size)
        return result

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft", remembering_draft)
    data = encode(Image.new("RGB", (4000, 3000), RED), "JPEG")
    frame = only_frame(data)
    assert drafts == [(500, 375)]  # libjpeg's 1/8 scale is the smallest that fits 448×336
    assert frame.size == (448, 336)


def test_small_jpeg_is_not_shrunk() -> None:
    frame = only_frame(encode(Image.new("RGB", (300, 200), RED), "JPEG"))
    assert frame.size == (300, 200)


def test_rotated_big_jpeg_is_drafted_then_rotated() -> None:
    image = Image.new("RGB", (4000, 3000), RED)
    exif = Image.Exif()
    exif[0x0112] = 6
    frame = only_frame(encode(image, "JPEG", exif=exif))
    assert frame.size == (336, 448)


def test_frames_survive_the_source_being_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    opened: list[Image.Image] = []
    real_open = Image.open

    def remembering_open(*args: object, **kwargs: object) -> Image.Image:
        image = real_open(*args, **kwargs)  # type: ignore[arg-type]
        opened.append(image)
        return image

    monkeypatch.setattr(Image, "open", remembering_open)
    still = load_frames(solid(RED))
    animated = load_frames(animation("GIF", PALETTE_10[:3]))
    for source in opened:
        source.close()
    for frame in [*still, *animated]:
        assert not isinstance(frame, ImageFile.ImageFile)
        assert frame.tobytes()
    assert still[0].getpixel((0, 0)) == RED
    assert [frame.getpixel((0, 0)) for frame in animated] == PALETTE_10[:3]


def test_sha256() -> None:
    assert imaging.sha256(b"abc") == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )
