"""ON_REJECT helpers that put rejected files out of reach: quarantine and delete_file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.core.checks import run_checks
from django.core.files.base import ContentFile
from django.core.files.storage import InMemoryStorage, Storage, storages
from django.http import Http404
from django.test import RequestFactory

from nsfw_moderation import registry, review
from nsfw_moderation.media import serve_visible
from nsfw_moderation.models import ModeratedImage, ModerationEvent, Verdict
from tests.conftest import moderation
from tests.images import blue, image_bytes, red
from tests.testapp.models import Document, Photo

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("colour_backend")]

QUARANTINE = "nsfw_moderation.hooks.quarantine"
DELETE = "nsfw_moderation.hooks.delete_file"


@pytest.fixture
def quarantine_dir(settings: Any, tmp_path: Path) -> Path:
    """A private filesystem storage outside MEDIA_ROOT, under the alias "quarantine"."""
    location = tmp_path / "quarantine"
    settings.STORAGES = {
        **settings.STORAGES,
        "quarantine": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(location)},
        },
    }
    return location


def row_of(obj: Any) -> ModeratedImage:
    (field_name,) = registry.fields_for(type(obj))
    return ModeratedImage.objects.of_object(obj, field_name).get()


def removal_notes(row: ModeratedImage) -> list[str]:
    events = ModerationEvent.objects.filter(image=row, kind=ModerationEvent.Kind.FILE_REMOVED)
    return list(events.values_list("note", flat=True))


def rejected(obj: Any, hook: str, **changes: Any) -> ModeratedImage:
    with moderation(ON_REJECT=hook, QUARANTINE_STORAGE="quarantine", **changes):
        review.reject(row_of(obj))
    return row_of(obj)


# -- Filesystem storage ---------------------------------------------------------------


def test_quarantine_moves_the_file_to_the_private_storage(quarantine_dir: Path) -> None:
    data = image_bytes((0, 0, 255))
    photo = Photo.objects.create(image=ContentFile(data, name="blue.png"))
    name, path = photo.image.name, Path(photo.image.path)
    row = rejected(photo, QUARANTINE)
    photo.refresh_from_db()
    assert not photo.image
    assert not path.exists()
    assert (quarantine_dir / name).read_bytes() == data
    assert row.verdict == Verdict.REJECTED
    assert row.file_name == name  # the record still says which file it was
    assert removal_notes(row) == [f"The file was moved to the quarantine storage as {name!r}."]


def test_delete_file_removes_the_file(quarantine_dir: Path) -> None:
    photo = Photo.objects.create(image=blue())
    path = Path(photo.image.path)
    row = rejected(photo, DELETE)
    photo.refresh_from_db()
    assert not photo.image
    assert not path.exists()
    assert not any(quarantine_dir.rglob("*"))
    assert removal_notes(row) == ["The file was deleted from storage."]


# -- Storages without path(), like a bucket ----------------------------------------------


class NoPathStorage(Storage):
    """Files in memory behind the base Storage API only: ``path()`` raises, as S3's does."""

    def __init__(self, inner: InMemoryStorage | None = None) -> None:
        self.inner = inner or InMemoryStorage()

    def _open(self, name: str, mode: str = "rb") -> Any:
        return self.inner.open(name, mode)

    def _save(self, name: str, content: Any) -> str:
        return self.inner.save(name, content)

    def delete(self, name: str) -> None:
        self.inner.delete(name)

    def exists(self, name: str) -> bool:
        return self.inner.exists(name)

    def size(self, name: str) -> int:
        return self.inner.size(name)

    def url(self, name: str | None) -> str:
        return f"/bucket/{name}"


@pytest.fixture
def no_path_storages(settings: Any, monkeypatch: pytest.MonkeyPatch) -> NoPathStorage:
    """Document files and the quarantine, both on storages without path(); the quarantine."""
    monkeypatch.setattr(Document._meta.get_field("file"), "storage", NoPathStorage())
    settings.STORAGES = {
        **settings.STORAGES,
        "quarantine": {"BACKEND": "tests.test_reject_hooks.NoPathStorage"},
    }
    quarantine: NoPathStorage = storages["quarantine"]  # type: ignore[assignment]
    return quarantine


