"""Reading a row's bytes through its field's storage, within the decode limits.

The worker reads every file through here, and so do the commands that read
files from disk; nothing else opens an upload.
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Iterator, Sequence
from typing import IO, Any, cast

from django.contrib.contenttypes.models import ContentType
from django.db import models, router

from nsfw_moderation import imaging, video
from nsfw_moderation.conf import conf
from nsfw_moderation.models import ModeratedImage, object_id_for


class InputMissing(Exception):
    """The object or its file is gone: there is nothing left to classify."""


class FileMissing(InputMissing):
    """The object is there but its file is not (yet): never a reason to allow it."""


def decode_limits() -> imaging.Limits:
    """The decoding limits from the settings, shared by the worker and the commands."""
    return imaging.Limits(
        max_pixels=conf.MAX_IMAGE_PIXELS,
        max_bytes=conf.MAX_FILE_SIZE,
        max_frames=conf.MAX_FRAMES,
    )


def video_limits() -> video.VideoLimits:
    """The bounds of one video clip, from the settings."""
    return video.VideoLimits(
        frame_interval=conf.VIDEO_FRAME_INTERVAL,
        max_frames=conf.VIDEO_MAX_FRAMES,
        max_duration=conf.VIDEO_MAX_DURATION,
        max_pixels=conf.VIDEO_MAX_PIXELS,
        max_streams=conf.VIDEO_MAX_STREAMS,
        max_bytes=conf.VIDEO_MAX_FILE_SIZE,
        decode_timeout=conf.VIDEO_DECODE_TIMEOUT,
    )


def read_limited(handle: IO[bytes]) -> bytes:
    """At most one byte more than ``MAX_FILE_SIZE``: enough for the decoder to refuse it.

    A file on disk is asked for its own size and a byte more: asked
    for ``MAX_FILE_SIZE`` at once, Python allocates that much before reading
    (50 MB at the default, for a photo of a few), and that costs more than
    reading the photo. Should the file have grown since, it is read on.
    """
    limit = conf.MAX_FILE_SIZE + 1
    size = _size_of(handle)
    if size is None or size >= limit:
        data: bytes = handle.read(limit)
        return data
    data = handle.read(size + 1)
    if len(data) <= size:
        return data
    return data + handle.read(limit - len(data))


def _size_of(handle: IO[bytes]) -> int | None:
    """The size of the file behind ``handle`` if it is a file on disk.

    Only an open file itself is asked (through Django's ``File``, which wraps
    it): asked for a descriptor, a ``SpooledTemporaryFile`` (how remote
    storages hold a download) would move its bytes to disk.
    """
    opened = getattr(handle, "file", handle)
    if not isinstance(opened, (io.FileIO, io.BufferedReader)):
        return None
    try:
        return os.fstat(opened.fileno()).st_size
    except (OSError, ValueError):  # closed, or no descriptor after all
        return None


def read_file(row: ModeratedImage) -> bytes:
    """The bytes of the row's file, or :class:`InputMissing` when the object or file is gone."""
    if (row.content_type_id, row.object_id) not in existing_objects([row]):
        raise InputMissing("The object no longer exists.")
    return open_file(row)


def open_file(row: ModeratedImage) -> bytes:
    """The bytes of the row's file, read through its field's storage."""
    with opened(row) as handle:
        return read_limited(handle)


@contextlib.contextmanager
def opened(row: ModeratedImage) -> Iterator[IO[bytes]]:
    """The row's file, open for reading and seeking through its field's storage.

    Nothing is read yet: a video is read a range at a time, never whole. An S3
    storage's own file object would download the whole object first, so it is
    read through :class:`RangedFile` instead.
    """
    field = model_of(row)._meta.get_field(row.field_name)
    storage = field.storage  # type: ignore[union-attr]
    try:
        handle = RangedFile.of(storage, row.file_name) or storage.open(row.file_name, "rb")
    except FileNotFoundError:
        raise FileMissing(f"The file {row.file_name!r} is missing from storage.") from None
    with handle:
        yield cast(IO[bytes], handle)


class RangedFile(io.RawIOBase):
    """An object of an S3 bucket (django-storages' ``S3Storage``), read by HTTP ranges.

    Each read asks for at least :attr:`CHUNK` bytes, so a demuxer's many
    small reads cost few requests; seeking costs nothing until the next read.
    ``bytes_fetched`` counts what came over the network.
    """

    CHUNK = 256 * 1024

    def __init__(self, s3_object: Any) -> None:
        super().__init__()
        self._object = s3_object
        self._size: int = s3_object.content_length
        self._position = 0
        self._buffer = b""
        self._buffer_at = 0
        self.bytes_fetched = 0

    @classmethod
    def of(cls, storage: Any, name: str) -> RangedFile | None:
        """A ranged reader of ``name`` when ``storage`` is an S3 storage, else ``None``."""
        bucket = getattr(storage, "bucket", None)
        if bucket is None or not hasattr(storage, "_normalize_name"):
            return None
        from storages.utils import clean_name  # present wherever S3Storage is

        # The key S3Storage itself would open (its location prefix and all).
        s3_object = bucket.Object(storage._normalize_name(clean_name(name)))
        try:
            s3_object.load()
        except Exception as exc:
            status = getattr(exc, "response", {}).get("ResponseMetadata", {}).get("HTTPStatusCode")
            if status == 404:
                raise FileNotFoundError(name) from None
            raise
        return cls(s3_object)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        self._position = max(0, base + offset)
        return self._position

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            size = self._size - self._position
        size = min(size, self._size - self._position)
        if size <= 0:
            return b""
        start = self._position - self._buffer_at
        if start < 0 or start + size > len(self._buffer):
            self._fetch(size)
            start = 0
        data = self._buffer[start : start + size]
        self._position += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def _fetch(self, size: int) -> None:
        end = min(self._size, self._position + max(size, self.CHUNK)) - 1
        body = self._object.get(Range=f"bytes={self._position}-{end}")["Body"]
        self._buffer = _read_at_most(body, end - self._position + 1)
        self._buffer_at = self._position
        self.bytes_fetched += len(self._buffer)


def _read_at_most(body: Any, size: int) -> bytes:
    """Up to ``size`` bytes of a response body, even from a server that ignores ``Range``."""
    parts, left = [], size
    while left > 0:
        part = body.read(left)  # one read may return less than asked
        if not part:
            break
        parts.append(part)
        left -= len(part)
    body.close()
    return b"".join(parts)


def model_of(row: ModeratedImage) -> type[models.Model]:
    model = row.content_type.model_class()
    if model is None:
        raise InputMissing(f"The model {row.content_type} no longer exists.")
    return model


def existing_objects(rows: Sequence[ModeratedImage]) -> set[tuple[int, str]]:
    """``(content type, object id)`` of the rows' objects that still exist: a query per model."""
    wanted: dict[int, list[str]] = {}
    for row in rows:
        wanted.setdefault(row.content_type_id, []).append(row.object_id)
    present: set[tuple[int, str]] = set()
    for ct_id, object_ids in wanted.items():
        model = ContentType.objects.get_for_id(ct_id).model_class()
        if model is None:
            continue
        # The base manager, as GenericForeignKey does: a host's default manager
        # may hide rows (soft deletion, drafts) that still hold files to moderate.
        # The primary database: a lagging replica would make a new object look gone.
        objects = model._base_manager.db_manager(router.db_for_write(model))
        pks = objects.filter(pk__in=object_ids).values_list("pk", flat=True)
        present.update((ct_id, object_id_for(model, pk)) for pk in pks)
    return present
