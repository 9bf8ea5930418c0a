"""No upload escapes moderation, and no decision's record vanishes.

Each test here tries one way around the guarantees: new bytes under an old
name, odd spellings of a primary key, subclasses, deleting the evidence,
settings that would quietly let everything through.
"""

from __future__ import annotations

import io
import uuid
from datetime import timedelta
from typing import Any

import pytest
from django import forms
from django.contrib.auth.models import User
from django.core.files.base import ContentFile
from django.utils import timezone
from PIL import Image

from nsfw_moderation import enqueue, review
from nsfw_moderation.models import BlockedImage, ModeratedImage, ModerationEvent, Status, Verdict
from nsfw_moderation.query import verdict_of, visible
from nsfw_moderation.worker import outcomes, tasks
from tests.conftest import moderation
from tests.images import blue, image_bytes, red
from tests.testapp.models import Document, FeaturedPhoto, Member, Photo, SignedDocument

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("colour_backend")]


def striped() -> ContentFile:
    """Safe to tests.backends.ColourBackend, and unlike a flat colour to a perceptual hash."""
    image = Image.new("RGB", (64, 64), (0, 0, 255))
    for x in range(0, 64, 16):
        image.paste((255, 255, 255), (x, 0, x + 8, 64))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return ContentFile(buffer.getvalue(), name="striped.png")


def row_of(obj: Any, field: str) -> ModeratedImage:
    return ModeratedImage.objects.of_object(obj, field).get()


# --- New bytes under an old name ---------------------------------------------------


def test_fieldfile_save_of_new_bytes_under_the_same_name_is_moderated_again():
    member = Member.objects.create()
    member.avatar.save("me.png", blue())
    first_name = member.avatar.name
    assert row_of(member, "avatar").verdict == Verdict.ALLOWED

    member.avatar.save("me.png", red())  # the storage overwrites: same name, new bytes

    assert member.avatar.name == first_name
    assert row_of(member, "avatar").verdict == Verdict.FLAGGED
    assert not visible(Member.objects.all(), "avatar").exists()


def test_assignment_and_save_under_the_same_name_is_moderated_again():
    member = Member.objects.create()
    member.avatar.save("me.png", blue())
    member = Member.objects.get(pk=member.pk)
    member.avatar = red("me.png")
    member.save()
    assert row_of(member, "avatar").verdict == Verdict.FLAGGED


def test_fieldfile_save_on_a_deferred_field_under_the_same_name_is_moderated_again():
    member = Member.objects.create()
    member.avatar.save("me.png", blue())
    deferred = Member.objects.only("id").get(pk=member.pk)
    deferred.avatar.save("me.png", red())
    assert row_of(member, "avatar").verdict == Verdict.FLAGGED


def test_new_bytes_left_out_of_update_fields_are_moderated_by_the_next_save():
    member = Member.objects.create()
    member.avatar.save("me.png", blue())
    member.avatar.save("me.png", red(), save=False)
    member.nickname = "later"
    member.save(update_fields=["nickname"])  # the avatar's new bytes are not saved here…
    assert row_of(member, "avatar").verdict == Verdict.ALLOWED
    member.save()  # …but here
    assert row_of(member, "avatar").verdict == Verdict.FLAGGED


class MemberForm(forms.ModelForm):
    class Meta:
        model = Member
        fields = ["avatar"]


def test_saving_a_form_without_a_new_file_keeps_the_decision():
    member = Member.objects.create()
    member.avatar.save("me.png", red())
    review.approve(row_of(member, "avatar"))

    form = MemberForm(data={}, files={}, instance=Member.objects.get(pk=member.pk))
    assert form.is_valid(), form.errors
    form.save()
    Member.objects.get(pk=member.pk).save()

    assert row_of(member, "avatar").verdict == Verdict.APPROVED


# --- Object ids -----------------------------------------------------------------


def test_an_upper_case_uuid_is_stored_canonically():
    pk = uuid.uuid4()
    document = Document(id=str(pk).upper(), file=ContentFile(image_bytes((0, 0, 255)), "d.png"))
    document.save()

    row = ModeratedImage.objects.get(object_id=str(pk))
    assert (row.status, row.verdict) == (Status.DONE, Verdict.ALLOWED)
    assert verdict_of(document, "file") == Verdict.ALLOWED
    assert visible(Document.objects.all(), "file").count() == 1


# --- Multi-table inheritance ------------------------------------------------------


