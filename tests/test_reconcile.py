"""Files that reached a moderated field around the save hooks are found and queued."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db import OperationalError

from nsfw_moderation import enqueue, reconcile, registry
from nsfw_moderation.models import ModeratedImage, ModerationEvent, ScanPosition, Status, Verdict
from nsfw_moderation.worker import tasks
from tests.conftest import moderation
from tests.images import blue, red
from tests.testapp.models import Photo

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("colour_backend")]


def bulk_photos(count: int) -> list[Photo]:
    """Photos whose files were stored but whose saves sent no signal (bulk_create)."""
    photos = []
    for i in range(count):
        photo = Photo(title=f"bulk {i}")
        photo.image.save(f"bulk{i}.png", red(), save=False)
        photos.append(photo)
    return Photo.objects.bulk_create(photos)


def discovered() -> int:
    return ModerationEvent.objects.filter(kind=ModerationEvent.Kind.DISCOVERED).count()


def test_a_full_pass_finds_every_file_without_a_row():
    bulk_photos(3)
    photo = Photo.objects.create(image=blue())
    Photo.objects.filter(pk=photo.pk).update(image="photos/elsewhere.png")  # no signal either
    assert ModeratedImage.objects.count() == 1

    assert reconcile.reconcile(budget=0) == {"checked": 4, "found": 4}

    assert discovered() == 4
    assert ModeratedImage.objects.filter(status=Status.DONE).count() == 3
    moved = ModeratedImage.objects.of_object(photo, "image").get()
    assert moved.file_name == "photos/elsewhere.png"  # missing from storage: failed, but seen
    assert reconcile.reconcile(budget=0) == {"checked": 4, "found": 0}


def test_each_run_checks_a_bounded_slice_and_resumes(django_assert_max_num_queries):
    bulk_photos(5)
    # The budget is shared between the moderated fields: two objects each.
    budget = 2 * len(list(registry.registered()))
    checked = [reconcile.reconcile(budget)["checked"] for _ in range(3)]
    assert checked == [2, 2, 1]
    assert discovered() == 5
    position = ScanPosition.objects.get(field_name="image", content_type__model="photo")
    assert position.last_object_id == ""  # wrapped: the next run starts over
    assert reconcile.reconcile(budget) == {"checked": 2, "found": 0}
    with django_assert_max_num_queries(4 * len(list(registry.registered()))):
        reconcile.reconcile(budget)  # a few queries per field, not one per object


def test_an_upload_whose_row_could_not_be_written_is_found(monkeypatch):
    def locked(*args: object, **kwargs: object) -> None:
        raise OperationalError("database is locked")

    monkeypatch.setattr(enqueue, "submit", locked)
    photo = Photo.objects.create(image=red())  # the upload itself succeeds
    monkeypatch.undo()
    assert not ModeratedImage.objects.exists()

    with moderation(RECONCILE_BATCH=100):
        tasks.maintain()

    row = ModeratedImage.objects.of_object(photo, "image").get()
    assert (row.status, row.verdict) == (Status.DONE, Verdict.FLAGGED)


def test_a_briefly_locked_database_is_retried(monkeypatch):
    real = enqueue.submit
    failures = iter([True, True])

    def sometimes_locked(*args: object, **kwargs: object) -> object:
        if next(failures, False):
            raise OperationalError("database is locked")
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(enqueue, "submit", sometimes_locked)
    photo = Photo.objects.create(image=red())
    assert ModeratedImage.objects.of_object(photo, "image").get().verdict == Verdict.FLAGGED


def test_the_command_reconciles_everything_with_full(capsys):
    bulk_photos(3)
    with moderation(RECONCILE_BATCH=1):
        call_command("nsfw_requeue", "--full")
    assert "3 file(s) without a current row queued" in capsys.readouterr().out
    assert discovered() == 3


def test_the_dashboard_counts_what_reconciliation_found(admin_client):
    bulk_photos(2)
    reconcile.reconcile(budget=0)
    response = admin_client.get("/admin/nsfw_moderation/moderatedimage/dashboard/")
    assert response.context["discovered_24h"] == 2
