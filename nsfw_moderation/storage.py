"""Reading a row's bytes through its field's storage, within the decode limits.

The worker reads every file through here, and so do the commands that read
files from disk; nothing else opens an upload.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from typing import IO

from django.contrib.contenttypes.models import ContentType
from django.db import models, router

from nsfw_moderation import imaging
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
    field = model_of(row)._meta.get_field(row.field_name)
    storage = field.storage  # type: ignore[union-attr]
    try:
        with storage.open(row.file_name, "rb") as handle:
            return read_limited(handle)
    except FileNotFoundError:
        raise FileMissing(f"The file {row.file_name!r} is missing from storage.") from None


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
