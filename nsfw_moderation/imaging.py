"""Safe decoding of untrusted image bytes. Independent of Django.

Every failure raises :class:`ImageDecodeError` with a message a moderator can
read; nothing else escapes :func:`load_frames`. Sizes are checked from the
header, before any pixel buffer exists, and again after every seek because
later frames (TIFF pages, GIF frames) may declare sizes of their own.

The work per file is bounded whatever the bytes say (see :class:`Limits`):
Pillow's parsers may read the file only so many times, so a file made of
millions of tiny blocks stops early; an animation has a cap on the frames
examined and a pixel budget in which every frame costs at least
``min_frame_pixels``; and every frame kept is shrunk right after decoding, so
what a file leaves in memory does not grow with its canvas.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import math
import os
import struct
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import IO

from PIL import ExifTags, Image, UnidentifiedImageError

from nsfw_moderation.formats import formats_for_name

#: Transparent pixels are composited onto this neutral grey.
BACKGROUND = (128, 128, 128)

# Formats we decode, in the order Pillow tries them. Vector and document
# formats (SVG, PDF, EPS) are refused: Pillow either cannot read them or would
# hand them to external programs. ICO is refused because an icon may embed a
# PNG far larger than its directory declares, which our pixel limit cannot see
# before the PNG is decoded. HEIF only opens where a plugin such as pillow-heif
# has registered it.
ALLOWED_FORMATS = (
    "JPEG",
    "MPO",
    "PNG",
    "GIF",
    "WEBP",
    "BMP",
    "DIB",
    "TIFF",
    "PPM",
    "TGA",
    "JPEG2000",
    "AVIF",
    "HEIF",
)

_HIGH_BIT_DEPTH_MODES = frozenset({"I;16", "I;16B", "I;16L", "I;16N", "I", "F"})
_ALPHA_MODES = frozenset({"RGBA", "LA", "PA", "P", "RGBa"})
# Modes whose transparency is a single colour key in ``info`` (PNG tRNS).
_KEYED_TRANSPARENCY_MODES = frozenset({"1", "L", "RGB"})

# Not ImageOps.exif_transpose: that turns one image and raises on a damaged
# EXIF block, while every sampled frame of an animation needs the first
# frame's orientation, and a bad EXIF block must not cost us the picture.
_ORIENTATION_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


# What Pillow's parsers raise on malformed bytes, beyond OSError: headers that
# end early, fields that point nowhere, sizes that do not add up.
_DAMAGED_FILE_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    IndexError,
    KeyError,
    TypeError,
    ZeroDivisionError,
    struct.error,
)


class ImageDecodeError(ValueError):
    """The bytes are not an image we can safely decode.

    The message is ours and safe to show anyone; ``detail`` holds what the
    decoder said, for logs only (it may quote the file's own bytes).
    """

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.detail = detail


class ImageRefused(ImageDecodeError):
    """The bytes may well be an image, but decoding them is refused: too large, too
    many pixels, a format that is not accepted, over a work budget, or named as
    another format. Unlike damaged bytes, a refused file is never let through by
    a lenient setting: it is for a person to see."""


class NameMismatch(ImageRefused):
    """The file's name would have it taken for something other than an image (:func:`check_name`).

    The pixels themselves may be fine: decode again without the name to show
    them to a person.
    """


@dataclass(frozen=True)
class Limits:
    max_pixels: int = 64_000_000
    max_bytes: int = 50 * 1024 * 1024
    #: Frames sampled from an animation for the classifier.
    max_frames: int = 8
    #: Frames decoded on the way. GIF and APNG decode every frame up to the one
    #: asked for, and WebP's per-frame cost grows with the frame count, so a
    #: longer animation is refused rather than examined in part: a sample from
    #: its start alone would let the frames after it through unseen.
    max_frames_examined: int = 2_000
    #: Canvas pixels of an animation. Pillow keeps up to three RGBA canvases
    #: while it composes APNG and GIF frames (about 12 bytes a pixel), and 4K
    #: video is 8.3 megapixels.
    max_animation_canvas: int = 16_000_000
    #: The pixel work of a file: (frames decoded) × (canvas pixels) …
    max_decode_pixels: int = 256_000_000
    #: … where a frame costs at least this much, whatever its size: decoding a
    #: frame has a fixed cost (about 13 µs for a 1×1 GIF frame) that its pixels
    #: do not show.
    min_frame_pixels: int = 16_384
    #: Reads of the file by Pillow's parsers, which walk blocks, chunks and
    #: markers in Python. A 50 MB GIF of 255-byte blocks, the most a real one
    #: has, needs about 800,000 over the two walks of a decode.
    max_reads: int = 1_000_000
    #: Every frame kept is shrunk right after decoding to fit in a square of
    #: this side: twice the classifier's input (224 for ViT models) keeps the
    #: detail it uses and bounds the memory a frame holds.
    frame_side: int = 448


@dataclass(frozen=True)
class Decoded:
    """What :func:`decode` read from a file."""

    frames: list[Image.Image]
    #: The format read from the bytes (Pillow's name: ``"PNG"``), whatever the name says.
    format: str


def load_frames(
    data: bytes,
    limits: Limits | None = None,
    *,
    name: str | None = None,
    admit: Callable[[int], AbstractContextManager[object]] | None = None,
) -> list[Image.Image]:
    """Decode ``data`` into RGB frames ready for a classifier (:func:`decode`'s frames)."""
    return decode(data, limits, name=name, admit=admit).frames


def decode(
    data: bytes,
    limits: Limits | None = None,
    *,
    name: str | None = None,
    admit: Callable[[int], AbstractContextManager[object]] | None = None,
) -> Decoded:
    """Decode ``data`` into RGB frames ready for a classifier, and say what format it was.

    A still image gives one frame; an animated one gives up to
    ``limits.max_frames`` frames spread evenly over the animation. The frames
    are fully loaded, share nothing with the decoder and fit in a square of
    ``limits.frame_side``. With ``name``, a name that would have the file taken
    for something other than an image is refused (:func:`check_name`) before
    any pixel is decoded. With ``admit``, decoding runs inside
    ``admit(canvas pixels)``, called once the header is read, and the
    decoder's canvases are freed before it ends: a :class:`PixelBudget`
    shared by threads bounds what they decode at once.
    """
    limits = limits or Limits()
    _check_length(data, limits)
    source = _CountingFile(io.BytesIO(data), limits.max_reads)
    with _pillow_errors(source):
        return _decode(source, limits, name, admit or _admit_all)


def identify(file: IO[bytes], name: str, limits: Limits | None = None) -> str:
    """The format of an image file, from its header only; no pixel is decoded.

    Raises :class:`ImageDecodeError` for a file that is not an image in an
    accepted format, or whose name would have it taken for something else.
    """
    limits = limits or Limits()
    source = _CountingFile(file, limits.max_reads)
    with _pillow_errors(source):
        return str(_open(source, limits, name).format)


@contextlib.contextmanager
def _pillow_errors(source: _CountingFile) -> Iterator[None]:
    try:
        with warnings.catch_warnings():
            # Hostile files make Pillow warn about every odd EXIF block and
            # palette; the verdict is what matters, not the noise.
            warnings.simplefilter("ignore")
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    except ImageDecodeError:
        raise
    except Exception as exc:  # Pillow plugins raise a zoo of types on hostile input.
        # Out of reads, a parser sees a truncated file and says so; the real reason is ours.
        source.check()
        raise _as_decode_error(exc) from None


def _check_length(data: bytes, limits: Limits) -> None:
    if not data:
        raise ImageDecodeError("The file is empty.")
    if len(data) > limits.max_bytes:
        raise ImageRefused(
            f"The file is {len(data):,} bytes, over the {limits.max_bytes:,}-byte limit."
        )


def _as_decode_error(exc: Exception) -> ImageDecodeError:
    if isinstance(exc, UnidentifiedImageError):
        return ImageDecodeError("The file is not an image in a format we can read.")
    if isinstance(exc, (Image.DecompressionBombError, Image.DecompressionBombWarning)):
        return ImageRefused("The image is too large to decode safely.", str(exc))
    if isinstance(exc, MemoryError):
        return ImageRefused("The image needs more memory to decode than is available.")
    if isinstance(exc, _DAMAGED_FILE_ERRORS):
        return ImageDecodeError("The image is damaged or truncated.", str(exc))
    return ImageDecodeError("The image could not be decoded.", repr(exc))


class _CountingFile:
    """A read-only file that answers at most ``max_reads`` reads, then reports end of file.

    Pillow's parsers read a block, chunk or marker at a time, in Python; the
    count bounds that work for every format at once. Running out looks like a
    truncated file to the parser, and :meth:`check` turns it into a refusal.
    """

    def __init__(self, raw: IO[bytes], max_reads: int) -> None:
        self._raw = raw
        self._left = max_reads
        self.max_reads = max_reads

    def read(self, size: int | None = -1) -> bytes:
        if self._left <= 0:
            return b""
        self._left -= 1
        return self._raw.read(-1 if size is None else size)

    def readline(self, size: int | None = -1) -> bytes:
        if self._left <= 0:
            return b""
        self._left -= 1
        return self._raw.readline(-1 if size is None else size)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._raw.seek(offset, whence)

    def tell(self) -> int:
        return self._raw.tell()

    def check(self) -> None:
        if self._left <= 0:
            raise ImageRefused(
                f"The file is made of too many small blocks to read safely: its parsing "
                f"went past {self.max_reads:,} reads."
            )


def _decode(
    source: _CountingFile,
    limits: Limits,
    name: str | None,
    admit: Callable[[int], AbstractContextManager[object]],
) -> Decoded:
    image = _open(source, limits, name)
    image_format = str(image.format)
    count = _frame_count(image, source)
    work = _Work(limits)
    work.plan(count, image.size)
    indices = frame_indices(count, limits.max_frames)
    weight = ANIMATION_WEIGHT if count > 1 else 1
    admitted = image.size[0] * image.size[1] * weight
    with admit(admitted) as admission:
        try:
            frames = list(_frames(image, indices, limits, work, source))
        finally:
            if isinstance(admission, Admission):
                # After any draft: a JPEG decoded at 1/8 of its size. Unless it
                # is progressive: libjpeg then holds the whole image's coefficients.
                drafted = image.size[0] * image.size[1] * weight
                admission.canvas = admitted if image.info.get("progressive") else drafted
            # The decoder's canvases are freed while the admission lasts, so
            # that the budget covers them until they are gone (the frames
            # share nothing with them).
            image.close()
            del image
    source.check()
    return Decoded(frames, image_format)


@dataclass
class Admission:
    """What an ``admit`` context manager may yield to learn what was decoded under it."""

    #: The canvas pixels the decoder held, as admitted (animations weighted),
    #: but at the size it decoded: less than admitted where a baseline JPEG
    #: is decoded at a fraction of its size.
    canvas: int = 0


def _admit_all(pixels: int) -> AbstractContextManager[object]:
    return contextlib.nullcontext()


#: An animation's canvas counts this many times in a :class:`PixelBudget`:
#: Pillow holds up to three canvases while it composes frames.
ANIMATION_WEIGHT = 3


class PixelBudget:
    """Canvas pixels that threads may decode at once; a thread waits for its share.

    A file bigger than the whole budget waits until it can have the budget to
    itself, so it never waits forever. Decoding holds the decoder's canvas (one
    byte a pixel for a palette, four for RGB or RGBA, three canvases for an
    animation, which is admitted at :data:`ANIMATION_WEIGHT` times its pixels)
    and a band of rows at a time besides, so the budget bounds the decoders'
    memory whatever the batch holds: about 4 bytes per budget pixel.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = max(1, capacity)
        self.in_use = 0
        self.peak = 0
        self._changed = threading.Condition()

    @contextlib.contextmanager
    def admit(self, pixels: int) -> Iterator[None]:
        share = min(max(1, pixels), self.capacity)
        with self._changed:
            self._changed.wait_for(lambda: self.in_use + share <= self.capacity)
            self.in_use += share
            self.peak = max(self.peak, self.in_use)
        try:
            yield
        finally:
            with self._changed:
                self.in_use -= share
                self._changed.notify_all()


def _open(source: _CountingFile, limits: Limits, name: str | None) -> Image.Image:
    # Restricting the plugins Pillow tries keeps hostile bytes away from the
    # parsers of formats we never meant to accept.
    image = Image.open(source, formats=_openable_formats())  # type: ignore[arg-type]
    source.check()
    if image.format not in ALLOWED_FORMATS:
        raise ImageRefused(f"Images in {image.format} format are not accepted.")
    if name is not None:
        check_name(str(image.format), name)
    _check_size(image, limits)
    return image


_openable: tuple[int, list[str]] = (-1, [])


def _openable_formats() -> list[str]:
    # Recomputed when Pillow's registry changes: a HEIF plugin may register
    # itself after import.
    global _openable
    Image.init()
    if _openable[0] != len(Image.OPEN):
        _openable = (len(Image.OPEN), [name for name in ALLOWED_FORMATS if name in Image.OPEN])
    return _openable[1]


def _check_size(image: Image.Image, limits: Limits) -> None:
    """Refuse before any pixel is decoded: only the header has been read so far."""
    width, height = image.size
    if width < 1 or height < 1:
        raise ImageDecodeError("The image has no pixels.")
    if width * height > limits.max_pixels:
        raise ImageRefused(
            f"The image is {width}×{height} = {width * height:,} pixels, "
            f"over the {limits.max_pixels:,}-pixel limit."
        )


def _frame_count(image: Image.Image, source: _CountingFile) -> int:
    if image.format == "MPO":
        # Browsers show only the primary picture of a multi-picture JPEG, and
        # Pillow's draft mode on it breaks seeking to the others.
        return 1
    # GIF counts by walking every frame's blocks: the read budget bounds it.
    count = max(1, int(getattr(image, "n_frames", 1)))
    source.check()
    return count


class _Work:
    """The pixel work of one file, planned from its header and charged frame by frame."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.done = 0

    def plan(self, count: int, size: tuple[int, int]) -> None:
        limits = self.limits
        if count > limits.max_frames_examined:
            raise ImageRefused(
                f"The animation has {count:,} frames; at most "
                f"{limits.max_frames_examined:,} are examined."
            )
        canvas = size[0] * size[1]
        if count > 1 and canvas > limits.max_animation_canvas:
            raise ImageRefused(
                f"The animation's canvas is {size[0]}×{size[1]} = {canvas:,} pixels, over the "
                f"{limits.max_animation_canvas:,}-pixel limit for animations."
            )
        self._check(count * self.cost(size))

    def charge(self, size: tuple[int, int]) -> None:
        self.done += self.cost(size)
        self._check(self.done)

    def cost(self, size: tuple[int, int]) -> int:
        return max(size[0] * size[1], self.limits.min_frame_pixels)

    def _check(self, work: int) -> None:
        if work > self.limits.max_decode_pixels:
            raise ImageRefused(
                f"Decoding the image takes {work:,} pixels of work, over the "
                f"{self.limits.max_decode_pixels:,}-pixel budget."
            )


def _frames(
    image: Image.Image, indices: list[int], limits: Limits, work: _Work, source: _CountingFile
) -> Iterator[Image.Image]:
    # Frame by frame, as Pillow decodes them anyway (GIF and APNG compose each
    # frame on the one before), so that every frame decoded is charged and
    # checked, even one that enlarges the canvas.
    transpose: Image.Transpose | None = None
    animated = indices != [0]
    wanted = set(indices)
    for index in range(indices[-1] + 1):
        if index:
            image.seek(index)
            source.check()
            _check_size(image, limits)
        work.charge(image.size)
        if index not in wanted:
            continue
        if image.format in ("JPEG", "MPO"):
            image.draft("RGB", _fit(image.size, max(limits.frame_side, 1)))
        image.load()
        source.check()
        if index == 0:
            # Some formats (PNG eXIf) only reveal EXIF once loaded.
            transpose = _exif_transpose_method(image)
        yield _finish(image, transpose, animated, limits.frame_side)


def _finish(
    image: Image.Image, transpose: Image.Transpose | None, animated: bool, side: int
) -> Image.Image:
    frame = _small_rgb(image, max(side, 1))
    if transpose is not None:
        # After shrinking: the square box does not care about orientation.
        frame = frame.transpose(transpose)
    if frame is not image:
        return frame
    # The frame is the decoder's own image. An animation will seek on and may
    # overwrite it, so it needs a copy; a still image can hand its pixels over
    # to a fresh Image that holds no file, so closing the source cannot touch it.
    return image.copy() if animated else image._new(image.im)


#: Rows of a big canvas converted at a time (rounded to the reduction factor).
BAND_ROWS = 256


def _small_rgb(image: Image.Image, side: int) -> Image.Image:
    """``image`` as RGB, shrunk to fit in a ``side`` square, with filters that weigh every pixel.

    Nearest-neighbour sampling would let a crafted image show the classifier a
    different picture from the one people see; box and bicubic filters do not.
    A canvas several times the target is converted and box-reduced a band of
    rows at a time, so that no full-size RGB or RGBA copy of it ever exists:
    the decoder's own canvas is the only large buffer (a 64-megapixel palette
    image needs 64 MB, not the 576 MB of an RGBA copy plus an RGB composite).
    Bands hold a whole number of reduction boxes, so the result is the same as
    reducing the whole converted image.
    """
    size = _fit(image.size, side)
    factor = max(1, int(min(image.size[0] / size[0], image.size[1] / size[1]) // 2))
    if factor == 1:
        frame = to_rgb(image)
        if size == frame.size:
            return frame
        return frame.resize(size, Image.Resampling.BICUBIC)
    width, height = image.size
    value_range = _value_range(image)
    reduced = Image.new("RGB", (-(-width // factor), -(-height // factor)))
    step = factor * max(1, BAND_ROWS // factor)
    for top in range(0, height, step):
        band = image.crop((0, top, width, min(top + step, height)))
        reduced.paste(to_rgb(band, value_range).reduce(factor), (0, top // factor))
    return reduced.resize(size, Image.Resampling.BICUBIC)


def _fit(size: tuple[int, int], side: int) -> tuple[int, int]:
    """``size`` scaled down (never up) to fit in a ``side`` square, keeping its shape."""
    width, height = size
    scale = min(1.0, side / width, side / height)
    return (max(1, round(width * scale)), max(1, round(height * scale)))


def _exif_transpose_method(image: Image.Image) -> Image.Transpose | None:
    try:
        orientation = image.getexif().get(ExifTags.Base.Orientation)
    except Exception:  # A damaged EXIF block should not cost us the picture.
        return None
    if not isinstance(orientation, int):
        return None
    return _ORIENTATION_TRANSPOSE.get(orientation)


def frame_indices(count: int, max_frames: int) -> list[int]:
    """Up to ``max_frames`` indices spread evenly over ``count`` frames.

    The first and the last frame are always included: what an animation ends
    on matters as much as what it starts with.
    """
    if count < 1:
        return []
    max_frames = max(1, max_frames)
    if count <= max_frames:
        return list(range(count))
    if max_frames == 1:
        return [0]
    step = (count - 1) / (max_frames - 1)
    return [round(i * step) for i in range(max_frames)]


def to_rgb(image: Image.Image, value_range: tuple[float, float] | None = None) -> Image.Image:
    """``image`` as RGB, transparency composited onto :data:`BACKGROUND`.

    Returns ``image`` itself when it is already RGB without transparency.
    High-bit-depth greyscale is stretched from ``value_range`` (default: its
    own extremes) to 8 bits.
    """
    mode = image.mode
    if mode in _HIGH_BIT_DEPTH_MODES:
        return _scale_to_l(image, value_range).convert("RGB")
    if mode == "La":
        # Pillow has no direct La→RGBA conversion; LA is the unpremultiplied twin.
        return _composite(image.convert("LA").convert("RGBA"))
    if mode == "P" and not _has_transparency(image):
        return image.convert("RGB")
    if mode == "RGBA":
        return _composite(image)
    if mode in _ALPHA_MODES or (
        mode in _KEYED_TRANSPARENCY_MODES and image.info.get("transparency") is not None
    ):
        return _composite(image.convert("RGBA"))
    if mode == "RGB":
        return image
    try:
        return image.convert("RGB")
    except ValueError:
        raise ImageDecodeError(f"Images with {mode} pixels are not supported.") from None


def _composite(image: Image.Image) -> Image.Image:
    background = Image.new("RGB", image.size, BACKGROUND)
    background.paste(image, mask=image.getchannel("A"))
    return background


def _has_transparency(image: Image.Image) -> bool:
    palette = image.palette
    return image.info.get("transparency") is not None or (
        palette is not None and "A" in palette.mode
    )


def _value_range(image: Image.Image) -> tuple[float, float] | None:
    """The extremes of a high-bit-depth image, so that its bands share one scale."""
    if image.mode not in _HIGH_BIT_DEPTH_MODES:
        return None
    low, high = image.getextrema()
    if not isinstance(low, (int, float)) or not isinstance(high, (int, float)):
        raise ImageDecodeError("The image has an unsupported pixel format.")
    return float(low), float(high)


def _scale_to_l(image: Image.Image, value_range: tuple[float, float] | None = None) -> Image.Image:
    """High-bit-depth greyscale to 8-bit, stretching its actual range."""
    image = image.convert("F") if image.mode != "F" else image
    low, high = value_range or image.getextrema()
    if not isinstance(low, (int, float)) or not isinstance(high, (int, float)):
        raise ImageDecodeError("The image has an unsupported pixel format.")
    if not (math.isfinite(low) and math.isfinite(high)):
        # NaN or infinite samples: there is no range to stretch, so clip.
        return image.convert("L")
    span = (high - low) or 1.0
    return image.point(lambda v: (v - low) * 255.0 / span).convert("L")


def check_name(image_format: str, name: str) -> None:
    """Refuse a file whose name would have it taken for something other than an image.

    Browsers and storages serve a file by its extension: PNG bytes named
    ``x.pdf``, ``x.svg`` or ``x.html`` pass as an image here and are served as
    a document there, for a PDF reader, an SVG renderer or an HTML page to
    interpret. An extension that no accepted image format uses is refused
    (:class:`NameMismatch`). A name without an extension claims nothing (it is
    served as ``application/octet-stream``, which browsers download). A raster
    image named as another raster format (a screenshot's PNG named ``.jpg``)
    is shown as the image it is, as browsers sniff image bytes whatever image
    type they are served as: it passes, and :func:`nsfw_moderation.formats.named_as_another_format`
    says so.
    """
    claimed = formats_for_name(name)
    if claimed is None or claimed:
        return
    extension = os.path.splitext(name)[1].lower()
    raise NameMismatch(
        f"The file holds a {image_format} image but is named {extension}, which is not a "
        "name for images: its name and its contents disagree."
    )


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
