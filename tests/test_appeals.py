"""Appeals: only the owner, once, rate-limited; decided by another moderator, audited."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.test import Client
from django.utils import timezone

from nsfw_moderation import review
from nsfw_moderation.appeals import AppealRefused, file_appeal
from nsfw_moderation.models import (
    Appeal,
    AppealOutcome,
    BankEntry,
    BlockedImage,
    ModeratedImage,
    ModerationEvent,
    Statement,
    Verdict,
)
from tests.conftest import moderation
from tests.testapp.models import Photo

pytest_plugins = ["tests.admin_fixtures"]
pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "correct horse battery staple"


@pytest.fixture(autouse=True)
def owners() -> Iterator[None]:
    with moderation(OWNER="tests.owners.owner_of"):
        yield


@pytest.fixture
def owner() -> User:
    return User.objects.create_user("alice", email="alice@example.com", password=PASSWORD)


@pytest.fixture
def stranger() -> User:
    return User.objects.create_user("mallory", password=PASSWORD)


@pytest.fixture
def second_reviewer(make_user: Any) -> User:
    return make_user("second", "nsfw_moderation.review_moderatedimage")


def rejected(reviewer: User, title: str = "alice") -> Statement:
    """A photo of ``title``'s that ``reviewer`` rejected, and its statement of reasons."""
    from tests.admin_fixtures import create_row

    row = create_row(
        Photo.objects.create(title=title), sha256="a" * 64, pdq="0f" * 32, pdq_quality=100
    )
    review.reject(row, user=reviewer, note="reported", user_note="nudity")
    return Statement.objects.get(image=row)


def client_for(user: User, **kwargs: Any) -> Client:
    client = Client(**kwargs)
    client.force_login(user)
    return client


def url(statement: Statement) -> str:
    return f"/moderation/decisions/{statement.public_id}/"


# --- The owner's side ------------------------------------------------------------


def test_the_owner_reads_the_statement(owner, reviewer):
    statement = rejected(reviewer)
    response = client_for(owner).get(url(statement))
    assert response.status_code == 200
    assert "nudity" in response.text
    assert "Send the appeal" in response.text
    listed = client_for(owner).get("/moderation/decisions/")
    assert url(statement) in listed.text


def test_nobody_else_sees_the_statement_or_appeals(owner, stranger, reviewer):
    statement = rejected(reviewer)
    assert client_for(stranger).get(url(statement)).status_code == 404
    assert client_for(reviewer).get(url(statement)).status_code == 404
    posted = client_for(stranger).post(url(statement), {"text": "mine"})
    assert posted.status_code == 404
    assert url(statement) not in client_for(stranger).get("/moderation/decisions/").text
    assert Appeal.objects.count() == 0
    anonymous = Client().get(url(statement))
    assert (anonymous.status_code, anonymous.url.split("?")[0]) == (302, "/accounts/login/")
    with pytest.raises(AppealRefused):
        file_appeal(statement, stranger, "mine")


def test_the_owner_appeals_once(owner, reviewer):
    statement = rejected(reviewer)
    client = client_for(owner)
    first = client.post(url(statement), {"text": "It is a painting."}, follow=True)
    assert "A moderator will look at your appeal" in first.text
    second = client.post(url(statement), {"text": "Again!"}, follow=True)
    assert "can no longer be appealed" in second.text
    appeal = Appeal.objects.get()
    assert (appeal.statement, appeal.owner, appeal.text) == (statement, owner, "It is a painting.")
    appealed = ModerationEvent.objects.get(kind=ModerationEvent.Kind.APPEALED)
    assert (appealed.actor, appealed.note) == (owner, "It is a painting.")


def test_an_appeal_needs_the_csrf_token(owner, reviewer):
    statement = rejected(reviewer)
    client = client_for(owner, enforce_csrf_checks=True)
    assert client.post(url(statement), {"text": "forged"}).status_code == 403
    assert Appeal.objects.count() == 0


def test_an_appeal_is_short_and_not_empty(owner, reviewer):
    statement = rejected(reviewer)
    client = client_for(owner)
    assert client.post(url(statement), {"text": ""}).status_code == 200
    assert client.post(url(statement), {"text": "x" * 2001}).status_code == 200
    assert Appeal.objects.count() == 0