def test_a_subclass_of_a_model_with_a_uuid_key_is_moderated_and_shown():
    signed = SignedDocument.objects.create(file=ContentFile(image_bytes((0, 0, 255)), "s.png"))
    assert verdict_of(signed, "file") == Verdict.ALLOWED
    assert visible(SignedDocument.objects.all(), "file").count() == 1
    assert visible(Document.objects.all(), "file").count() == 1


def test_a_subclass_of_a_moderated_model_is_moderated():
    featured = FeaturedPhoto.objects.create(image=red(), headline="look")

    row = ModeratedImage.objects.get()
    assert (row.status, row.verdict) == (Status.DONE, Verdict.FLAGGED)
    assert row.content_type.model_class() is Photo  # the model that holds the file
    assert verdict_of(featured, "image") == Verdict.FLAGGED
    assert not visible(FeaturedPhoto.objects.all(), "image").exists()
    assert not visible(Photo.objects.all(), "image").exists()

    featured.image = blue()
    featured.save()
    assert visible(FeaturedPhoto.objects.all(), "image").count() == 1


# --- A permanent record --------------------------------------------------------------


def test_an_uploader_cannot_erase_a_rejection():
    photo = Photo.objects.create(image=red())
    pk = photo.pk
    review.reject(row_of(photo, "image"), note="explicit")
    photo.image = striped()  # a new upload resets the row…
    photo.save()
    photo.delete()  # …and deleting the object drops it

    events = ModerationEvent.objects.filter(object_id=str(pk), field_name="image")
    kinds = list(events.order_by("pk").values_list("kind", "verdict_before", "verdict_after"))
    assert kinds == [
        ("classified", Verdict.PENDING, Verdict.FLAGGED),
        ("reviewed", Verdict.FLAGGED, Verdict.REJECTED),
        ("notified", Verdict.REJECTED, Verdict.REJECTED),  # the statement of reasons
        ("replaced", Verdict.REJECTED, Verdict.PENDING),
        ("classified", Verdict.PENDING, Verdict.ALLOWED),
        ("withdrawn", Verdict.ALLOWED, Verdict.ALLOWED),
    ]
    rejection = events.get(kind="reviewed")
    assert rejection.sha256
    assert rejection.note == "explicit"
    assert rejection.content_type.model_class() is Photo

    assert BlockedImage.objects.count() == 1
    again = Photo.objects.create(image=red())
    assert row_of(again, "image").verdict == Verdict.BLOCKED


def test_identical_bytes_of_a_rejected_image_too_flat_to_hash_stay_blocked():
    photo = Photo.objects.create(image=red())
    review.reject(row_of(photo, "image"))
    photo.delete()
    again = Photo.objects.create(image=red())
    assert row_of(again, "image").verdict == Verdict.BLOCKED


def test_the_record_keeps_who_decided_after_the_user_is_deleted():
    photo = Photo.objects.create(image=red())
    moderator = User.objects.create_user("moderator")
    review.reject(row_of(photo, "image"), user=moderator)
    moderator.delete()
    event = ModerationEvent.objects.get(kind="reviewed")
    assert (event.actor, event.actor_name) == (None, "moderator")


def test_events_are_append_only():
    photo = Photo.objects.create(image=red())
    event = ModerationEvent.objects.get()
    event.note = "rewritten"
    with pytest.raises(ValueError, match="append-only"):
        event.save()
    with pytest.raises(ValueError, match="append-only"):
        event.delete()
    with pytest.raises(ValueError, match="append-only"):
        ModerationEvent.objects.all().delete()
    with pytest.raises(ValueError, match="append-only"):
        ModerationEvent.objects.update(note="rewritten")
    assert ModerationEvent.objects.filter(object_id=str(photo.pk)).count() == 1


# --- No silent fail-open --------------------------------------------------------------


def test_unsafe_labels_that_match_no_label_of_the_model_never_allow():
    with moderation(UNSAFE_LABELS=["NSFW"]):
        photo = Photo.objects.create(image=blue())
    row = row_of(photo, "image")
    assert (row.status, row.verdict) == (Status.FAILED, Verdict.FLAGGED)
    assert "UNSAFE_LABELS" in row.error


def test_a_file_refused_for_its_size_is_flagged_even_with_on_error_allow():
    padded = image_bytes((255, 0, 0), fmt="JPEG") + b"\0" * 4096
    with moderation(ON_ERROR="allow", MAX_FILE_SIZE=2048):
        photo = Photo.objects.create(image=ContentFile(padded, "big.jpg"))
    row = row_of(photo, "image")
    assert (row.status, row.verdict) == (Status.FAILED, Verdict.FLAGGED)


