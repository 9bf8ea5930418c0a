"""The worker path: claim, read, decode, classify, store, signal."""

from __future__ import annotations

import hashlib
import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.utils import timezone

from nsfw_moderation import enqueue, signals
from nsfw_moderation.models import ModeratedImage, ModerationEvent, Status, Verdict
from nsfw_moderation.worker import outcomes, pipeline, tasks
from tests import backends
from tests.conftest import moderation
from tests.images import blue, image_bytes, red
from tests.testapp.models import Document, Photo, Profile, Slide

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("colour_backend")]


def row_of(obj: Any, field: str | None = None) -> ModeratedImage:
    rows = ModeratedImage.objects.filter(object_id=str(obj.pk))
    return rows.get(field_name=field) if field else rows.get()


@pytest.fixture
def received() -> Any:
    seen: dict[str, list[ModeratedImage]] = {"completed": [], "flagged": [], "blocked": []}
    handlers = {
        "completed": lambda sender, instance, **kw: seen["completed"].append(instance),
        "flagged": lambda sender, instance, **kw: seen["flagged"].append(instance),
        "blocked": lambda sender, instance, **kw: seen["blocked"].append(instance),
    }
    signals.moderation_completed.connect(handlers["completed"])
    signals.image_flagged.connect(handlers["flagged"])
    signals.image_blocked.connect(handlers["blocked"])
    yield seen
    signals.moderation_completed.disconnect(handlers["completed"])
    signals.image_flagged.disconnect(handlers["flagged"])
    signals.image_blocked.disconnect(handlers["blocked"])


def test_done_row_has_everything(received):
    photo = Photo.objects.create(image=red())
    row = row_of(photo)
    data = photo.image.open("rb").read()
    assert row.status == Status.DONE
    assert row.scores == pytest.approx({"normal": 0.0, "nsfw": 1.0})
    assert row.score == pytest.approx(1.0)
    assert row.verdict == Verdict.FLAGGED
    assert row.model_name == "tests/colour"
    assert row.sha256 == hashlib.sha256(data).hexdigest()
    assert row.classified_at is not None
    assert (row.attempts, row.error, row.claim_token) == (1, "", None)
    assert [r.pk for r in received["completed"]] == [row.pk]
    assert [r.pk for r in received["flagged"]] == [row.pk]
    assert received["blocked"] == []


def test_safe_image_is_allowed(received):
    photo = Photo.objects.create(image=blue())
    row = row_of(photo)
    assert (row.verdict, row.score) == (Verdict.ALLOWED, pytest.approx(0.0))
    assert received["flagged"] == []
    assert len(received["completed"]) == 1


@pytest.mark.parametrize(
    ("colour", "flag", "block", "verdict"),
    [
        ((128, 64, 64), 0.5, None, Verdict.FLAGGED),  # score exactly 0.5: "at or above"
        ((127, 65, 64), 0.5, None, Verdict.ALLOWED),  # just below
        ((255, 0, 0), 0.5, 1.0, Verdict.BLOCKED),
        ((192, 32, 32), 0.5, 0.9, Verdict.FLAGGED),
        ((192, 32, 32), 0.9, 0.7, Verdict.BLOCKED),  # block wins when both apply
    ],
)
def test_thresholds(colour, flag, block, verdict, received):
    with moderation(
        BACKEND="tests.backends.ColourBackend", FLAG_THRESHOLD=flag, BLOCK_THRESHOLD=block
    ):
        photo = Photo.objects.create(image=ContentFile(image_bytes(colour), name="c.png"))
    assert row_of(photo).verdict == verdict
    assert len(received["blocked"]) == (verdict == Verdict.BLOCKED)


def test_unsafe_labels_are_summed():
    with moderation(BACKEND="tests.backends.ColourBackend", UNSAFE_LABELS=["normal", "nsfw"]):
        photo = Photo.objects.create(image=blue())
    assert row_of(photo).score == pytest.approx(1.0)


