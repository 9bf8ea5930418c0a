"""Identical bytes classified once; look-alikes of rejected images blocked; reject hooks."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.files.base import ContentFile

from nsfw_moderation import banks, hashing, review
from nsfw_moderation.models import BlockedImage, ModeratedImage, Status, Verdict
from tests import backends
from tests.conftest import moderation
from tests.images import blue, encoded, picture, red
from tests.testapp.models import Photo, Profile

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("colour_backend")]


def row_of(obj: Any, field: str = "image") -> ModeratedImage:
    return ModeratedImage.objects.get(object_id=str(obj.pk), field_name=field)


def pattern(size: int = 256, quality: int = 90, seed: int = 0) -> ContentFile:
    """A distinctive picture; re-encoding or resizing keeps its perceptual hash close."""
    return encoded(picture(seed).resize((size, size)), "pattern.jpg", quality)


def test_identical_bytes_are_classified_once():
    first = Photo.objects.create(image=red())
    second = Photo.objects.create(image=red("copy.png"))
    assert backends.calls == [1]
    original, copy = row_of(first), row_of(second)
    assert copy.reused_from == original
    assert (copy.status, copy.score, copy.scores) == (Status.DONE, original.score, original.scores)
    assert copy.verdict == original.verdict == Verdict.FLAGGED
    assert "scores reused" in copy.events.get().note


def test_deduplication_can_be_switched_off():
    with moderation(BACKEND="tests.backends.ColourBackend", DEDUPLICATE=False):
        Photo.objects.create(image=red())
        second = Photo.objects.create(image=red("copy.png"))
    assert backends.calls == [1, 1]
    assert row_of(second).reused_from is None


def test_identical_bytes_of_another_model_are_classified_again():
    Photo.objects.create(image=red())
    ModeratedImage.objects.update(model_name="another/model")
    second = Photo.objects.create(image=red("copy.png"))
    assert backends.calls == [1, 1]
    assert row_of(second).reused_from is None


def test_a_copy_of_a_rejected_image_is_blocked():
    first = Photo.objects.create(image=red())
    review.reject(row_of(first))
    second = Photo.objects.create(image=red("again.png"))
    assert row_of(second).verdict == Verdict.BLOCKED


def test_look_alike_of_a_rejected_image_is_blocked_and_linked():
    first = Photo.objects.create(image=pattern())
    rejected = row_of(first)
    assert rejected.pdq
    review.reject(rejected)
    assert BlockedImage.objects.get().image == rejected
    assert banks.builtin_bank().entries.get().image == rejected
    # Re-encoded at another size and quality: other bytes, same picture.
    second = Photo.objects.create(image=pattern(size=200, quality=60))
    row = row_of(second)
    assert row.reused_from is None
    assert (row.verdict, row.similar_to) == (Verdict.BLOCKED, rejected)
    assert f"rejected image #{rejected.pk}" in row.events.get(kind="classified").note


def test_a_different_picture_is_not_blocked():
    review.reject(row_of(Photo.objects.create(image=pattern())))
    other = Photo.objects.create(image=blue())
    assert row_of(other).verdict == Verdict.ALLOWED
    assert row_of(other).similar_to is None


def test_the_blocklist_survives_a_new_upload_to_the_rejected_field():
    photo = Photo.objects.create(image=pattern())
    review.reject(row_of(photo))
    photo.image = blue()
    photo.save()  # the row now tracks the new, harmless file
    assert row_of(photo).verdict == Verdict.ALLOWED
    again = Photo.objects.create(image=pattern(quality=70))
    assert row_of(again).verdict == Verdict.BLOCKED


def test_approving_lifts_the_block():
    row = row_of(Photo.objects.create(image=pattern()))
    review.reject(row)
    review.approve(row)
    assert not BlockedImage.objects.exists()
    assert row_of(Photo.objects.create(image=pattern(quality=70))).verdict != Verdict.BLOCKED


def test_a_rejected_image_too_weak_to_hash_is_blocked_by_its_bytes_only():
    row = row_of(Photo.objects.create(image=red()))  # flat: its PDQ hash is too weak
    review.reject(row)
    assert row.pdq_quality is not None
    assert row.pdq_quality < hashing.MIN_QUALITY
    assert list(BlockedImage.objects.values_list("sha256", flat=True)) == [row.sha256]
    assert not banks.builtin_bank().entries.exists()


hook_calls: list[tuple[int, Any]] = []


def record_hook(row: ModeratedImage, obj: Any) -> None:
    hook_calls.append((row.pk, obj))


def failing_hook(row: ModeratedImage, obj: Any) -> None:
    raise RuntimeError("host hook broke")


@pytest.fixture
def hook() -> Any:
    hook_calls.clear()
    yield hook_calls
    hook_calls.clear()


def test_reject_hook_runs_on_block_and_on_rejection(hook):
    with moderation(
        BACKEND="tests.backends.ColourBackend",
        BLOCK_THRESHOLD=0.9,
        ON_REJECT="tests.test_repeat_offenders.record_hook",
    ):
        blocked = Photo.objects.create(image=red())
        flagged = Photo.objects.create(image=blue())
        assert hook == [(row_of(blocked).pk, blocked)]
        review.approve(row_of(flagged))
        assert len(hook) == 1
        review.reject(row_of(flagged))
    assert hook[1] == (row_of(flagged).pk, flagged)


def test_a_failing_hook_is_logged_not_raised(caplog):
    with moderation(
        BACKEND="tests.backends.ColourBackend", ON_REJECT="tests.test_repeat_offenders.failing_hook"
    ):
        photo = Photo.objects.create(image=blue())
        review.reject(row_of(photo))
    assert row_of(photo).verdict == Verdict.REJECTED
    assert "ON_REJECT hook" in caplog.text


def test_clear_field_keeps_the_file_and_the_record():
    with moderation(
        BACKEND="tests.backends.ColourBackend", ON_REJECT="nsfw_moderation.actions.clear_field"
    ):
        profile = Profile.objects.create(avatar=blue(), banner=blue("b.png"))
        name = profile.avatar.name
        review.reject(row_of(profile, "avatar"))
    profile.refresh_from_db()
    assert not profile.avatar
    assert profile.banner
    assert profile.avatar.storage.exists(name)
    assert row_of(profile, "avatar").verdict == Verdict.REJECTED


def test_deleting_an_object_keeps_only_decision_records():
    kept = Profile.objects.create(avatar=blue(), banner=red())
    review.reject(row_of(kept, "avatar"))
    pk = kept.pk
    kept.delete()
    remaining = ModeratedImage.objects.filter(object_id=str(pk))
    assert [(r.field_name, r.verdict) for r in remaining] == [("avatar", Verdict.REJECTED)]
