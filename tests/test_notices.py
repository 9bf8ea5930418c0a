"""Statements of reasons: written for every restriction, announced, e-mailed, never fatal."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.core.files.base import ContentFile
from django.core.management import call_command
from django.utils import timezone

from nsfw_moderation import notices, review, signals
from nsfw_moderation.models import ModeratedImage, ModerationEvent, Notice, Statement, Verdict
from tests.conftest import moderation
from tests.images import blue, image_bytes, red
from tests.testapp.models import Photo

pytest_plugins = ["tests.admin_fixtures"]
pytestmark = pytest.mark.django_db(transaction=True)

OWNED = {"OWNER": "tests.owners.owner_of", "BACKEND": "tests.backends.ColourBackend"}


@pytest.fixture
def owner() -> User:
    return User.objects.create_user("alice", email="alice@example.com")


@pytest.fixture
def received() -> Any:
    got: list[dict[str, Any]] = []

    def receiver(**kwargs: Any) -> None:
        got.append(kwargs)

    signals.decision_notice.connect(receiver, dispatch_uid="test-notice")
    yield got
    signals.decision_notice.disconnect(dispatch_uid="test-notice")


def blocked_photo(title: str = "alice") -> Photo:
    with moderation(**OWNED, BLOCK_THRESHOLD=0.9):
        return Photo.objects.create(title=title, image=red())


def test_a_blocked_image_gets_one_statement_with_the_facts(owner, received):
    photo = blocked_photo()
    row = ModeratedImage.objects.of_object(photo, "image").get()
    assert row.verdict == Verdict.BLOCKED
    statement = Statement.objects.get()
    assert (statement.image, statement.object_id, statement.field_name) == (
        row,
        str(photo.pk),
        "image",
    )
    assert (statement.verdict, statement.automated, statement.decided_by) == (
        Verdict.BLOCKED,
        True,
        None,
    )
    assert (statement.model_name, statement.score, statement.threshold) == (
        row.model_name,
        row.score,
        0.9,
    )
    assert (statement.owner, statement.sha256, statement.file_name) == (
        owner,
        row.sha256,
        row.file_name,
    )
    assert statement.event.kind == ModerationEvent.Kind.CLASSIFIED
    assert "0.90" in notices.reasons(statement)
    notified = row.events.filter(kind=ModerationEvent.Kind.NOTIFIED).get()
    assert notified.note == str(statement.public_id)
    assert [(r["statement"], r["owner"], r["outcome"]) for r in received] == [
        (statement, owner, None)
    ]


def test_the_owner_is_emailed(owner):
    blocked_photo()
    statement = Statement.objects.get()
    [message] = mail.outbox
    assert message.to == ["alice@example.com"]
    assert message.subject == "Your image was removed"
    assert f"/moderation/decisions/{statement.public_id}/" in message.body
    assert "taken automatically" in message.body


def test_nobody_is_emailed_without_an_owner_setting(owner):
    with moderation(BACKEND="tests.backends.ColourBackend", BLOCK_THRESHOLD=0.9):
        Photo.objects.create(title="alice", image=red())
    assert Statement.objects.get().owner is None
    assert mail.outbox == []


def test_a_rejection_gets_a_human_statement_with_the_note_for_the_owner(owner, reviewer):
    with moderation(**OWNED):
        photo = Photo.objects.create(title="alice", image=red())
        row = ModeratedImage.objects.of_object(photo, "image").get()
        assert row.verdict == Verdict.FLAGGED
        assert Statement.objects.count() == 0  # flagged: no notice unless NOTIFY_FLAGGED
        review.reject(row, user=reviewer, note=INTERNAL, user_note="Nudity is not allowed.")
    statement = Statement.objects.get()
    assert (statement.verdict, statement.automated, statement.decided_by) == (
        Verdict.REJECTED,
        False,
        reviewer,
    )
    assert (statement.note, statement.user_note) == (INTERNAL, "Nudity is not allowed.")
    assert statement.threshold is None
    assert statement.event.kind == ModerationEvent.Kind.REVIEWED
    assert notices.reasons(statement).endswith("Nudity is not allowed.")


#: What a moderator writes for colleagues only.
INTERNAL = "Reported to the police, case 4711"


def test_the_internal_note_never_reaches_the_owner(owner, reviewer):
    """Invariant 9: the audit log keeps it; the statement page, e-mail and reasons never show it."""
    from django.test import Client

    with moderation(**OWNED):
        photo = Photo.objects.create(title="alice", image=red())
        row = ModeratedImage.objects.of_object(photo, "image").get()
        review.reject(row, user=reviewer, note=INTERNAL)
    statement = Statement.objects.get()
    assert row.events.get(kind=ModerationEvent.Kind.REVIEWED).note == INTERNAL
    assert "police" not in notices.reasons(statement)
    [message] = mail.outbox
    assert "police" not in message.body + message.subject
    client = Client()
    client.force_login(owner)
    page = client.get(f"/moderation/decisions/{statement.public_id}/")
    assert page.status_code == 200
    assert "police" not in page.text
    assert "police" not in client.get("/moderation/decisions/").text


def test_an_approval_gets_no_statement(reviewer):
    with moderation(**OWNED):
        photo = Photo.objects.create(title="alice", image=red())
        review.approve(ModeratedImage.objects.of_object(photo, "image").get(), user=reviewer)
    assert Statement.objects.count() == 0


def test_flagged_images_get_a_statement_when_asked(owner):
    with moderation(**OWNED, NOTIFY_FLAGGED=True):
        Photo.objects.create(title="alice", image=red())
        Photo.objects.create(title="alice", image=blue())
    statement = Statement.objects.get()
    assert (statement.verdict, statement.threshold) == (Verdict.FLAGGED, 0.5)
    assert "hidden until a moderator" in notices.reasons(statement)


def test_a_failing_owner_lookup_never_fails_the_worker(owner, caplog):
    with moderation(**{**OWNED, "OWNER": "tests.owners.broken_owner"}, BLOCK_THRESHOLD=0.9):
        photo = Photo.objects.create(title="alice", image=red())
    assert ModeratedImage.objects.of_object(photo, "image").get().verdict == Verdict.BLOCKED
    assert Statement.objects.get().owner is None
    assert "OWNER tests.owners.broken_owner failed" in caplog.text


def test_a_failing_mail_server_never_fails_the_worker(owner, settings, caplog):
    settings.EMAIL_BACKEND = "tests.owners.BrokenEmailBackend"
    photo = blocked_photo()
    assert ModeratedImage.objects.of_object(photo, "image").get().verdict == Verdict.BLOCKED
    assert Statement.objects.get().owner == owner
    assert "no mail server" in caplog.text


def test_a_failing_delivery_never_fails_the_decision_and_is_tried_again(owner, reviewer, caplog):
    def broken(**kwargs: Any) -> None:
        raise RuntimeError("the host's receiver broke")

    signals.decision_notice.connect(broken, dispatch_uid="test-broken")
    try:
        with moderation(**OWNED):
            image = ContentFile(image_bytes((200, 0, 0)), "x.png")
            photo = Photo.objects.create(title="alice", image=image)
            row = ModeratedImage.objects.of_object(photo, "image").get()
            assert review.reject(row, user=reviewer) is not None
    finally:
        signals.decision_notice.disconnect(dispatch_uid="test-broken")
    assert ModeratedImage.objects.get(pk=row.pk).verdict == Verdict.REJECTED
    assert "the host's receiver broke" in caplog.text
    notice = Notice.objects.get()
    assert (notice.sent_at, notice.attempts) == (None, 1)
    assert "the host's receiver broke" in notice.error
    # Tried again once the claim has run out (STALE_AFTER), by the periodic job.
    Notice.objects.update(claimed_at=timezone.now() - timedelta(hours=1))
    assert notices.deliver_waiting() == {"notices_delivered": 1}
    assert Notice.objects.get().sent_at is not None
    assert notices.deliver_waiting() == {"notices_delivered": 0}


def test_statements_are_append_only(owner):
    blocked_photo()
    statement = Statement.objects.get()
    with pytest.raises(ValueError, match="append-only"):
        statement.save()
    with pytest.raises(ValueError, match="append-only"):
        statement.delete()


def test_a_repeated_rejection_gets_no_second_statement(owner, reviewer):
    with moderation(**OWNED, BLOCK_THRESHOLD=0.9):
        photo = Photo.objects.create(title="alice", image=red())
        row = ModeratedImage.objects.of_object(photo, "image").get()
        review.reject(row, user=reviewer, note="confirmed")  # a person confirms the block
        review.reject(row, user=reviewer, note="again")
    statements = Statement.objects.order_by("pk")
    assert [(s.verdict, s.automated) for s in statements] == [
        (Verdict.BLOCKED, True),
        (Verdict.REJECTED, False),
    ]
    assert len(mail.outbox) == 2


def test_the_review_pages_keep_the_two_notes_apart_and_say_so(owner, reviewer):
    """The queue's and the change page's fields are labelled for who reads them, and stored so."""
    from django.test import Client
    from django.urls import reverse

    prefix = "admin:nsfw_moderation_moderatedimage"
    with moderation(**OWNED):
        photo = Photo.objects.create(title="alice", image=red())
        row = ModeratedImage.objects.of_object(photo, "image").get()
        client = Client()
        client.force_login(reviewer)
        for page in (reverse(f"{prefix}_review"), reverse(f"{prefix}_change", args=[row.pk])):
            text = client.get(page).text
            assert "Internal note" in text
            assert "never shown to the owner" in text
            assert "Note to the owner" in text
            assert "kept in the audit log'" not in text
        posted = client.post(
            reverse(f"{prefix}_decide"),
            {"decide_one": f"reject:{row.pk}", "note": INTERNAL, "user_note": "Not here."},
        )
    assert posted.status_code == 302
    statement = Statement.objects.get()
    assert (statement.note, statement.user_note) == (INTERNAL, "Not here.")
    assert row.events.get(kind=ModerationEvent.Kind.REVIEWED).note == INTERNAL


def test_a_worker_killed_after_its_commit_loses_no_statement_and_sends_one_email(owner):
    """The statement commits with the block; the outbox delivers what the dead worker did not."""
    import json
    import os
    import subprocess
    import sys

    from nsfw_moderation.worker import tasks
    from tests.workers import ROOT, worker_env

    with moderation(**OWNED, QUEUE="django_q"):
        photo = Photo.objects.create(title="alice", image=red())
    row = ModeratedImage.objects.of_object(photo, "image").get()
    overrides = json.dumps({**OWNED, "BLOCK_THRESHOLD": 0.9})
    died = subprocess.run(
        [sys.executable, "-m", "tests.die_after_commit", str(row.pk), overrides],
        cwd=ROOT,
        env={**os.environ, **worker_env(), "NSFW_TEST_QUEUE": "sync"},
        capture_output=True,
        timeout=120,
    )
    assert died.returncode == 9, died.stderr.decode()[-3000:]
    row.refresh_from_db()
    assert row.verdict == Verdict.BLOCKED
    statement = Statement.objects.get(image=row)  # written with the block, not after it
    notice = Notice.objects.get(statement=statement)
    assert notice.sent_at is None
    assert mail.outbox == []
    with moderation(**OWNED, BLOCK_THRESHOLD=0.9):
        tasks.maintain()
        tasks.maintain()
        assert not notices.deliver(notice.pk)  # delivered already: never twice
    assert Notice.objects.get().sent_at is not None
    assert [message.to for message in mail.outbox] == [["alice@example.com"]]


def test_a_failing_receiver_of_the_site_never_makes_the_email_go_twice(owner):
    def webhook(**kwargs: Any) -> None:
        raise RuntimeError("webhook down")

    signals.decision_notice.connect(webhook, dispatch_uid="test-webhook")
    try:
        blocked_photo()
        assert len(mail.outbox) == 1
        for _ in range(2):
            Notice.objects.update(claimed_at=timezone.now() - timedelta(days=1))
            notices.deliver_waiting()
    finally:
        signals.decision_notice.disconnect(dispatch_uid="test-webhook")
    notice = Notice.objects.get()
    assert len(mail.outbox) == 1
    assert (notice.attempts, notice.sent_at) == (3, None)
    assert notice.receivers_done == ["nsfw_moderation.notices.email_owner"]
    assert "webhook down" in notice.error


def test_a_failing_owner_query_never_costs_the_verdict(owner):
    """OWNER runs in the decision's transaction: a failed query (PostgreSQL aborts) is contained."""
    photo = blocked_photo_owned_by("tests.owners.owner_from_a_broken_query")
    row = ModeratedImage.objects.of_object(photo, "image").get()
    assert (row.status, row.verdict) == ("done", Verdict.BLOCKED)
    assert Statement.objects.get(image=row).owner is None


