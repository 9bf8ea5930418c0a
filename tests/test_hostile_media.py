"""Files made to hurt: each gets a clear outcome, after bounded work.

The corpus is generated in code (tests/hostile.py). Work is asserted in
deterministic units (frames decoded, reads, pixels), never in seconds; the
times and the memory of the same corpus are measured by
``benchmarks/hostile.py`` (docs/benchmarks.md).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

from nsfw_moderation import formats, imaging
from nsfw_moderation.imaging import ImageDecodeError, ImageRefused, Limits, load_frames
from tests import hostile

DEFAULTS = Limits()


@pytest.fixture
def decoded_frames(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every pixel decode Pillow does (one per frame decoded), by format."""
    calls: list[str] = []
    real_load = ImageFile.ImageFile.load

    def counting_load(self: ImageFile.ImageFile) -> object:
        if self.tile:
            calls.append(str(self.format))
        return real_load(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", counting_load)
    return calls


def reads_used(data: bytes, limits: Limits = DEFAULTS) -> tuple[int, list[Image.Image]]:
    """How many reads decoding ``data`` takes, and the frames."""
    source = imaging._CountingFile(io.BytesIO(data), limits.max_reads)
    frames = imaging._decode(source, limits, None, imaging._admit_all).frames
    return limits.max_reads - source._left, frames


# -- Animations: frames examined, pixel work --------------------------------------


@pytest.mark.parametrize(
    "build",
    [hostile.gif_frames, hostile.apng_frames, hostile.webp_frames],
    ids=["gif", "apng", "webp"],
)
def test_animation_of_50000_tiny_frames_is_refused_before_any_frame_is_decoded(
    build: object, decoded_frames: list[str]
) -> None:
    data = build(50_000)  # type: ignore[operator]
    assert len(data) < 4_000_000
    with pytest.raises(ImageRefused, match=r"has 50,000 frames; at most 2,000 are examined"):
        load_frames(data)
    assert decoded_frames == []


def test_50_mib_gif_of_tiny_frames_stops_at_the_read_budget(decoded_frames: list[str]) -> None:
    # About 3.5 million frames: even counting them walks 50 MB of blocks in Python.
    data = hostile.gif_frames(3_500_000)
    assert len(data) > 50_000_000
    with pytest.raises(ImageRefused, match=r"too many small blocks .* 1,000,000 reads"):
        load_frames(data, Limits(max_bytes=64 * 1024 * 1024))
    assert decoded_frames == []


@pytest.mark.parametrize(
    "build",
    [hostile.gif_frames, hostile.apng_frames, hostile.webp_frames],
    ids=["gif", "apng", "webp"],
)
def test_animation_under_the_frame_cap_is_examined_whole(
    build: object, decoded_frames: list[str]
) -> None:
    frames = load_frames(build(2_000))  # type: ignore[operator]
    assert len(frames) == DEFAULTS.max_frames
    # GIF and APNG decode every frame on the way to the last; WebP decodes
    # inside its own plugin, seen here as the frames it hands over.
    assert len(decoded_frames) in (2_000, DEFAULTS.max_frames)


def test_every_frame_costs_at_least_the_minimum(decoded_frames: list[str]) -> None:
    # 100 frames of one pixel are 100 pixels, but 100 frames' worth of work.
    limits = Limits(max_decode_pixels=1_000_000, min_frame_pixels=16_384)
    with pytest.raises(ImageRefused, match=r"1,638,400 pixels of work, over the 1,000,000"):
        load_frames(hostile.gif_frames(100), limits)
    assert decoded_frames == []
    assert len(load_frames(hostile.gif_frames(60), limits)) == 8


def test_animation_over_the_pixel_budget_is_refused_not_sampled_from_its_start(
    decoded_frames: list[str],
) -> None:
    # 300 frames on a 1000×1000 canvas: 300 million pixels of decoding. A sample
    # of the frames that fit would leave the end of the animation unseen.
    data = hostile.gif_frames(300, canvas=(1_000, 1_000))
    with pytest.raises(ImageRefused, match=r"300,000,000 pixels of work, over the 256,000,000"):
        load_frames(data)
    assert decoded_frames == []


def test_canvas_that_grows_frame_by_frame_is_charged_as_it_grows(
    decoded_frames: list[str],
) -> None:
    # The header says 1×1; the frames after the first sit at (1999, 1999) and
    # Pillow enlarges the canvas to 2000×2000 to hold them. Planned as 100 tiny
    # frames, charged as 4-megapixel ones once they come.
    data = hostile.growing_gif(100, to=(2_000, 2_000))
    assert Image.open(io.BytesIO(data)).size == (1, 1)
    with pytest.raises(ImageRefused, match=r"over the 256,000,000-pixel budget"):
        load_frames(data)
    assert 0 < len(decoded_frames) < 70


# -- Files made of tiny blocks: the read budget -------------------------------------


def test_gif_with_millions_of_comment_blocks_is_refused() -> None:
    # Pillow keeps every comment block in a list: 10 MB of them cost 500 MB and 3 s.
    data = hostile.gif_comment_blocks(5_000_000)
    with pytest.raises(ImageRefused, match="too many small blocks"):
        load_frames(data)


def test_png_with_millions_of_empty_chunks_is_refused() -> None:
    with pytest.raises(ImageRefused, match="too many small blocks"):
        load_frames(hostile.png_empty_chunks(1_000_000))


def test_jpeg_with_a_million_comment_markers_is_refused() -> None:
    with pytest.raises(ImageRefused, match="too many small blocks"):
        load_frames(hostile.jpeg_comment_markers(1_000_000))


def test_read_budget_covers_a_50_mb_animated_gif_of_real_blocks() -> None:
    # Noise does not compress: LZW data in full 255-byte blocks, as an encoder
    # writes them. Scaled to 50 MB, its reads stay within the budget.
    rng = np.random.default_rng(7)
    pictures = [
        Image.fromarray(rng.integers(0, 256, (1_000, 1_000), dtype=np.uint8), "L").convert("P")
        for _ in range(3)
    ]
    buffer = io.BytesIO()
    pictures[0].save(buffer, "GIF", save_all=True, append_images=pictures[1:])
    data = buffer.getvalue()
    used, frames = reads_used(data)
    assert len(frames) == 3
    assert used * (50 * 1024 * 1024) / len(data) < DEFAULTS.max_reads


# -- Big canvases: frames shrunk as they are decoded -------------------------------


def test_64_megapixel_palette_png_is_classifiable_and_kept_small() -> None:
    data = hostile.palette_png((8_000, 8_000))
    assert len(data) < 100_000
    (frame,) = load_frames(data)
    assert frame.size == (448, 448)
    assert frame.mode == "RGB"
    assert frame.getpixel((10, 10)) == (200, 30, 30)


@pytest.mark.parametrize(
    ("size", "kept"),
    [((4_000, 3_000), (448, 336)), ((900, 2_000), (202, 448)), ((300, 200), (300, 200))],
)
def test_frames_are_shrunk_to_the_frame_side_keeping_their_shape(
    size: tuple[int, int], kept: tuple[int, int]
) -> None:
    data = hostile.encode(Image.new("RGB", size, (0, 90, 180)), "PNG")
    (frame,) = load_frames(data)
    assert frame.size == kept


def test_animation_frames_are_shrunk_too() -> None:
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]
    pictures = [Image.new("RGB", (1_200, 600), colour) for colour in colours]
    data = hostile.encode(pictures[0], "PNG", save_all=True, append_images=pictures[1:])
    frames = load_frames(data)
    assert [frame.size for frame in frames] == [(448, 224)] * 3
    assert [frame.getpixel((100, 100)) for frame in frames] == colours