def test_any_storage_uuid_and_string_keys():
    document = Document.objects.create(file=red("scan.png"))
    slide = Slide.objects.create(slug="a/b c", picture=blue())
    assert row_of(document).status == Status.DONE
    assert row_of(document).verdict == Verdict.FLAGGED
    assert row_of(slide).verdict == Verdict.ALLOWED


def test_two_fields_classified_independently():
    profile = Profile.objects.create(avatar=red(), banner=blue())
    assert row_of(profile, "avatar").verdict == Verdict.FLAGGED
    assert row_of(profile, "banner").verdict == Verdict.ALLOWED


def test_not_an_image_fails_readably_and_is_not_retried(received):
    photo = Photo.objects.create(image=ContentFile(b"<html>hello</html>", name="x.jpg"))
    row = row_of(photo)
    assert row.status == Status.FAILED
    assert "not an image" in row.error
    assert row.attempts == 1
    assert row.verdict == Verdict.FLAGGED  # ON_ERROR="flag" sends it to a human
    assert backends.calls == []
    assert [e.kind for e in row.events.all()] == [ModerationEvent.Kind.FAILED]
    assert len(received["completed"]) == 1


def test_on_error_allow():
    with moderation(BACKEND="tests.backends.ColourBackend", ON_ERROR="allow"):
        photo = Photo.objects.create(image=ContentFile(b"", name="empty.png"))
    row = row_of(photo)
    assert (row.status, row.verdict) == (Status.FAILED, Verdict.ALLOWED)
    assert "empty" in row.error


def test_model_that_cannot_load_is_retried_and_never_given_a_verdict(caplog):
    with moderation(BACKEND="tests.backends.BrokenBackend", MAX_ATTEMPTS=3):
        photo = Photo.objects.create(image=red())
    row = row_of(photo)
    # Inline, it is tried MAX_ATTEMPTS times, then waits (stuck) for a fixed model;
    # the file is not to blame, so none of it counts as an attempt on it.
    assert (row.status, row.verdict) == (Status.QUEUED, Verdict.PENDING)
    assert (row.attempts, row.waits) == (0, 3)
    assert row.retry_at is not None
    # The row says what happened; what the loader said (paths and all) is in the log.
    assert row.error == "The classifier could not be loaded; see the worker's log."
    assert "No model here" in caplog.text


def test_transient_failure_is_backed_off_on_a_real_queue(monkeypatch):
    scheduled: list[tuple[int, float]] = []
    monkeypatch.setattr(enqueue, "enqueue", lambda pk, delay=0: scheduled.append((pk, delay)))
    photo = Photo.objects.create(image=red())
    scheduled.clear()
    with moderation(BACKEND="tests.backends.BrokenBackend", QUEUE="django_q", RETRY_DELAY=10):
        tasks.classify(row_of(photo).pk)
        row = row_of(photo)
        assert (row.status, row.attempts, row.waits) == (Status.QUEUED, 0, 1)
        assert row.retry_at is not None
        assert row.retry_at > timezone.now()
        assert tasks.classify(row.pk) == {"claimed": 0}  # not before retry_at
        ModeratedImage.objects.update(retry_at=timezone.now())
        tasks.classify(row.pk)
    assert [delay for _, delay in scheduled] == [10, 20]
    assert row_of(photo).waits == 2


def test_one_task_classifies_a_batch(monkeypatch):
    monkeypatch.setattr(enqueue, "enqueue", lambda pk, delay=0: None)
    photos = [Photo.objects.create(image=red() if i % 2 else blue()) for i in range(5)]
    first = row_of(photos[3]).pk
    assert tasks.classify(first)["done"] == 5
    assert backends.calls == [5]
    assert ModeratedImage.objects.filter(status=Status.DONE).count() == 5
    # The other rows' own tasks then find nothing to do.
    assert tasks.classify(row_of(photos[0]).pk) == {"claimed": 0}


