"""Appeals tried from outside: who may decide, framing, caching, the hourly limit under load."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connections
from django.test import Client

from nsfw_moderation import notices, review
from nsfw_moderation.appeals import file_appeal
from nsfw_moderation.models import Appeal, AppealOutcome, ModeratedImage, Statement, Verdict
from tests.conftest import moderation
from tests.testapp.models import Photo

pytest_plugins = ["tests.admin_fixtures"]
pytestmark = pytest.mark.django_db(transaction=True)


# tests.admin_fixtures' helpers, imported when called: by then pytest has loaded it as a
# plugin (rewriting its asserts), which an import at the top would prevent.
def create_user(username: str, *perms: str, **flags: Any) -> User:
    from tests.admin_fixtures import create_user

    return create_user(username, *perms, **flags)


def create_row(obj: Any = None, **values: Any) -> ModeratedImage:
    from tests.admin_fixtures import create_row

    return create_row(obj, **values)


QUEUE = "/admin/nsfw_moderation/appeal/queue/"
DECIDE = "/admin/nsfw_moderation/appeal/queue/decide/"
REVIEW = "nsfw_moderation.review_moderatedimage"


@pytest.fixture(autouse=True)
def owners() -> Iterator[None]:
    with moderation(OWNER="tests.owners.owner_of"):
        yield


@pytest.fixture
def owner() -> User:
    return User.objects.create_user("alice", email="alice@example.com")


def client_for(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def blocked_statement(sha: str = "b") -> Statement:
    """An automatic block of one of alice's photos, and its statement of reasons."""
    row = create_row(Photo.objects.create(title="alice"), verdict=Verdict.BLOCKED, sha256=sha * 64)
    return notices.issue(row, automated=True)


# --- 4. Whoever decided on the image since the statement does not decide its appeal ----------


def buttons_of(page: Any, appeal: Appeal) -> list[str]:
    return re.findall(rf'<button[^>]*value="(?:approve|reject):{appeal.pk}"[^>]*>', page.text)


def test_the_moderator_whose_rejection_keeps_a_block_cannot_decide_its_appeal(owner):
    keeper = create_user("keeper", REVIEW)
    other = create_user("other", REVIEW)
    statement = blocked_statement()
    appeal = file_appeal(statement, owner, "It is a statue.")
    # A moderator rejects the blocked image: the restriction stays, now theirs too.
    review.reject(ModeratedImage.objects.get(pk=statement.image_id), user=keeper)
    with pytest.raises(review.AppealNotDecidable, match="decided on this image"):
        review.decide_appeal(appeal, user=keeper, upheld=False)
    # The queue says so beforehand, its buttons disabled, and a forged post is refused.
    page = client_for(keeper).get(QUEUE)
    assert "You have decided on this image since the statement" in page.text
    buttons = buttons_of(page, appeal)
    assert len(buttons) == 2
    assert all(" disabled" in button for button in buttons)
    client_for(keeper).post(DECIDE, {"decide_one": f"approve:{appeal.pk}"})
    assert not AppealOutcome.objects.exists()
    # Another moderator decides it, buttons enabled.
    assert not any(
        " disabled" in button for button in buttons_of(client_for(other).get(QUEUE), appeal)
    )
    assert review.decide_appeal(appeal, user=other, upheld=True).upheld


def test_a_moderator_who_decided_an_earlier_appeal_since_cannot_decide(owner):
    first, second = create_user("first", REVIEW), create_user("second", REVIEW)
    statement = blocked_statement()
    appeal = file_appeal(statement, owner, "please")
    # Anyone who decided on the image after the statement: an approval counts as much.
    review.approve(ModeratedImage.objects.get(pk=statement.image_id), user=first)
    with pytest.raises(review.AppealNotDecidable):
        review.decide_appeal(appeal, user=first, upheld=True)
    assert review.decide_appeal(appeal, user=second, upheld=True).decided_by == second