def test_frame_side_is_a_limit() -> None:
    data = hostile.encode(Image.new("RGB", (1_000, 500), (0, 90, 180)), "PNG")
    (frame,) = load_frames(data, Limits(frame_side=200))
    assert frame.size == (200, 100)


def test_shrinking_weighs_every_pixel_not_a_sample() -> None:
    # A 1-pixel grid of white on black: nearest-neighbour sampling at 1/4 would
    # show pure black or pure white; an averaging filter shows the grey it is.
    grid = np.zeros((1_792, 1_792), dtype=np.uint8)
    grid[::4, ::4] = 255
    data = hostile.encode(Image.fromarray(grid, "L"), "PNG")
    (frame,) = load_frames(data)
    assert frame.size == (448, 448)
    red, _, _ = frame.getpixel((200, 200))  # type: ignore[misc]
    assert 8 <= red <= 24  # 255 / 16


# -- Name and format agree -----------------------------------------------------------


PNG = hostile.encode(Image.new("RGB", (32, 32), (10, 200, 10)), "PNG")


@pytest.mark.parametrize(
    "name",
    ["x.pdf", "x.eps", "x.ps", "x.xbm", "x.svg", "x.html", "x.ico", "x.xml", "x.txt", "x.exe"],
)
def test_png_named_as_another_format_is_refused_before_decoding(
    name: str, decoded_frames: list[str]
) -> None:
    with pytest.raises(ImageRefused, match=r"its name and its contents disagree"):
        load_frames(PNG, name=name)
    assert decoded_frames == []