def test_batch_size_limits_a_claim(monkeypatch):
    monkeypatch.setattr(enqueue, "enqueue", lambda pk, delay=0: None)
    for _ in range(5):
        Photo.objects.create(image=red())
    with moderation(BACKEND="tests.backends.ColourBackend", BATCH_SIZE=2):
        first = ModeratedImage.objects.order_by("-pk")[0].pk
        rows = outcomes.claim_batch(uuid.uuid4(), first=first)
    assert len(rows) == 2
    assert first in [r.pk for r in rows]


@pytest.mark.parametrize(
    ("workers", "queued", "claims"),
    [
        (1, 20, [8, 8, 4]),
        # Two workers share a backlog smaller than a batch each, instead of one
        # taking a full batch while the other waits for the rest.
        (2, 20, [8, 6, 3, 2, 1]),
        (2, 40, [8, 8, 8, 8, 4, 2, 1, 1]),
        (4, 6, [2, 1, 1, 1, 1]),
    ],
)
def test_workers_share_a_small_backlog(monkeypatch, settings, workers, queued, claims):
    monkeypatch.setattr(enqueue, "enqueue", lambda pk, delay=0: None)
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "workers": workers}
    for _ in range(queued):
        Photo.objects.create(image=red())
    with moderation(QUEUE="django_q", BATCH_SIZE=8):
        taken = [len(outcomes.claim_batch(uuid.uuid4())) for _ in claims]
    assert taken == claims


def test_sync_queue_claims_full_batches(monkeypatch, settings):
    monkeypatch.setattr(enqueue, "enqueue", lambda pk, delay=0: None)
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "workers": 4}
    for _ in range(10):
        Photo.objects.create(image=red())
    with moderation(QUEUE="sync", BATCH_SIZE=8):
        assert len(outcomes.claim_batch(uuid.uuid4())) == 8


def test_running_a_task_twice_changes_nothing(received):
    photo = Photo.objects.create(image=red())
    row = row_of(photo)
    assert tasks.classify(row.pk) == {"claimed": 0}
    again = row_of(photo)
    assert again.updated_at == row.updated_at
    assert row.events.count() == 1
    assert len(received["completed"]) == 1


def test_stale_result_never_overwrites_a_newer_file(monkeypatch):
    monkeypatch.setattr(enqueue, "enqueue", lambda pk, delay=0: None)
    photo = Photo.objects.create(image=red())
    token = uuid.uuid4()
    (claimed,) = outcomes.claim_batch(token)
    # The file changes while the worker is busy with the old one.
    photo.image = blue()
    photo.save()
    outcome = pipeline.process([claimed], token)
    assert outcome["stale"] == 1
    row = row_of(photo)
    assert (row.status, row.verdict, row.file_name) == (
        Status.QUEUED,
        Verdict.PENDING,
        photo.image.name,
    )
    assert row.events.count() == 0
    tasks.classify(row.pk)
    assert row_of(photo).verdict == Verdict.ALLOWED


def test_deleted_file_closes_the_row(monkeypatch):
    monkeypatch.setattr(enqueue, "enqueue", lambda pk, delay=0: None)
    photo = Photo.objects.create(image=red())
    photo.image.storage.delete(photo.image.name)
    tasks.classify(row_of(photo).pk)
    row = row_of(photo)
    assert row.status == Status.FAILED
    assert "missing from storage" in row.error
    assert row.attempts == 1


def test_object_deleted_behind_our_back_closes_the_row(monkeypatch):
    monkeypatch.setattr(enqueue, "enqueue", lambda pk, delay=0: None)
    photo = Photo.objects.create(image=red())
    Photo.objects.filter(pk=photo.pk)._raw_delete(using="default")  # no signals
    tasks.classify(row_of(photo).pk)
    row = ModeratedImage.objects.get(object_id=str(photo.pk))
    assert (row.status, row.error) == (Status.FAILED, "The object no longer exists.")


