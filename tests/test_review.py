"""nsfw_moderation.review: decisions outside any view."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import AnonymousUser, User

from nsfw_moderation import review, signals
from nsfw_moderation.models import ModeratedImage, ModerationEvent, Status, Verdict
from tests.images import red
from tests.testapp.models import Photo

pytest_plugins = ["tests.admin_fixtures"]
pytestmark = pytest.mark.django_db


@pytest.fixture
def moderator(make_user: Callable[..., User]) -> User:
    return make_user("moderator", "nsfw_moderation.review_moderatedimage")


@pytest.fixture
def received() -> Any:
    calls: list[dict[str, Any]] = []

    def receiver(**kwargs: Any) -> None:
        calls.append(kwargs)

    signals.image_reviewed.connect(receiver, dispatch_uid="test_review")
    yield calls
    signals.image_reviewed.disconnect(dispatch_uid="test_review")


def test_approve_sets_verdict_reviewer_and_time(
    moderator: User, make_row: Callable[..., ModeratedImage]
) -> None:
    row = make_row()
    event = review.approve(row, user=moderator, note="a beach photo")
    row.refresh_from_db()
    assert row.verdict == Verdict.APPROVED
    assert row.reviewed_by == moderator
    assert row.reviewed_at is not None
    assert event is not None
    assert (event.kind, event.actor, event.verdict_before, event.verdict_after, event.note) == (
        ModerationEvent.Kind.REVIEWED,
        moderator,
        Verdict.FLAGGED,
        Verdict.APPROVED,
        "a beach photo",
    )
    assert (event.score, event.file_name, event.model_name) == (0.9, row.file_name, row.model_name)


def test_reject_sets_rejected(moderator: User, make_row: Callable[..., ModeratedImage]) -> None:
    row = make_row()
    review.reject(row, user=moderator)
    row.refresh_from_db()
    assert row.verdict == Verdict.REJECTED


def test_decide_updates_the_instance_passed_in(
    moderator: User, make_row: Callable[..., ModeratedImage]
) -> None:
    row = make_row()
    review.reject(row, user=moderator)
    assert row.verdict == Verdict.REJECTED


def test_signal_carries_row_user_previous_verdict_and_note(
    moderator: User, received: Any, make_row: Callable[..., ModeratedImage]
) -> None:
    row = make_row()
    review.reject(row, user=moderator, note="nope")
    assert len(received) == 1
    call = received[0]
    assert call["sender"] is ModeratedImage
    assert call["instance"].pk == row.pk
    assert call["instance"].verdict == Verdict.REJECTED
    assert (call["user"], call["previous_verdict"], call["note"]) == (moderator, "flagged", "nope")


def test_redeciding_is_allowed_and_audited(
    moderator: User, received: Any, make_row: Callable[..., ModeratedImage]
) -> None:
    row = make_row()
    review.reject(row, user=moderator)
    review.approve(row, user=moderator, note="on second thought")
    events = list(row.events.filter(kind=ModerationEvent.Kind.REVIEWED).order_by("pk"))
    assert [(e.verdict_before, e.verdict_after) for e in events] == [
        ("flagged", "rejected"),
        ("rejected", "approved"),
    ]
    assert [call["previous_verdict"] for call in received] == ["flagged", "rejected"]


@pytest.mark.parametrize("status", [Status.QUEUED, Status.PROCESSING])
def test_rows_being_classified_are_not_decided(
    moderator: User, received: Any, status: str, make_row: Callable[..., ModeratedImage]
) -> None:
    row = make_row(status=status, verdict=Verdict.PENDING)
    assert review.approve(row, user=moderator) is None
    row.refresh_from_db()
    assert row.verdict == Verdict.PENDING
    assert not row.events.exists()
    assert received == []


def test_failed_rows_can_be_decided(
    moderator: User, make_row: Callable[..., ModeratedImage]
) -> None:
    row = make_row(status=Status.FAILED, score=None, error="not an image")
    assert review.reject(row, user=moderator) is not None


def test_decide_many_decides_each_row_once(
    moderator: User, received: Any, make_row: Callable[..., ModeratedImage]
) -> None:
    rows = [make_row() for _ in range(3)]
    waiting = make_row(status=Status.QUEUED, verdict=Verdict.PENDING)
    queryset = ModeratedImage.objects.filter(pk__in=[r.pk for r in [*rows, waiting]])
    events = review.decide_many(queryset, Verdict.REJECTED, user=moderator, note="bulk")
    assert sorted(e.image_id for e in events) == sorted(r.pk for r in rows)
    assert set(
        ModeratedImage.objects.filter(pk__in=[r.pk for r in rows]).values_list("verdict", flat=True)
    ) == {"rejected"}
    assert len(received) == 3


def test_decide_many_accepts_a_list_of_rows(
    moderator: User, make_row: Callable[..., ModeratedImage]
) -> None:
    rows = [make_row(), make_row()]
    assert len(review.decide_many(rows, Verdict.APPROVED, user=moderator)) == 2


def test_only_review_verdicts_are_accepted(
    moderator: User, make_row: Callable[..., ModeratedImage]
) -> None:
    with pytest.raises(ValueError, match="approved"):
        review.decide(make_row(), Verdict.ALLOWED, user=moderator)


def test_anonymous_or_missing_user_is_recorded_as_no_actor(
    make_row: Callable[..., ModeratedImage],
) -> None:
    first = review.approve(make_row(), user=AnonymousUser())
    second = review.approve(make_row())
    assert first is not None
    assert second is not None
    assert (first.actor, second.actor) == (None, None)


@pytest.mark.django_db(transaction=True)
def test_decision_on_a_pipeline_flagged_upload(colour_backend: None, moderator: User) -> None:
    photo = Photo.objects.create(image=red())
    row = ModeratedImage.objects.get(object_id=str(photo.pk))
    assert row.verdict == Verdict.FLAGGED
    review.approve(row, user=moderator)
    kinds = list(row.events.order_by("pk").values_list("kind", "verdict_after"))
    assert kinds == [("classified", "flagged"), ("reviewed", "approved")]