@pytest.mark.parametrize(
    ("name", "fmt", "options"),
    [
        ("photo.png", "PNG", {}),
        ("photo.APNG", "PNG", {}),
        ("photo.JPG", "JPEG", {}),
        ("photo.jpeg", "JPEG", {}),
        ("uploads/2024/photo.webp", "WEBP", {}),
        ("photo.tiff", "TIFF", {}),
        ("photo.gif", "GIF", {}),
        ("no-extension", "PNG", {}),
    ],
)
def test_names_that_claim_the_format_pass(name: str, fmt: str, options: dict[str, object]) -> None:
    data = hostile.encode(Image.new("RGB", (32, 32), (10, 200, 10)), fmt, **options)
    assert len(load_frames(data, name=name)) == 1
    assert formats.named_as_another_format(fmt, name) == ""


def test_camera_jpeg_with_several_pictures_passes_under_jpg() -> None:
    pictures = [Image.new("RGB", (64, 48), (200, 0, 0)), Image.new("RGB", (64, 48), (0, 0, 200))]
    data = hostile.encode(pictures[0], "MPO", save_all=True, append_images=pictures[1:])
    assert Image.open(io.BytesIO(data)).format == "MPO"
    assert len(load_frames(data, name="IMG_0001.jpg")) == 1
    assert formats.named_as_another_format("MPO", "IMG_0001.jpg") == ""


@pytest.mark.parametrize(
    ("fmt", "name"),
    [
        ("PNG", "screenshot.jpg"),
        ("JPEG", "photo.png"),
        ("WEBP", "cdn/photo.JPG"),
        ("GIF", "cat.png"),
        ("PNG", "x.webp"),
        ("BMP", "x.gif"),
        ("TIFF", "x.jpeg"),
    ],
)
def test_a_raster_image_named_as_another_raster_type_is_decoded_for_what_it_is(
    fmt: str, name: str
) -> None:
    """Browsers show it as the image it is (they sniff image bytes): nothing to refuse."""
    data = hostile.encode(Image.new("RGB", (32, 32), (10, 200, 10)), fmt)
    (frame,) = load_frames(data, name=name)
    assert frame.getpixel((16, 16)) == pytest.approx((10, 200, 10), abs=3)
    assert imaging.decode(data, name=name).format == fmt
    assert imaging.identify(io.BytesIO(data), name) == fmt
    assert formats.named_as_another_format(fmt, name) == "." + name.rsplit(".", 1)[1].lower()