def blocked_photo_owned_by(owner: str) -> Photo:
    with moderation(**{**OWNED, "OWNER": owner}, BLOCK_THRESHOLD=0.9):
        return Photo.objects.create(title="alice", image=red())


def test_a_delivery_that_fails_after_the_commit_never_reaches_the_decision(owner, monkeypatch):
    blocked_signals: list[Any] = []

    def receiver(**kwargs: Any) -> None:
        blocked_signals.append(kwargs)

    def broken(pk: int, token: Any) -> bool:
        from django.db import OperationalError

        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(notices, "_claim", broken)
    signals.image_blocked.connect(receiver, dispatch_uid="test-blocked")
    try:
        photo = blocked_photo()
    finally:
        signals.image_blocked.disconnect(dispatch_uid="test-blocked")
    assert ModeratedImage.objects.of_object(photo, "image").get().verdict == Verdict.BLOCKED
    assert len(blocked_signals) == 1
    assert Notice.objects.get().sent_at is None  # the outbox's to deliver


def test_a_file_that_could_not_be_examined_is_not_said_to_match_a_rejected_one(owner):
    from tests.admin_fixtures import create_row

    photo = Photo.objects.create(title="alice")
    row = create_row(photo, status="failed", verdict=Verdict.FLAGGED, score=None, error="bad")
    with moderation(NOTIFY_FLAGGED=True):
        statement = notices.issue(row, automated=True)
    told = notices.reasons(statement)
    assert "rejected" not in told
    assert "could not be examined" in told