def test_appeals_are_rate_limited(owner, reviewer):
    statements = [rejected(reviewer) for _ in range(3)]
    with moderation(OWNER="tests.owners.owner_of", APPEALS_PER_HOUR=2):
        for statement in statements:
            client_for(owner).post(url(statement), {"text": "please"})
    assert Appeal.objects.count() == 2


def test_no_appeal_once_the_image_changed(owner, reviewer):
    statement = rejected(reviewer)
    ModeratedImage.objects.filter(pk=statement.image_id).update(sha256="b" * 64)
    with pytest.raises(AppealRefused):
        file_appeal(statement, owner, "please")


def test_the_statement_page_is_translated(owner, reviewer, settings):
    statement = rejected(reviewer)
    settings.LANGUAGE_CODE = "de"
    response = client_for(owner).get(url(statement))
    assert 'lang="de"' in response.text
    assert "Send the appeal" not in response.text


# --- The moderator's side --------------------------------------------------------------


def test_the_moderator_who_decided_cannot_decide_the_appeal(owner, reviewer):
    appeal = file_appeal(rejected(reviewer), owner, "please")
    with pytest.raises(review.AppealNotDecidable):
        review.decide_appeal(appeal, user=reviewer, upheld=True)
    assert AppealOutcome.objects.count() == 0
    assert ModeratedImage.objects.get().verdict == Verdict.REJECTED


def test_one_person_sites_may_decide_their_own_appeals(owner, reviewer):
    appeal = file_appeal(rejected(reviewer), owner, "please")
    with moderation(OWNER="tests.owners.owner_of", APPEAL_SAME_REVIEWER=True):
        outcome = review.decide_appeal(appeal, user=reviewer, upheld=True)
    assert outcome.upheld


def test_an_upheld_appeal_lifts_the_restriction_audited(owner, reviewer, second_reviewer):
    statement = rejected(reviewer)
    row = ModeratedImage.objects.get()
    assert BlockedImage.objects.filter(image=row).exists()
    assert BankEntry.objects.filter(bank__built_in=True, image=row, removed_at=None).exists()
    appeal = file_appeal(statement, owner, "It is a painting.")
    mail.outbox.clear()
    outcome = review.decide_appeal(appeal, user=second_reviewer, upheld=True, note="Art.")
    row.refresh_from_db()
    assert (row.verdict, row.reviewed_by) == (Verdict.APPROVED, second_reviewer)
    assert (outcome.upheld, outcome.decided_by, outcome.note) == (True, second_reviewer, "Art.")
    assert not BlockedImage.objects.filter(image=row).exists()
    assert not BankEntry.objects.filter(bank__built_in=True, image=row, removed_at=None).exists()
    assert [
        (e.kind, e.verdict_before, e.verdict_after, e.actor)
        for e in ModerationEvent.objects.order_by("pk")
    ] == [
        ("reviewed", Verdict.FLAGGED, Verdict.REJECTED, reviewer),
        ("notified", Verdict.REJECTED, Verdict.REJECTED, None),
        ("appealed", Verdict.REJECTED, Verdict.REJECTED, owner),
        ("appeal_decided", Verdict.REJECTED, Verdict.APPROVED, second_reviewer),
    ]
    assert outcome.event == ModerationEvent.objects.get(kind="appeal_decided")
    [message] = mail.outbox
    assert (message.to, message.subject) == (["alice@example.com"], "Your appeal was upheld")
    page = client_for(owner).get(url(statement))
    assert "agreed with you" in page.text


def test_an_appeal_not_upheld_keeps_the_restriction(owner, reviewer, second_reviewer):
    appeal = file_appeal(rejected(reviewer), owner, "please")
    mail.outbox.clear()
    outcome = review.decide_appeal(appeal, user=second_reviewer, upheld=False)
    assert not outcome.upheld
    assert ModeratedImage.objects.get().verdict == Verdict.REJECTED
    event = ModerationEvent.objects.get(kind="appeal_decided")
    assert (event.verdict_before, event.verdict_after) == (Verdict.REJECTED, Verdict.REJECTED)
    assert [m.subject for m in mail.outbox] == ["Your appeal was not upheld"]


def test_an_appeal_is_decided_once(owner, reviewer, second_reviewer, superuser):
    appeal = file_appeal(rejected(reviewer), owner, "please")
    review.decide_appeal(appeal, user=second_reviewer, upheld=False)
    with pytest.raises(review.AppealNotDecidable):
        review.decide_appeal(appeal, user=superuser, upheld=True)
    assert ModeratedImage.objects.get().verdict == Verdict.REJECTED