@pytest.mark.parametrize(
    ("name", "claimed"),
    [
        ("a.jpg", {"JPEG", "MPO"}),
        ("a.mpo", {"JPEG", "MPO"}),
        ("a.Png", {"PNG"}),
        ("a.pdf", set()),
        ("a.svg", set()),
        ("a.tar.gz", set()),
        ("README", None),
    ],
)
def test_formats_for_name(name: str, claimed: set[str] | None) -> None:
    assert formats.formats_for_name(name) == (None if claimed is None else frozenset(claimed))


def test_the_name_table_is_what_pillow_registers() -> None:
    """formats.py writes Pillow's table out (the admin must not import Pillow): kept equal."""
    from PIL import Image

    Image.init()
    registered: dict[str, set[str]] = {}
    for extension, image_format in Image.registered_extensions().items():
        if image_format in imaging.ALLOWED_FORMATS:
            registered.setdefault(image_format, set()).add(extension)
    for image_format, extensions in registered.items():
        assert extensions == formats.EXTENSIONS[image_format], image_format
    assert set(formats.EXTENSIONS) == set(imaging.ALLOWED_FORMATS)


def test_identify_reads_the_header_only(decoded_frames: list[str]) -> None:
    assert imaging.identify(io.BytesIO(hostile.palette_png()), "big.png") == "PNG"
    assert imaging.identify(io.BytesIO(hostile.palette_png()), "big.jpg") == "PNG"
    with pytest.raises(ImageRefused):
        imaging.identify(io.BytesIO(PNG), "x.pdf")
    with pytest.raises(ImageDecodeError, match="not an image"):
        imaging.identify(io.BytesIO(b"%PDF-1.4\n%%EOF"), "x.pdf")
    assert decoded_frames == []


# -- Size ---------------------------------------------------------------------------


def test_jpeg_padded_past_the_file_size_limit_is_refused_unread() -> None:
    data = hostile.padded_jpeg(DEFAULTS.max_bytes + 1)
    with pytest.raises(ImageDecodeError, match=r"52,428,801 bytes, over the 52,428,800-byte limit"):
        load_frames(data)