def test_identical_bytes_classified_again_get_no_second_statement(owner):
    photo = blocked_photo()
    row = ModeratedImage.objects.of_object(photo, "image").get()
    with moderation(**OWNED, BLOCK_THRESHOLD=0.9):
        call_command("nsfw_scan", "--rescan", verbosity=0)
    assert ModeratedImage.objects.get(pk=row.pk).verdict == Verdict.BLOCKED
    assert Statement.objects.filter(image=row).count() == 1
    assert len(mail.outbox) == 1


@pytest.mark.django_db(databases=["default", "moderation"], transaction=True)
def test_the_owner_is_found_when_the_moderation_tables_live_elsewhere(owner):
    from django.contrib.contenttypes.models import ContentType
    from django.test import override_settings

    ContentType.objects.get_for_model(Photo)
    ContentType.objects.using("moderation").all().delete()
    ContentType.objects.using("moderation").bulk_create(ContentType.objects.all())
    # README: the moderation database holds the users too, with the same ids.
    User.objects.using("moderation").bulk_create([owner])
    with override_settings(DATABASE_ROUTERS=["tests.routers.ModerationRouter"]):
        blocked_photo()
        assert Statement.objects.get().owner_id == owner.pk
    assert len(mail.outbox) == 1


def test_a_notice_given_up_is_delivered_again_from_the_admin(owner, settings, superuser):
    from django.test import Client

    settings.EMAIL_BACKEND = "tests.owners.BrokenEmailBackend"
    blocked_photo()
    Notice.objects.update(attempts=notices.DELIVERY_ATTEMPTS)  # given up
    assert notices.deliver_waiting() == {"notices_delivered": 0}
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    client = Client()
    client.force_login(superuser)
    listed = client.get("/admin/nsfw_moderation/notice/")
    assert listed.status_code == 200
    assert listed.headers["X-Frame-Options"] == "DENY"
    notice = Notice.objects.get()
    client.post(
        "/admin/nsfw_moderation/notice/",
        {"action": "deliver_again", "_selected_action": [notice.pk]},
    )
    assert Notice.objects.get().sent_at is not None
    assert [message.to for message in mail.outbox] == [["alice@example.com"]]
