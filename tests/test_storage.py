"""Reading uploads within MAX_FILE_SIZE (``storage.read_limited``)."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path
from typing import Any

from django.core.files import File

from nsfw_moderation import storage
from tests.conftest import moderation


class Recorded:
    """A file handle, wrapping a file as Django's ``File`` does, that notes how much
    each read asks for."""

    def __init__(self, handle: Any, file: Any = None) -> None:
        self.handle = handle
        self.file = file or handle
        self.asked: list[int] = []

    def read(self, size: int = -1) -> bytes:
        self.asked.append(size)
        return self.handle.read(size)


def test_a_file_on_disk_is_read_with_a_request_for_its_own_size(tmp_path: Path) -> None:
    # Asked for MAX_FILE_SIZE bytes at once, Python allocates that much first.
    data = bytes(range(256)) * 1200
    (tmp_path / "photo.jpg").write_bytes(data)
    with (tmp_path / "photo.jpg").open("rb") as handle:
        recorded = Recorded(handle)
        assert storage.read_limited(recorded) == data
    assert max(recorded.asked) == len(data) + 1


def test_a_file_over_the_limit_gives_one_byte_more_than_the_limit(tmp_path: Path) -> None:
    (tmp_path / "big.jpg").write_bytes(b"x" * 5000)
    with moderation(MAX_FILE_SIZE=1000), (tmp_path / "big.jpg").open("rb") as handle:
        recorded = Recorded(handle)
        assert storage.read_limited(recorded) == b"x" * 1001
    assert recorded.asked == [1001]


def test_a_file_that_grew_since_its_size_was_taken_is_read_on_to_the_limit(
    tmp_path: Path,
) -> None:
    (tmp_path / "small").write_bytes(b"x" * 10)
    (tmp_path / "grown").write_bytes(b"y" * 3000)
    with (
        moderation(MAX_FILE_SIZE=2000),
        (tmp_path / "small").open("rb") as small,
        (tmp_path / "grown").open("rb") as grown,
    ):
        # The size comes from the small file, the bytes from the grown one.
        recorded = Recorded(grown, file=small)
        assert storage.read_limited(recorded) == b"y" * 2001


def test_a_handle_without_a_descriptor_is_read_up_to_the_limit() -> None:
    with moderation(MAX_FILE_SIZE=1000):
        assert storage.read_limited(io.BytesIO(b"z" * 50)) == b"z" * 50
        assert storage.read_limited(io.BytesIO(b"z" * 5000)) == b"z" * 1001


def test_a_download_held_in_memory_stays_in_memory() -> None:
    # How remote storages (django-storages' S3 and GCS files) hold what they fetched.
    with tempfile.SpooledTemporaryFile(max_size=10**6) as spooled:
        spooled.write(b"w" * 5000)
        spooled.seek(0)
        assert storage.read_limited(File(spooled)) == b"w" * 5000
        assert not spooled._rolled  # type: ignore[attr-defined]