def test_undecodable_content_follows_on_error():
    with moderation(ON_ERROR="allow"):
        photo = Photo.objects.create(image=ContentFile(b"not an image at all", "x.png"))
    assert row_of(photo, "image").verdict == Verdict.ALLOWED


def test_a_missing_file_is_flagged_even_with_on_error_allow(monkeypatch):
    monkeypatch.setattr(enqueue, "enqueue", lambda pk, delay=0: None)
    photo = Photo.objects.create(image=red())
    photo.image.storage.delete(photo.image.name)  # e.g. a direct upload that never arrived
    with moderation(ON_ERROR="allow"):
        tasks.classify(row_of(photo, "image").pk)
    row = row_of(photo, "image")
    assert (row.status, row.verdict) == (Status.FAILED, Verdict.FLAGGED)


def test_nan_probabilities_are_flagged_never_allowed():
    with moderation(BACKEND="tests.backends.NaNBackend", ON_ERROR="allow"):
        photo = Photo.objects.create(image=blue())
    row = row_of(photo, "image")
    assert (row.status, row.verdict) == (Status.FAILED, Verdict.FLAGGED)


def test_a_model_that_cannot_load_does_not_make_its_rows_suspects(monkeypatch):
    monkeypatch.setattr(enqueue, "enqueue", lambda pk, delay=0: None)
    with moderation(QUEUE="django_q"):
        photos = [Photo.objects.create(image=blue(f"{i}.png")) for i in range(3)]
        with moderation(QUEUE="django_q", BACKEND="tests.backends.BrokenBackend"):
            tasks.classify()
        ModeratedImage.objects.update(retry_at=None)
        # The model is back: the three are claimed together again.
        assert len(outcomes.claim_batch(uuid.uuid4())) == len(photos)


def test_a_model_that_cannot_load_never_becomes_a_verdict(caplog):
    with moderation(BACKEND="tests.backends.BrokenBackend", ON_ERROR="allow"):
        photo = Photo.objects.create(image=blue())
    row = row_of(photo, "image")
    # Still waiting (for the model to be fixed), never failed or allowed.
    assert (row.status, row.verdict) == (Status.QUEUED, Verdict.PENDING)
    # The row says what; the loader's own message (paths and all) is in the log.
    assert row.error == "The classifier could not be loaded; see the worker's log."
    assert "No model here" in caplog.text
    assert not visible(Photo.objects.all(), "image").exists()


def test_a_row_that_kept_killing_workers_is_flagged_even_with_on_error_allow(monkeypatch):
    monkeypatch.setattr(enqueue, "enqueue", lambda pk, delay=0: None)
    with moderation(QUEUE="django_q"):
        photo = Photo.objects.create(image=blue())
    outcomes.claim_batch(uuid.uuid4())  # the third worker to die on it
    ModeratedImage.objects.update(attempts=3, claimed_at=timezone.now() - timedelta(hours=1))
    with moderation(ON_ERROR="allow", MAX_ATTEMPTS=3):
        assert tasks.requeue_stale(older_than=0)["failed"] == 1
    assert row_of(photo, "image").verdict == Verdict.FLAGGED


# --- Poison isolation --------------------------------------------------------------------


def test_a_row_that_failed_an_attempt_is_retried_alone(monkeypatch):
    monkeypatch.setattr(enqueue, "enqueue", lambda pk, delay=0: None)
    with moderation(QUEUE="django_q"):
        photos = [Photo.objects.create(image=blue(f"{i}.png")) for i in range(4)]
    suspect = row_of(photos[1], "image")
    ModeratedImage.objects.filter(pk=suspect.pk).update(attempts=1)

    assert [r.pk for r in outcomes.claim_batch(uuid.uuid4(), first=suspect.pk)] == [suspect.pk]
    rest = outcomes.claim_batch(uuid.uuid4())
    assert suspect.pk not in {r.pk for r in rest}
    assert len(rest) == 3


def test_the_sweep_gives_every_suspect_row_its_own_task(monkeypatch):
    enqueued: list[int] = []
    monkeypatch.setattr(enqueue, "enqueue", lambda pk, delay=0: enqueued.append(pk))
    with moderation(QUEUE="django_q"):
        for i in range(4):
            Photo.objects.create(image=blue(f"{i}.png"))
    outcomes.claim_batch(uuid.uuid4())  # a worker claims all four, then dies
    enqueued.clear()
    assert tasks.requeue_stale(older_than=0)["requeued"] == 4
    assert sorted(enqueued) == sorted(ModeratedImage.objects.values_list("pk", flat=True))