def test_decoder_messages_stay_out_of_the_reason() -> None:
    data = hostile.encode(Image.linear_gradient("L"), "PNG")
    with pytest.raises(ImageDecodeError) as caught:
        load_frames(data[: len(data) // 2])
    assert str(caught.value) == "The image is damaged or truncated."
    assert caught.value.detail  # what Pillow said, for the logs


def test_a_name_mismatch_says_so_in_its_type() -> None:
    with pytest.raises(imaging.NameMismatch):
        load_frames(PNG, name="x.pdf")
    # The pixels themselves decode, for a person to look at.
    assert len(load_frames(PNG)) == 1


# -- Several files at once: the pixel budget ------------------------------------------


def test_decoding_runs_inside_an_admission_for_the_canvas_pixels() -> None:
    admitted: list[int] = []
    budget = imaging.PixelBudget(10_000_000)

    def admit(pixels: int) -> object:
        admitted.append(pixels)
        return budget.admit(pixels)

    load_frames(hostile.palette_png((4_000, 2_000)), admit=admit)  # type: ignore[arg-type]
    assert admitted == [8_000_000]
    assert budget.in_use == 0


def test_pixel_budget_bounds_what_threads_decode_at_once() -> None:
    import threading
    import time

    budget = imaging.PixelBudget(100)
    inside: list[int] = []
    lock = threading.Lock()

    def work(pixels: int) -> None:
        with budget.admit(pixels):
            with lock:
                inside.append(budget.in_use)
            time.sleep(0.01)

    sizes = [60, 30, 30, 50, 1_000, 10, 90, 40] * 3  # 1,000 is bigger than the budget
    threads = [threading.Thread(target=work, args=(size,)) for size in sizes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(inside) == len(sizes)
    assert budget.peak <= 100
    assert budget.in_use == 0


def test_a_batch_of_16_palette_pngs_decodes_within_the_budget() -> None:
    # The worker's test decodes 16 of 64 megapixels (tests/test_worker_hostile.py);
    # 4 megapixels here, two at a time in an 8-megapixel budget, keep this quick.
    from concurrent.futures import ThreadPoolExecutor

    files = [hostile.palette_png((2_000, 2_000))] * 16
    budget = imaging.PixelBudget(8_000_000)
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda data: load_frames(data, admit=budget.admit), files))
    assert [frame.size for frames in results for frame in frames] == [(448, 448)] * 16
    assert budget.peak <= 8_000_000


# -- Big canvases are converted a band at a time --------------------------------------


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc")
def test_no_full_size_rgb_copy_of_a_big_canvas_exists(tmp_path: Path) -> None:
    from tests.test_imaging import peak_growth_mb

    # 64 MB of palette pixels; an RGBA copy and an RGB composite would add 512 MB.
    growth, outcome = peak_growth_mb(tmp_path, hostile.palette_png((8_000, 8_000)))
    assert outcome == [[448, 448]]
    assert growth < 150


def test_bands_share_one_scale_for_high_bit_depth() -> None:
    # Top half 1000, bottom half 3000: scaled per band, both would come out black.
    image = Image.new("I;16", (4_000, 4_000), 1_000)
    image.paste(3_000, (0, 2_000, 4_000, 4_000))
    (frame,) = load_frames(hostile.encode(image, "PNG"))
    assert frame.getpixel((100, 10)) == (0, 0, 0)
    assert frame.getpixel((100, 440)) == (255, 255, 255)


def test_big_palette_image_with_transparency_is_composited_in_bands() -> None:
    image = Image.new("P", (4_000, 2_000), 1)
    image.putpalette([0, 0, 0, 255, 0, 0] + [0, 0, 0] * 254)
    image.paste(0, (0, 0, 2_000, 2_000))  # left half: the transparent index
    (frame,) = load_frames(hostile.encode(image, "PNG", transparency=0))
    assert frame.size == (448, 224)
    assert frame.getpixel((50, 100)) == imaging.BACKGROUND
    assert frame.getpixel((400, 100)) == (255, 0, 0)


def test_animations_over_the_canvas_limit_are_refused(decoded_frames: list[str]) -> None:
    data = hostile.gif_frames(2, canvas=(5_000, 4_000))
    with pytest.raises(ImageRefused, match=r"20,000,000 pixels, over the 16,000,000-pixel"):
        load_frames(data)
    assert decoded_frames == []
    (still,) = load_frames(hostile.gif_frames(1, canvas=(5_000, 4_000)))
    assert still.size == (448, 358)


def test_animations_count_three_times_in_the_pixel_budget() -> None:
    admitted: list[int] = []
    budget = imaging.PixelBudget(10_000_000)

    def admit(pixels: int) -> object:
        admitted.append(pixels)
        return budget.admit(pixels)

    load_frames(hostile.gif_frames(3, canvas=(100, 100)), admit=admit)  # type: ignore[arg-type]
    assert admitted == [30_000]


def test_the_decoders_canvas_is_gone_before_the_admission_ends() -> None:
    import contextlib
    import gc

    alive_at_exit: list[int] = []

    @contextlib.contextmanager
    def admit(pixels: int) -> Iterator[None]:
        yield
        gc.collect()
        decoders = [o for o in gc.get_objects() if isinstance(o, ImageFile.ImageFile)]
        alive_at_exit.append(len(decoders))

    frames = load_frames(hostile.palette_png((2_000, 2_000)), admit=admit)
    assert frames[0].size == (448, 448)
    assert alive_at_exit == [0]
