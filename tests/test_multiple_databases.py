"""``nsfw_moderation`` routed to a database of its own: every read, write, lock and
``on_commit`` of the app goes there, and tasks wait for the host's transaction."""

from __future__ import annotations

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connections, transaction
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from nsfw_moderation import review
from nsfw_moderation.models import ModeratedImage, ModerationEvent, Statement, Status, Verdict
from nsfw_moderation.worker import tasks
from tests.images import blue, red
from tests.testapp.models import Photo

pytestmark = [
    pytest.mark.django_db(databases=["default", "moderation"], transaction=True),
    pytest.mark.usefixtures("colour_backend"),
]


@pytest.fixture(autouse=True)
def _routed():
    # Django does not follow foreign keys across databases: the moderation
    # database needs the content types, with the same ids (see the docs).
    ContentType.objects.get_for_model(Photo)
    ContentType.objects.using("moderation").all().delete()
    ContentType.objects.using("moderation").bulk_create(ContentType.objects.using("default").all())
    with override_settings(DATABASE_ROUTERS=["tests.routers.ModerationRouter"]):
        yield


def moderation_queries_on_default(context: CaptureQueriesContext) -> list[str]:
    return [q["sql"] for q in context.captured_queries if "nsfw_moderation_" in q["sql"]]


def test_the_whole_life_of_a_row_stays_in_the_moderation_database():
    with CaptureQueriesContext(connections["default"]) as default:
        photo = Photo.objects.create(image=red())
        (row,) = ModeratedImage.objects.all()
        assert (row.status, row.verdict) == (Status.DONE, Verdict.FLAGGED)
        review.reject(row)
        photo.image = blue()
        photo.save()
        tasks.requeue_stale(older_than=0)
        photo.delete()

    assert moderation_queries_on_default(default) == []
    events = ModerationEvent.objects.using("moderation").order_by("pk")
    assert list(events.values_list("kind", flat=True)) == [
        "classified",
        "reviewed",
        "notified",
        "replaced",
        "classified",
        "withdrawn",
    ]
    assert not ModerationEvent.objects.using("default").exists()
    assert Statement.objects.using("moderation").count() == 1
    assert not Statement.objects.using("default").exists()


def test_the_task_waits_for_the_hosts_transaction():
    with transaction.atomic(using="default"):
        photo = Photo.objects.create(image=red())
        # The row is written, but no worker may look for an uncommitted object.
        assert ModeratedImage.objects.get().status == Status.QUEUED
    assert ModeratedImage.objects.of_object(photo, "image").get().status == Status.DONE


def failed_view() -> None:
    with transaction.atomic(using="default"):
        Photo.objects.create(image=red())
        raise RuntimeError("the view failed")


def test_a_rolled_back_upload_is_never_classified():
    with pytest.raises(RuntimeError):
        failed_view()
    assert not Photo.objects.exists()
    assert ModeratedImage.objects.exclude(status=Status.QUEUED).count() == 0
