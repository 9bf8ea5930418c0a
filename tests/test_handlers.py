"""Which saves queue a row, which don't, and what clearing or deleting does."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.management import call_command
from django.db import transaction
from django.test import override_settings

from nsfw_moderation import enqueue
from nsfw_moderation.models import ModeratedImage, Status, Verdict
from nsfw_moderation.queues import django_q as django_q_queue
from tests.conftest import moderation
from tests.images import blue, red
from tests.testapp.models import Banner, Document, Photo, Profile, ProxyPhoto, Slide

pytestmark = pytest.mark.django_db


@pytest.fixture
def enqueued(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record enqueued pks instead of classifying them."""
    calls: list[int] = []
    monkeypatch.setattr(enqueue, "enqueue", lambda pk, delay=0: calls.append(pk))
    return calls


def rows_for(obj: Any) -> list[ModeratedImage]:
    return list(ModeratedImage.objects.filter(object_id=str(obj.pk)).order_by("field_name"))


def test_new_file_creates_one_queued_row(enqueued, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        photo = Photo.objects.create(title="a", image=red())
    (row,) = rows_for(photo)
    assert (row.status, row.verdict, row.field_name) == (Status.QUEUED, Verdict.PENDING, "image")
    assert row.file_name == photo.image.name
    assert row.content_object == photo
    assert enqueued == [row.pk]


def test_enqueue_waits_for_commit(enqueued, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        Photo.objects.create(image=red())
    assert enqueued == []
    assert len(callbacks) == 1
    callbacks[0]()
    assert len(enqueued) == 1


@pytest.mark.django_db(transaction=True)
def test_rolled_back_save_enqueues_nothing(enqueued):
    def save_then_fail() -> None:
        with transaction.atomic():
            Photo.objects.create(image=red())
            raise RuntimeError

    with pytest.raises(RuntimeError):
        save_then_fail()
    assert enqueued == []
    assert not ModeratedImage.objects.exists()


def test_empty_field_creates_nothing(enqueued, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        Photo.objects.create(title="no image")
    assert not ModeratedImage.objects.exists()
    assert enqueued == []


def test_saving_other_fields_does_nothing(enqueued, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        photo = Photo.objects.create(image=red())
    with django_capture_on_commit_callbacks(execute=True):
        photo.title = "renamed"
        photo.save()
        reloaded = Photo.objects.get(pk=photo.pk)
        reloaded.title = "again"
        reloaded.save()
    assert len(enqueued) == 1


def test_changing_the_file_requeues_the_same_row(enqueued, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        photo = Photo.objects.create(image=red())
    ModeratedImage.objects.update(status=Status.DONE, verdict=Verdict.FLAGGED, score=0.9)
    with django_capture_on_commit_callbacks(execute=True):
        photo = Photo.objects.get(pk=photo.pk)
        photo.image = blue()
        photo.save()
    (row,) = rows_for(photo)
    assert (row.status, row.verdict, row.score) == (Status.QUEUED, Verdict.PENDING, None)
    assert row.file_name == photo.image.name
    assert enqueued == [row.pk, row.pk]


def test_assigning_a_name_counts_as_a_change(enqueued, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        photo = Photo.objects.create(image=red())
        photo.image = "photos/elsewhere.png"
        photo.save()
    (row,) = rows_for(photo)
    assert row.file_name == "photos/elsewhere.png"
    assert len(enqueued) == 2


def test_update_fields_without_the_field_does_nothing(enqueued, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        photo = Photo.objects.create(image=red())
        photo.image = "photos/other.png"
        photo.title = "t"
        photo.save(update_fields=["title"])
    assert rows_for(photo)[0].file_name != "photos/other.png"
    assert len(enqueued) == 1


def test_update_fields_with_the_field_queues(enqueued, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        photo = Photo.objects.create(image=red())
        photo.image = "photos/other.png"
        photo.save(update_fields=["image"])
    assert rows_for(photo)[0].file_name == "photos/other.png"
    assert len(enqueued) == 2


def test_deferred_field_is_not_touched(enqueued, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        photo = Photo.objects.create(image=red())
    with django_capture_on_commit_callbacks(execute=True):
        deferred = Photo.objects.defer("image").get(pk=photo.pk)
        deferred.title = "x"
        deferred.save()
    assert len(enqueued) == 1


def test_deferred_field_loaded_later_and_unchanged_does_nothing(
    enqueued, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        photo = Photo.objects.create(image=red())
    with django_capture_on_commit_callbacks(execute=True):
        deferred = Photo.objects.defer("image").get(pk=photo.pk)
        assert deferred.image.name  # loads the deferred field
        deferred.save()
    assert len(enqueued) == 1


def test_fixture_loading_does_nothing(enqueued, tmp_path):
    fixture = tmp_path / "photos.json"
    fixture.write_text(
        '[{"model": "testapp.photo", "pk": 7, "fields": {"title": "f", "image": "photos/f.png"}}]'
    )
    call_command("loaddata", str(fixture), verbosity=0)
    assert Photo.objects.filter(pk=7).exists()
    assert not ModeratedImage.objects.exists()


def test_clearing_the_field_leaves_nothing_queued(enqueued, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        photo = Photo.objects.create(image=red())
        photo.image = None
        photo.save()
    assert rows_for(photo) == []


def test_deleting_the_object_leaves_nothing_queued(enqueued, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        photo = Photo.objects.create(image=red())
        other = Photo.objects.create(image=blue())
    pk = photo.pk
    photo.delete()
    assert not ModeratedImage.objects.filter(object_id=str(pk)).exists()
    assert len(rows_for(other)) == 1


def test_uuid_primary_key_and_other_storage(enqueued, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        document = Document.objects.create(file=red("scan.png"))
    (row,) = rows_for(document)
    assert row.object_id == str(document.pk)
    assert row.content_object == document


def test_string_primary_key(enqueued, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        slide = Slide.objects.create(slug="intro slide/1", picture=red())
    (row,) = rows_for(slide)
    assert row.object_id == "intro slide/1"
    assert row.content_object == slide


def test_two_fields_get_a_row_each(enqueued, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        profile = Profile.objects.create(avatar=red(), banner=blue(), attachment=red("a.png"))
    assert [r.field_name for r in rows_for(profile)] == ["avatar", "banner"]
    with django_capture_on_commit_callbacks(execute=True):
        profile.banner = red("new-banner.png")
        profile.save()
    assert len(enqueued) == 3
    assert enqueued[-1] == rows_for(profile)[1].pk


def test_proxy_model_saves_are_moderated(enqueued, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        proxy = ProxyPhoto.objects.create(image=red())
    (row,) = rows_for(proxy)
    assert row.content_type.model == "photo"


def test_field_from_abstract_parent_registered_in_code(
    enqueued, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        banner = Banner.objects.create(image=red())
    assert len(rows_for(banner)) == 1


def test_unregistered_model_is_ignored(enqueued, django_capture_on_commit_callbacks):
    with moderation(MODELS={}), django_capture_on_commit_callbacks(execute=True):
        Photo.objects.create(image=red())
    assert not ModeratedImage.objects.filter(content_type__model="photo").exists()


def test_save_never_fails_when_moderation_fails(monkeypatch, caplog):
    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("database on fire")

    monkeypatch.setattr(enqueue, "submit", broken)
    photo = Photo.objects.create(image=red())
    assert Photo.objects.filter(pk=photo.pk).exists()
    assert "Could not queue testapp.Photo.image" in caplog.text


def test_enqueue_failure_is_logged_not_raised(monkeypatch, caplog):
    def broken(task: str, pk: int) -> None:
        raise ConnectionError("broker down")

    monkeypatch.setattr(django_q_queue, "send", broken)
    with override_settings(NSFW_MODERATION={"QUEUE": "django_q"}):
        enqueue.enqueue(1)
    assert "Could not enqueue moderated image 1" in caplog.text


def test_a_database_error_in_moderation_leaves_the_callers_transaction_usable(monkeypatch):
    def broken_sql(*args: Any, **kwargs: Any) -> None:
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("SELECT * FROM no_such_table")

    monkeypatch.setattr(enqueue, "submit", broken_sql)
    with transaction.atomic():
        photo = Photo.objects.create(image=red())
        # On PostgreSQL this would fail with "current transaction is aborted"
        # had the error not been confined to a savepoint.
        photo.title = "still fine"
        photo.save()
    assert Photo.objects.get(pk=photo.pk).title == "still fine"


def test_creating_an_object_without_a_file_runs_no_moderation_query(
    django_assert_num_queries,
):
    with django_assert_num_queries(1):  # the INSERT alone
        Photo.objects.create(title="no image yet")
