"""Safe sampling of untrusted video: a frame every few seconds and at scene cuts, within bounds.

Independent of Django, like :mod:`nsfw_moderation.imaging`. A clip is read
from a file-like object (the storage's own, or a ranged reader for remote
storages), never whole: the demuxer seeks to each sampling time.

Frames are taken every ``frame_interval`` seconds (spread further apart where
the clip is longer than ``max_frames`` intervals) and, while the frame budget
lasts, at the keyframes the container's index lists and those met on the way:
encoders put a keyframe at every scene cut, so these are the scene changes.
Each sampling time costs one keyframe (decoded alone, ``skip_frame=NONKEY``)
where a keyframe lies within an interval before it; where keyframes are further
apart, the frames after the keyframe are decoded up to that time, going on
from the last one, so such a clip is decoded once, not once per frame taken.
Every frame is shrunk as it is converted, and what a clip may cost is bounded
before the work it guards (:class:`VideoLimits`).

Every failure raises :class:`~nsfw_moderation.imaging.ImageDecodeError` (or
:class:`~nsfw_moderation.imaging.ImageRefused` for a clip over a bound), as for
images, so the worker treats both alike.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import math
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import IO, Any

from PIL import Image

from nsfw_moderation.formats import names_video
from nsfw_moderation.imaging import ImageDecodeError, ImageRefused, NameMismatch

#: FFmpeg demuxers we let read a clip: the containers browsers play and the
#: common ones cameras and editors write. The others (playlists, image
#: sequences, subtitle and raw formats) are kept away from hostile bytes; HLS
#: and concat could even make FFmpeg open other files.
DEMUXERS = (
    "mov,mp4,m4a,3gp,3g2,mj2",
    "matroska,webm",
    "avi",
    "flv",
    "ogg",
    "mpegts",
    "mpeg",
    "asf",
    "ivf",
)

#: A name for each demuxer above, stored as the row's format (16 characters at most).
FORMAT_NAMES = {
    "mov,mp4,m4a,3gp,3g2,mj2": "MP4",
    "matroska,webm": "MATROSKA",
    "avi": "AVI",
    "flv": "FLV",
    "ogg": "OGG",
    "mpegts": "MPEG-TS",
    "mpeg": "MPEG-PS",
    "asf": "ASF",
    "ivf": "IVF",
}

# ISO base media brands of still images and image sequences (Pillow's: AVIF, HEIF).
_IMAGE_BRANDS = frozenset({b"avif", b"avis", b"heic", b"heix", b"heim", b"heis", b"mif1", b"msf1"})


@dataclass(frozen=True)
class VideoLimits:
    """What one clip may cost; every bound is checked before the work it guards."""

    #: Seconds between sampled frames (more where the clip is longer than ``max_frames`` of them).
    frame_interval: float = 2.0
    #: Frames sampled from one clip, scene changes included.
    max_frames: int = 32
    #: Declared duration, in seconds.
    max_duration: float = 4 * 3600
    #: Pixels of a video frame (4K UHD is 8.3 million).
    max_pixels: int = 3840 * 2160
    #: Streams in the container (video, audio, subtitles and data together).
    max_streams: int = 16
    #: Seconds of wall time for opening, seeking and decoding one clip.
    decode_timeout: float = 60.0
    #: The file's size in bytes; the clip is never read whole, this bounds what a scan may read.
    max_bytes: int = 4 * 1024**3
    #: Each sampled frame is shrunk to fit a square of this side (as for images).
    frame_side: int = 448
    #: Packets read after a seek while looking for a keyframe.
    max_packets_per_frame: int = 600


@dataclass(frozen=True)
class Frame:
    """A sampled frame: RGB pixels and where it sits in the clip (seconds from its start)."""

    time: float
    image: Image.Image


@dataclass(frozen=True)
class DecodedVideo:
    """What :func:`decode` sampled from a clip."""

    frames: list[Frame]
    #: The container read from the bytes (``"MP4"``, ``"MATROSKA"``…), whatever the name says.
    format: str
    #: Seconds, as the container declares it (0 where it declares none).
    duration: float
    #: SHA-256 of the file's size and every byte the decoder read, in order.
    digest: str
    #: Bytes read from the file: a fraction of it for a long clip.
    bytes_read: int


def looks_like_video(head: bytes) -> bool:
    """Whether the first bytes of a file are those of a video container we read.

    Identified by content only, as images are. AVIF and HEIF images share the
    ISO base media container with MP4: their brands leave them to Pillow.
    """
    if head[4:8] == b"ftyp":
        brands = {head[8:12]} | {head[i : i + 4] for i in range(16, min(len(head), 64) - 3, 4)}
        return not (
            head[8:12] in _IMAGE_BRANDS or (brands & _IMAGE_BRANDS and b"isom" not in brands)
        )
    if head[4:8] in (b"moov", b"mdat", b"wide", b"free", b"skip"):  # QuickTime without ftyp
        return True
    if head[:4] == b"RIFF":
        return head[8:12] == b"AVI "
    signatures = (b"\x1a\x45\xdf\xa3", b"OggS", b"FLV\x01", b"DKIF", b"\x00\x00\x01\xba")
    if head.startswith(signatures) or head.startswith(_ASF):
        return True
    # MPEG-TS: a sync byte every 188 bytes.
    return len(head) >= 377 and head[0] == head[188] == head[376] == 0x47


_ASF = bytes.fromhex("3026b2758e66cf11a6d900aa0062ce6c")
#: Bytes of a file that :func:`looks_like_video` wants to see.
HEAD_BYTES = 512


def decode(
    file: IO[bytes], limits: VideoLimits | None = None, *, name: str | None = None
) -> DecodedVideo:
    """Sample frames of the clip in ``file`` (seekable, read from its start) as RGB images.

    Raises :class:`ImageRefused` for a clip over a bound and :class:`ImageDecodeError`
    for one that cannot be read. What ``file`` itself raised (the storage failed)
    is raised again as it was: that is not the clip's fault.
    """
    limits = limits or VideoLimits()
    source = _Source(file, time.monotonic() + limits.decode_timeout, limits.max_bytes)
    try:
        return _decode(source, limits, name)
    except ImageDecodeError:
        raise
    except Exception as exc:  # FFmpeg and PyAV raise many types on hostile input.
        if source.failure is not None:
            raise source.failure from None
        source.check()
        raise _as_decode_error(exc) from None


def available() -> bool:
    """Whether PyAV (the ``[video]`` extra) is installed."""
    return importlib.util.find_spec("av") is not None


def _as_decode_error(exc: Exception) -> ImageDecodeError:
    if isinstance(exc, MemoryError):
        return ImageRefused("The video needs more memory to decode than is available.")
    return ImageDecodeError("The video is damaged or truncated.", repr(exc))


def _decode(source: _Source, limits: VideoLimits, name: str | None) -> DecodedVideo:
    if not available():
        raise ImageRefused("The file is a video; reading videos needs nsfw-moderation[video].")
    import av

    settings: dict[str, Any] = {"options": _open_options(limits), **_lenient_metadata(av)}
    container = av.open(source, "r", timeout=limits.decode_timeout, **settings)
    with container:
        source.check()
        container_format = _container_format(container)
        if name is not None:
            check_name(container_format, name)
        stream = _video_stream(container, limits)
        clip = _Clip(container, stream, limits, source)
        frames = [frame for frame in clip.sample() if frame is not None]
    if not frames:
        raise ImageDecodeError("The video has no frame we could decode.")
    return DecodedVideo(
        frames=sorted(frames, key=lambda frame: frame.time),
        format=container_format,
        duration=clip.duration or 0.0,
        digest=source.digest(),
        bytes_read=source.bytes_read,
    )


def _lenient_metadata(av: Any) -> dict[str, str]:
    """Undecodable metadata text never refuses a clip: PyAV before 19 must be told so."""
    major = int(str(av.__version__).split(".")[0])
    return {"metadata_errors": "ignore"} if major < 19 else {}


def _open_options(limits: VideoLimits) -> dict[str, str]:
    return {
        "format_whitelist": ",".join(DEMUXERS),
        # The demuxer stops adding streams one past the limit, which the
        # count then refuses: a file declaring thousands costs no more.
        "max_streams": str(limits.max_streams + 1),
        # What the demuxer reads and decodes up front to learn the streams.
        "probesize": str(5 * 1024 * 1024),
        "analyzeduration": str(5_000_000),
        # Decoders refuse frames over the pixel limit before allocating them.
        "max_pixels": str(limits.max_pixels),
    }


def _container_format(container: Any) -> str:
    demuxer = container.format.name
    if demuxer not in FORMAT_NAMES:
        raise ImageRefused(f"Videos in the {demuxer} container are not accepted.")
    return FORMAT_NAMES[demuxer]


def _video_stream(container: Any, limits: VideoLimits) -> Any:
    if len(container.streams) > limits.max_streams:
        raise ImageRefused(
            f"The video has more than {limits.max_streams:,} streams (video, audio, subtitles "
            "and data together), the most accepted."
        )
    # A cover picture (an "attached picture") is a still image, not the clip.
    videos = [s for s in container.streams.video if not _is_cover(s)]
    if not videos:
        raise ImageDecodeError("The file holds no video stream.")
    stream = videos[0]
    width, height = stream.codec_context.width, stream.codec_context.height
    if width < 1 or height < 1:
        raise ImageDecodeError("The video has no pixels.")
    if width * height > limits.max_pixels:
        raise ImageRefused(
            f"The video is {width}×{height} = {width * height:,} pixels a frame, "
            f"over the {limits.max_pixels:,}-pixel limit."
        )
    from av.stream import Discard

    # Audio, subtitles and data are never read: the demuxer skips their packets.
    for other in container.streams:
        if other.index != stream.index:
            other.discard = Discard.all
    return stream


def _is_cover(stream: Any) -> bool:
    from av.stream import Disposition

    try:
        return bool(stream.disposition & Disposition.attached_pic)
    except Exception:
        return False


class _Clip:
    """One video stream of an open container, sampled at keyframes and every interval."""

    def __init__(self, container: Any, stream: Any, limits: VideoLimits, source: _Source) -> None:
        self.container = container
        self.stream = stream
        self.limits = limits
        self.source = source
        self.start = _seconds(stream.start_time, stream.time_base) or 0.0
        self.duration = _duration(container, stream)
        if self.duration is not None and self.duration > limits.max_duration:
            raise ImageRefused(
                f"The video lasts {self.duration:,.0f} seconds, over the "
                f"{limits.max_duration:,.0f}-second limit."
            )
        self.keyframes = self._indexed_keyframes()
        # Where a forward decode stopped (its frames, and the time of the last one).
        self._cursor: Iterator[Any] | None = None
        self._cursor_time = -1.0
        self._met: list[Frame] = []
        context = stream.codec_context
        # The deblocking filter is the decoder's costliest step that a classifier
        # looking at a 224-pixel square does not miss.
        context.options = {"skip_loop_filter": "all"}
        # Slice threads keep no frames in flight: a keyframe comes out of its own packet.
        stream.thread_type = "SLICE"

    def sample(self) -> Iterator[Frame | None]:
        taken: set[float] = set()
        for when, mark in self.times():
            frame = self._mark(when, taken) if mark else self._keyframe_at(when)
            # Keyframes met on the way to a mark are scene changes too.
            met, self._met = self._met, []
            for found in [*met, frame]:
                if found is None or found.time in taken:
                    continue
                taken.add(found.time)
                yield found
                if len(taken) >= self.limits.max_frames:
                    return

    def times(self) -> list[tuple[float, bool]]:
        """``(seconds, is a mark)``: every interval, then the index's other keyframes."""
        if not self.duration:
            return [(0.0, True)]
        limits = self.limits
        step = max(limits.frame_interval, self.duration / limits.max_frames)
        marks = [index * step for index in range(max(1, math.ceil(self.duration / step)))]
        room = limits.max_frames - len(marks)
        scenes = [t for t in self.keyframes if t not in marks]
        chosen = [scenes[i] for i in _spread(len(scenes), room)] if room > 0 else []
        return sorted([(t, True) for t in marks] + [(t, False) for t in chosen])

    def _indexed_keyframes(self) -> list[float]:
        """Keyframe times the container's index lists without reading (MP4's, for one)."""
        try:
            entries = self.stream.index_entries
        except Exception:
            return []
        times = []
        # The index of a long clip is long: it is read, never decoded.
        for entry in entries[: 64 * self.limits.max_frames]:
            if entry.is_keyframe:
                seconds = _seconds(entry.timestamp, self.stream.time_base)
                if seconds is not None:
                    times.append(max(0.0, seconds - self.start))
        return times

    def _mark(self, when: float, taken: set[float]) -> Frame | None:
        """The frame shown at ``when``: the keyframe before it if near enough and not ``taken``.

        Where keyframes are further apart than the interval, the frames after
        the keyframe are decoded up to ``when``, going on from the last mark
        when no keyframe lies between: the clip is then decoded once, not once per mark.
        """
        if (
            self._cursor is not None
            and self._cursor_time < when
            and not self._keyframe_in(self._cursor_time, when)
        ):
            return self._decode_to(when)
        keyframe = self._keyframe_at(when)
        near = keyframe is not None and when - keyframe.time <= self.limits.frame_interval
        if keyframe is None or (near and keyframe.time not in taken):
            return keyframe
        self._seek(when)
        self._cursor = self.container.decode(self.stream)
        return self._decode_to(when)

    def _keyframe_in(self, after: float, until: float) -> bool:
        # Without an index every keyframe is possible: seek, to be safe.
        return not self.keyframes or any(after < t <= until for t in self.keyframes)

    def _decode_to(self, when: float) -> Frame | None:
        assert self._cursor is not None
        self.stream.codec_context.skip_frame = "DEFAULT"
        for count, decoded in enumerate(self._cursor, start=1):
            self.source.check()
            frame_time = self._time_of(decoded)
            self._cursor_time = frame_time
            if frame_time + 1e-6 >= when:
                return self._frame(decoded)
            if decoded.key_frame and count > 1:
                self._met.append(self._frame(decoded))
            if count >= self.limits.max_packets_per_frame:
                break
        self._cursor = None
        return None

    def _seek(self, when: float) -> None:
        stream = self.stream
        target = int((when + self.start) / stream.time_base) if stream.time_base else 0
        self.container.seek(target, stream=stream, backward=True, any_frame=False)
        self._cursor, self._cursor_time = None, -1.0

    def _keyframe_at(self, when: float) -> Frame | None:
        """The keyframe at or before ``when`` seconds (or the first one after), decoded small."""
        self._seek(when)
        # Only keyframes are decoded: each needs no other frame, so a seek costs one frame.
        self.stream.codec_context.skip_frame = "NONKEY"
        for packets, packet in enumerate(self.container.demux(self.stream), start=1):
            self.source.check()
            if packets > self.limits.max_packets_per_frame:
                return None
            decoded = packet.decode()
            if decoded:
                return self._frame(decoded[0])
            if packet.is_keyframe:
                # Decoders that reorder frames (HEVC, AV1, H.264 with B-frames)
                # hold a keyframe back until the frames after it come.
                self.stream.codec_context.skip_frame = "DEFAULT"
        return None

    def _time_of(self, decoded: Any) -> float:
        seconds = decoded.time
        return max(0.0, (seconds if seconds is not None else self.start) - self.start)

    def _frame(self, decoded: Any) -> Frame:
        self.source.check()
        return Frame(round(self._time_of(decoded), 3), self._image(decoded))

    def _image(self, decoded: Any) -> Image.Image:
        width, height = _fit((decoded.width, decoded.height), self.limits.frame_side)
        # Area averaging weighs every pixel, as the image path's box filter does.
        image = decoded.to_image(width=width, height=height, interpolation="AREA")
        rotation = round(getattr(decoded, "rotation", 0) or 0) % 360
        if rotation:
            # The display matrix turns the picture counter-clockwise by this many degrees.
            image = image.rotate(rotation, expand=True)
        return image.convert("RGB")