def test_quarantine_between_storages_without_paths(no_path_storages: NoPathStorage) -> None:
    data = image_bytes((0, 0, 255))
    document = Document.objects.create(file=ContentFile(data, name="blue.png"))
    name, source = document.file.name, document.file.storage
    with pytest.raises(NotImplementedError):
        source.path(name)
    rejected(document, QUARANTINE)
    document.refresh_from_db()
    assert not document.file
    assert not source.exists(name)
    with no_path_storages.open(name) as kept:
        assert kept.read() == data


def test_delete_file_on_a_storage_without_paths(no_path_storages: NoPathStorage) -> None:
    document = Document.objects.create(file=blue())
    name, source = document.file.name, document.file.storage
    assert isinstance(source, NoPathStorage)
    rejected(document, DELETE)
    document.refresh_from_db()
    assert not document.file
    assert not source.exists(name)


# -- What is and is not removed ---------------------------------------------------------


def test_blocked_by_the_worker_is_removed_too(quarantine_dir: Path) -> None:
    with moderation(ON_REJECT=QUARANTINE, QUARANTINE_STORAGE="quarantine", BLOCK_THRESHOLD=0.9):
        photo = Photo.objects.create(image=red())
    assert row_of(photo).verdict == Verdict.BLOCKED
    photo.refresh_from_db()
    assert not photo.image
    assert len(list(quarantine_dir.rglob("*.png"))) == 1


def test_the_file_of_a_deleted_object_is_removed(quarantine_dir: Path) -> None:
    photo = Photo.objects.create(image=blue())
    row, path = row_of(photo), Path(photo.image.path)
    review.reject(row)
    Photo.objects.filter(pk=photo.pk).delete()  # the row stays: it records a decision
    with moderation(ON_REJECT=DELETE):
        from nsfw_moderation.hooks import run_reject_hook

        run_reject_hook(ModeratedImage.objects.get(pk=row.pk))
    assert not path.exists()


def test_a_newer_upload_in_the_field_is_left_alone(quarantine_dir: Path) -> None:
    photo = Photo.objects.create(image=blue("old.png"))
    row, old = row_of(photo), Path(photo.image.path)
    Photo.objects.filter(pk=photo.pk).update(image="photos/newer.png")
    with moderation(ON_REJECT=DELETE):
        from nsfw_moderation.hooks import delete_file

        delete_file(row, Photo.objects.get(pk=photo.pk))
    assert not old.exists()
    assert Photo.objects.get(pk=photo.pk).image.name == "photos/newer.png"


def test_a_file_other_objects_hold_is_left_in_place(
    quarantine_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    photo = Photo.objects.create(image=blue())
    twin = Photo.objects.create(title="twin")
    Photo.objects.filter(pk=twin.pk).update(image=photo.image.name)
    path = Path(photo.image.path)
    rejected(photo, DELETE)
    assert path.exists()
    assert "other testapp.Photo objects hold it too" in caplog.text


@pytest.mark.django_db(databases="__all__", transaction=True)  # the checks ask every database
def test_quarantine_without_a_storage_is_a_check_error_and_moves_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with moderation(ON_REJECT=QUARANTINE):
        ids = [m.id for m in run_checks() if m.id and m.id.startswith("nsfw_moderation.")]
        photo = Photo.objects.create(image=blue())
        path = Path(photo.image.path)
        review.reject(row_of(photo))
    assert ids == ["nsfw_moderation.E023"]
    assert path.exists()
    assert "QUARANTINE_STORAGE" in caplog.text
    with moderation(QUARANTINE_STORAGE="nowhere"):
        ids = [m.id for m in run_checks() if m.id and m.id.startswith("nsfw_moderation.")]
    assert ids == ["nsfw_moderation.E023"]


def test_a_removed_file_is_not_served(quarantine_dir: Path) -> None:
    photo = Photo.objects.create(image=blue())
    name = photo.image.name
    request = RequestFactory().get("/media/" + name)
    assert serve_visible(request, name).status_code == 200
    rejected(photo, QUARANTINE)
    with pytest.raises(Http404):
        serve_visible(request, name)