def test_requeue_stale_recovers_rows_of_a_dead_worker(monkeypatch):
    enqueued: list[int] = []
    monkeypatch.setattr(enqueue, "enqueue", lambda pk, delay=0: enqueued.append(pk))
    photo = Photo.objects.create(image=red())
    other = Photo.objects.create(image=blue())
    outcomes.claim_batch(uuid.uuid4())  # a worker claims both rows, then dies
    long_ago = timezone.now() - timedelta(hours=1)
    ModeratedImage.objects.update(claimed_at=long_ago)
    ModeratedImage.objects.filter(object_id=str(other.pk)).update(attempts=3)
    enqueued.clear()
    with moderation(BACKEND="tests.backends.ColourBackend", MAX_ATTEMPTS=3):
        result = tasks.requeue_stale()
    assert result == {"failed": 1, "requeued": 1, "enqueued": 1}
    assert row_of(photo).status == Status.QUEUED
    assert enqueued == [row_of(photo).pk]
    assert row_of(other).status == Status.FAILED
    tasks.classify(row_of(photo).pk)
    assert row_of(photo).status == Status.DONE


def test_requeue_stale_leaves_fresh_rows_alone(monkeypatch):
    enqueued: list[int] = []
    monkeypatch.setattr(enqueue, "enqueue", lambda pk, delay=0: enqueued.append(pk))
    Photo.objects.create(image=red())
    enqueued.clear()
    assert tasks.requeue_stale() == {"failed": 0, "requeued": 0, "enqueued": 0}
    ModeratedImage.objects.update(updated_at=timezone.now() - timedelta(hours=1))
    assert tasks.requeue_stale()["enqueued"] == 1
    # Enqueued once, then left alone for another STALE_AFTER.
    assert tasks.requeue_stale()["enqueued"] == 0
    assert enqueued == [ModeratedImage.objects.get().pk]


def test_requeue_stale_enqueues_one_task_per_batch(monkeypatch):
    enqueued: list[int] = []
    monkeypatch.setattr(enqueue, "enqueue", lambda pk, delay=0: enqueued.append(pk))
    for i in range(5):
        Photo.objects.create(image=red(f"{i}.png"))
    enqueued.clear()
    ModeratedImage.objects.update(updated_at=timezone.now() - timedelta(hours=1))
    with moderation(BACKEND="tests.backends.ColourBackend", BATCH_SIZE=2):
        assert tasks.requeue_stale()["enqueued"] == 5
    assert len(enqueued) == 3


def test_requeue_resets_rows(monkeypatch):
    photo = Photo.objects.create(image=red())
    assert row_of(photo).status == Status.DONE
    enqueued: list[int] = []
    monkeypatch.setattr(enqueue, "enqueue", lambda pk, delay=0: enqueued.append(pk))
    assert enqueue.requeue(ModeratedImage.objects.all(), note="new model") == 1
    row = row_of(photo)
    assert (row.status, row.verdict, row.score) == (Status.QUEUED, Verdict.PENDING, None)
    assert enqueued == [row.pk]
    event = row.events.filter(kind=ModerationEvent.Kind.REQUEUED).get()
    assert (event.verdict_before, event.verdict_after, event.note) == (
        Verdict.FLAGGED,
        Verdict.PENDING,
        "new model",
    )


def test_a_bad_file_does_not_spoil_its_batch(monkeypatch):
    monkeypatch.setattr(enqueue, "enqueue", lambda pk, delay=0: None)
    good = [Photo.objects.create(image=red(f"r{i}.png")) for i in range(3)]
    bad = Photo.objects.create(image=ContentFile(b"GIF89a broken", name="bad.gif"))
    assert tasks.classify(row_of(bad).pk) == {
        "claimed": 4,
        "done": 3,
        "failed": 1,
        "retrying": 0,
        "stale": 0,
    }
    assert row_of(bad).status == Status.FAILED
    assert all(row_of(photo).status == Status.DONE for photo in good)


def test_events_are_append_only():
    photo = Photo.objects.create(image=red())
    event = row_of(photo).events.get()
    event.note = "rewritten"
    with pytest.raises(ValueError, match="append-only"):
        event.save()
    assert row_of(photo).events.get().note == ""