def _spread(count: int, wanted: int) -> list[int]:
    """Up to ``wanted`` indices spread evenly over ``count`` items."""
    if count <= wanted:
        return list(range(count))
    step = count / wanted
    return sorted({int(i * step) for i in range(wanted)})


def _duration(container: Any, stream: Any) -> float | None:
    """The longest duration the stream or the container declares: a bound must trust the worst."""
    declared = [_seconds(stream.duration, stream.time_base)]
    if container.duration is not None:
        declared.append(container.duration / 1_000_000)
    seconds = max((s for s in declared if s is not None and math.isfinite(s)), default=None)
    if seconds is None or seconds <= 0:
        return None
    return seconds


def _seconds(value: int | None, time_base: Fraction | None) -> float | None:
    if value is None or not time_base:
        return None
    return float(value * time_base)


def _fit(size: tuple[int, int], side: int) -> tuple[int, int]:
    width, height = size
    scale = min(1.0, side / width, side / height)
    return (max(2, round(width * scale)), max(2, round(height * scale)))


def check_name(container_format: str, name: str) -> None:
    """Refuse a clip whose name would have it taken for something else (an image, a page).

    A name without an extension or with a video's extension passes; any other
    (``clip.jpg``, ``clip.html``) is served as what it names, not as a video.
    """
    if names_video(name) is not False:
        return
    extension = os.path.splitext(name)[1].lower()
    raise NameMismatch(
        f"The file holds a {container_format} video but is named {extension}, which is not "
        "a name for videos: its name and its contents disagree."
    )