def test_decisions_before_the_statement_do_not_count(owner):
    earlier = create_user("earlier", REVIEW)
    row = create_row(Photo.objects.create(title="alice"), sha256="e" * 64)
    review.approve(row, user=earlier)
    row.verdict = Verdict.BLOCKED
    row.save(update_fields=["verdict"])
    appeal = file_appeal(notices.issue(row, automated=True), owner, "please")
    assert review.appeal_refusal(appeal, earlier) == ""


def test_one_person_sites_still_decide_their_own(owner):
    alone = create_user("alone", REVIEW)
    statement = blocked_statement()
    appeal = file_appeal(statement, owner, "please")
    review.reject(ModeratedImage.objects.get(pk=statement.image_id), user=alone)
    with moderation(OWNER="tests.owners.owner_of", APPEAL_SAME_REVIEWER=True):
        assert not review.decide_appeal(appeal, user=alone, upheld=False).upheld


# --- 5. No appeal or statement page may be framed ----------------------------------------------


def admin_pages(appeal: Appeal) -> list[str]:
    statement = f"/admin/nsfw_moderation/statement/{appeal.statement_id}"
    appealed = f"/admin/nsfw_moderation/appeal/{appeal.pk}"
    return [
        QUEUE,
        "/admin/nsfw_moderation/appeal/",
        f"{appealed}/change/",
        f"{appealed}/history/",
        "/admin/nsfw_moderation/statement/",
        f"{statement}/change/",
        f"{statement}/history/",
    ]


def assert_not_frameable(response: Any) -> None:
    assert response["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in response["Content-Security-Policy"]


def test_appeal_and_statement_pages_deny_framing(owner):
    appeal = file_appeal(blocked_statement(), owner, "please")
    client = client_for(create_user("root", superuser=True))
    for page in admin_pages(appeal):
        response = client.get(page)
        assert response.status_code == 200, page
        assert_not_frameable(response)
    assert_not_frameable(client.post(DECIDE, {"decide_one": f"approve:{appeal.pk}"}))


# --- 15. The owner's pages are never cached ---------------------------------------------------


def assert_never_cached(response: Any) -> None:
    directives = {part.strip() for part in response["Cache-Control"].split(",")}
    assert {"no-cache", "no-store", "must-revalidate", "private", "max-age=0"} <= directives


def test_the_owners_pages_are_never_cached(owner):
    statement = blocked_statement()
    client = client_for(owner)
    page = f"/moderation/decisions/{statement.public_id}/"
    for response in (
        client.get("/moderation/decisions/"),
        client.get(page),
        client.post(page, {"text": "It is a statue."}),
        Client().get(page),  # the login redirect too
    ):
        assert response.status_code in (200, 302)
        assert_never_cached(response)
    assert Appeal.objects.count() == 1


# --- 6. APPEALS_PER_HOUR holds against concurrent posts ----------------------------------------


@pytest.mark.parametrize("limit", [1, 3])
def test_the_hourly_limit_holds_under_concurrent_posts(owner, limit):
    posts = 8
    statements = [blocked_statement(sha=f"{n:x}") for n in range(posts)]
    clients = [client_for(owner) for _ in statements]
    start = threading.Barrier(posts)
    errors: list[BaseException] = []

    def post(client: Client, statement: Statement) -> None:
        try:
            start.wait(10)
            response = client.post(f"/moderation/decisions/{statement.public_id}/", {"text": "!"})
            assert response.status_code == 302
        except BaseException as exc:  # reported by the test
            errors.append(exc)
        finally:
            connections.close_all()  # each thread had its own connection

    with moderation(OWNER="tests.owners.owner_of", APPEALS_PER_HOUR=limit):
        threads = [
            threading.Thread(target=post, args=pair)
            for pair in zip(clients, statements, strict=True)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    assert not errors
    assert Appeal.objects.filter(owner=owner).count() == limit