def test_an_automatic_block_can_be_appealed_to_any_moderator(owner, reviewer):
    from nsfw_moderation import notices
    from tests.admin_fixtures import create_row

    row = create_row(Photo.objects.create(title="alice"), verdict=Verdict.BLOCKED, sha256="c" * 64)
    statement = notices.issue(row, automated=True)
    appeal = file_appeal(statement, owner, "please")
    assert review.decide_appeal(appeal, user=reviewer, upheld=True).upheld
    assert ModeratedImage.objects.get().verdict == Verdict.APPROVED


def test_appeal_records_are_append_only(owner, reviewer, second_reviewer):
    appeal = file_appeal(rejected(reviewer), owner, "please")
    outcome = review.decide_appeal(appeal, user=second_reviewer, upheld=False)
    for record in (appeal, outcome, appeal.statement):
        with pytest.raises(ValueError, match="append-only"):
            record.save()
        with pytest.raises(ValueError, match="append-only"):
            record.delete()
        records = type(record).objects.filter(pk=record.pk)
        with pytest.raises(ValueError, match="append-only"):
            records.update(created_at=timezone.now())
        with pytest.raises(ValueError, match="append-only"):
            records.delete()
    assert Appeal.objects.filter(pk=appeal.pk).exists()


# --- The admin's appeal queue -------------------------------------------------------

QUEUE = "/admin/nsfw_moderation/appeal/queue/"
DECIDE = "/admin/nsfw_moderation/appeal/queue/decide/"


def test_the_queue_shows_waiting_appeals_with_blurred_previews(owner, reviewer, second_reviewer):
    statement = rejected(reviewer)
    appeal = file_appeal(statement, owner, "It is a painting.")
    response = client_for(second_reviewer).get(QUEUE)
    assert response.status_code == 200
    assert "It is a painting." in response.text
    assert f"/admin/nsfw_moderation/moderatedimage/{statement.image_id}/preview/" in response.text
    assert f'id="reveal-{appeal.pk}"' in response.text
    assert "another moderator must decide" not in response.text
    own = client_for(reviewer).get(QUEUE)
    assert "another moderator must decide" in own.text


def test_only_reviewers_open_the_queue_or_decide(owner, reviewer, staff):
    appeal = file_appeal(rejected(reviewer), owner, "please")
    assert client_for(staff).get(QUEUE).status_code == 403
    assert client_for(owner).get(QUEUE).status_code == 302  # not staff: the admin's login
    posted = client_for(staff).post(DECIDE, {"decide_one": f"approve:{appeal.pk}"})
    assert posted.status_code == 403
    assert client_for(reviewer).get(DECIDE).status_code == 405
    assert AppealOutcome.objects.count() == 0


def test_deciding_in_the_queue(owner, reviewer, second_reviewer):
    appeal = file_appeal(rejected(reviewer), owner, "please")
    refused = client_for(reviewer).post(DECIDE, {"decide_one": f"approve:{appeal.pk}"}, follow=True)
    assert "cannot decide its appeal" in refused.text
    assert AppealOutcome.objects.count() == 0
    decided = client_for(second_reviewer).post(
        DECIDE, {"decide_one": f"approve:{appeal.pk}", f"note-{appeal.pk}": "Art."}, follow=True
    )
    assert "Appeal upheld" in decided.text
    outcome = AppealOutcome.objects.get()
    assert (outcome.upheld, outcome.note, outcome.decided_by) == (True, "Art.", second_reviewer)
    assert "No appeal is waiting." in decided.text
    listed = client_for(second_reviewer).get("/admin/nsfw_moderation/appeal/")
    assert QUEUE in listed.text


def test_an_appeals_internal_note_stays_with_the_moderators(owner, reviewer, second_reviewer):
    """The queue asks for both notes, labelled for their readers; the owner reads one only."""
    statement = rejected(reviewer)
    appeal = file_appeal(statement, owner, "please")
    queue = client_for(second_reviewer).get(QUEUE).text
    assert "Internal note" in queue
    assert "Note to the owner" in queue
    assert "Optional, sent to the owner" not in queue
    notes = {f"note-{appeal.pk}": "Same person as case 12", f"user_note-{appeal.pk}": "Sorry."}
    client_for(second_reviewer).post(DECIDE, {"decide_one": f"approve:{appeal.pk}", **notes})
    outcome = AppealOutcome.objects.get()
    assert (outcome.note, outcome.user_note) == ("Same person as case 12", "Sorry.")
    page = client_for(owner).get(url(statement)).text
    assert "Sorry." in page
    assert "case 12" not in page
    [*_, told] = mail.outbox
    assert "Sorry." in told.body
    assert "case 12" not in told.body