class _Source:
    """The clip's file as the demuxer reads it: reads counted and hashed, within a deadline.

    The hash covers what the decoder read, in order: the same file read with
    the same settings hashes the same, without reading the parts no sample needs.
    """

    def __init__(self, raw: IO[bytes], deadline: float, max_bytes: int) -> None:
        self._raw = raw
        self._deadline = deadline
        self._max_bytes = max_bytes
        self._hash = hashlib.sha256()
        self.bytes_read = 0
        #: What reading the file raised, if it did.
        self.failure: Exception | None = None
        self.size = raw.seek(0, io.SEEK_END)
        raw.seek(0)
        self._hash.update(str(self.size).encode())
        if not self.size:
            raise ImageDecodeError("The file is empty.")
        if self.size > max_bytes:
            raise ImageRefused(
                f"The file is {self.size:,} bytes, over the {max_bytes:,}-byte limit."
            )

    def read(self, size: int = -1) -> bytes:
        self.check()
        try:
            data: bytes = self._raw.read(size)
        except Exception as exc:
            self.failure = exc
            raise
        self.bytes_read += len(data)
        self._hash.update(data)
        return data

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._raw.seek(offset, whence)

    def tell(self) -> int:
        return self._raw.tell()

    def seekable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True

    def check(self) -> None:
        if time.monotonic() > self._deadline:
            raise ImageRefused("Decoding the video took too long; it was stopped.")

    def digest(self) -> str:
        return self._hash.hexdigest()