# --- Dashboard figures ----------------------------------------------------------------


def test_dashboard_counts_appeals_per_model_and_per_reviewer(
    owner, reviewer, second_reviewer, monkeypatch
):
    from datetime import timedelta

    from nsfw_moderation import notices, stats
    from tests.admin_fixtures import create_row

    start = timezone.now() - timedelta(hours=10)

    def at(hours: float) -> None:
        # Records are append-only: they are written at the time they claim.
        monkeypatch.setattr(timezone, "now", lambda: start + timedelta(hours=hours))

    blocked = create_row(
        Photo.objects.create(title="alice"), verdict=Verdict.BLOCKED, sha256="1" * 64
    )
    at(0)
    automatic = file_appeal(notices.issue(blocked, automated=True), owner, "one")
    human = file_appeal(rejected(reviewer), owner, "two")
    file_appeal(rejected(reviewer), owner, "three")  # waiting
    at(1)
    review.decide_appeal(automatic, user=second_reviewer, upheld=True)
    at(3)
    review.decide_appeal(human, user=second_reviewer, upheld=False)
    monkeypatch.undo()

    figures = stats.appeal_stats(timezone.now())
    total = figures["total"]
    assert (total.received, total.upheld, total.not_upheld, total.waiting) == (3, 1, 1, 1)
    assert total.median_time_to_decide == timedelta(hours=2)
    [model] = figures["per_model"]
    assert (model.source, model.received, model.upheld) == ("tests/colour", 1, 1)
    assert model.median_time_to_decide == timedelta(hours=1)
    [person] = figures["per_reviewer"]
    assert (person.source, person.received, person.not_upheld, person.waiting) == (
        "reviewer",
        2,
        1,
        1,
    )
    page = client_for(second_reviewer).get("/admin/nsfw_moderation/moderatedimage/dashboard/")
    assert 'data-appeals="model:tests/colour"' in page.text
    assert "2 h 0 min" in page.text


def test_an_appeal_cannot_keep_a_restriction_already_lifted(
    owner, reviewer, second_reviewer, superuser
):
    statement = rejected(reviewer)
    appeal = file_appeal(statement, owner, "please")
    # Lifted by a third moderator: whoever decided on the image since may not decide the appeal.
    review.approve(ModeratedImage.objects.get(), user=superuser)
    with pytest.raises(review.AppealNotDecidable):
        review.decide_appeal(appeal, user=second_reviewer, upheld=False)
    assert review.decide_appeal(appeal, user=second_reviewer, upheld=True).upheld
    assert ModeratedImage.objects.get().verdict == Verdict.APPROVED


def test_reviewers_read_the_statements_in_the_admin(owner, reviewer, staff):
    statement = rejected(reviewer)
    listed = client_for(reviewer).get("/admin/nsfw_moderation/statement/")
    assert listed.status_code == 200
    assert f"/admin/nsfw_moderation/statement/{statement.pk}/change/" in listed.text
    page = client_for(reviewer).get(f"/admin/nsfw_moderation/statement/{statement.pk}/change/")
    assert page.status_code == 200
    assert "nudity" in page.text
    assert client_for(staff).get("/admin/nsfw_moderation/statement/").status_code == 403
    assert (
        client_for(reviewer)
        .post(f"/admin/nsfw_moderation/statement/{statement.pk}/delete/", {"post": "yes"})
        .status_code
        == 403
    )


def test_the_dashboard_links_to_the_appeal_queue(reviewer):
    page = client_for(reviewer).get("/admin/nsfw_moderation/moderatedimage/dashboard/")
    assert f'href="{QUEUE}"' in page.text


@pytest.mark.urls("tests.admin_fixtures")
def test_no_link_where_the_admin_site_has_no_appeals(reviewer):
    page = client_for(reviewer).get("/admin/nsfw_moderation/moderatedimage/dashboard/")
    assert page.status_code == 200
    assert "appeal/queue" not in page.text
