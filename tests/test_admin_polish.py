"""The admin pages as a moderator reads them: reasons, numbers, names, titles, outcomes, undo."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from nsfw_moderation import review
from nsfw_moderation.appeals import file_appeal
from nsfw_moderation.models import (
    Appeal,
    BankEntry,
    BlockedImage,
    HashBank,
    ModeratedImage,
    Statement,
    Verdict,
)
from tests.admin_fixtures import queue
from tests.conftest import moderation
from tests.testapp.models import Photo

pytest_plugins = ["tests.admin_fixtures"]
pytestmark = pytest.mark.django_db

PREFIX = "admin:nsfw_moderation_moderatedimage"
MakeRow = Callable[..., ModeratedImage]
REVIEW = "nsfw_moderation.review_moderatedimage"


@pytest.fixture
def client(client: Client, reviewer: User) -> Client:
    client.force_login(reviewer)
    return client


@pytest.fixture
def owners() -> Iterator[None]:
    with moderation(OWNER="tests.owners.owner_of"):
        yield


def change_page(client: Client, row: ModeratedImage) -> str:
    response = client.get(reverse(f"{PREFIX}_change", args=[row.pk]))
    assert response.status_code == 200
    return response.content.decode()


def text_of(html: str) -> str:
    """The page's words, tags dropped and spaces squeezed."""
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


# --- 1. A hash bank's match says so on its card ----------------------------------------


def test_a_card_of_a_bank_match_names_the_bank(client: Client, make_row: MakeRow) -> None:
    bank = HashBank.objects.create(name="Partner list", action=HashBank.Action.FLAG)
    entry = BankEntry.objects.create(bank=bank, pdq="0f" * 32, quality=100, label="partner")
    make_row(score=0.003, bank_entry=entry, bank_distance=4)
    make_row(score=0.91)
    page = text_of(queue(client).content.decode())
    assert "Matched hash bank “Partner list” (4 of 256 bits differ)." in page
    # The card of a high score is explained by its score alone.
    assert page.count("Matched hash bank") == 1


def test_a_card_of_a_failed_classification_says_why(client: Client, make_row: MakeRow) -> None:
    make_row(score=None, error="Not an image: truncated PNG")
    page = text_of(queue(client).content.decode())
    assert "Could not be classified: Not an image: truncated PNG" in page


def test_the_queue_reads_banks_without_a_query_per_card(client: Client, make_row: MakeRow) -> None:
    bank = HashBank.objects.create(name="Partner list", action=HashBank.Action.FLAG)
    make_row(bank_entry=BankEntry.objects.create(bank=bank, pdq="0f" * 32, quality=100))
    with CaptureQueriesContext(connection) as one:
        queue(client)
    for i in range(5):
        entry = BankEntry.objects.create(bank=bank, pdq=f"{i:02x}" * 32, quality=100)
        make_row(bank_entry=entry)
    with CaptureQueriesContext(connection) as six:
        queue(client)
    assert len(six) == len(one)


# --- 2. The change page: readable numbers, no Save buttons -------------------------------


def test_the_change_page_rounds_scores_and_tabulates_them(
    client: Client, make_row: MakeRow
) -> None:
    row = make_row(score=0.07611019164323807, scores={"nsfw": 0.07611019164323807, "sfw": 0.9239})
    html = change_page(client, row)
    assert "0.07611019164323807" not in html
    assert '{"nsfw"' not in html
    assert "{&quot;nsfw" not in html
    table = re.search(r'<table class="nsfw-scores">.*?</table>', html, re.S)
    assert table is not None
    assert re.findall(r"<th scope='row'>(\w+)</th><td>([\d.]+)</td>", table[0]) == [
        ("sfw", "0.924"),
        ("nsfw", "0.076"),
    ]


def test_the_events_on_the_change_page_round_their_scores(
    client: Client, make_row: MakeRow, reviewer: User
) -> None:
    row = make_row(score=0.07611019164323807)
    review.approve(row, user=reviewer)
    html = change_page(client, row)
    assert "0.07611019164323807" not in html
    assert "0.076" in html


@pytest.mark.usefixtures("owners")
def test_the_pages_of_an_event_and_a_statement_round_their_scores(
    admin_client: Client, make_row: MakeRow, reviewer: User
) -> None:
    User.objects.create_user("alice")
    row = make_row(Photo.objects.create(title="alice"), score=0.07611019164323807)
    event = review.reject(row, user=reviewer)
    assert event is not None
    statement = Statement.objects.get(image=row)
    pages = [
        reverse("admin:nsfw_moderation_moderationevent_change", args=[event.pk]),
        reverse("admin:nsfw_moderation_statement_change", args=[statement.pk]),
    ]
    for url in pages:
        html = admin_client.get(url).content.decode()
        assert "0.07611019164323807" not in html
        assert re.search(r"Unsafe score:?\s*</label>\s*<div class=\"readonly\">0.076</div>", html)


def test_a_notices_page_lists_its_receivers_as_words(
    admin_client: Client, make_row: MakeRow
) -> None:
    from nsfw_moderation.models import Notice

    row = make_row()
    review.reject(row)
    notice = Notice.objects.get()
    Notice.objects.filter(pk=notice.pk).update(receivers_done=["mail.send_notice", "site.log"])
    url = reverse("admin:nsfw_moderation_notice_change", args=[notice.pk])
    page = text_of(admin_client.get(url).content.decode())
    assert "Delivered to: mail.send_notice, site.log" in page
    assert "[&quot;" not in page


def test_the_change_page_has_no_save_buttons(admin_client: Client, make_row: MakeRow) -> None:
    # A superuser may change rows, but every field is read-only: nothing to save.
    html = change_page(admin_client, make_row())
    assert 'name="_save"' not in html
    assert 'name="_continue"' not in html
    assert 'class="submit-row"' not in html
    # The decision's own buttons stay.
    assert 'value="approve:' in html


# --- 3. Objects by their own names, read in bulk -----------------------------------------


def test_cards_and_rows_name_the_object_by_its_str(client: Client, make_row: MakeRow) -> None:
    photo = Photo.objects.create(title="Sunset over the bay")
    row = make_row(photo)
    assert "Sunset over the bay" in queue(client).content.decode()
    listed = client.get(reverse(f"{PREFIX}_changelist")).content.decode()
    assert "Sunset over the bay" in listed
    assert f"testapp.photo {photo.pk}" not in listed
    assert "Sunset over the bay" in change_page(client, row)


def test_an_object_that_is_gone_keeps_the_old_name(client: Client, make_row: MakeRow) -> None:
    row = make_row(Photo.objects.create(title="Gone"))
    ModeratedImage.objects.filter(pk=row.pk).update(object_id="999999")
    assert "testapp.photo 999999" in queue(client).content.decode()


def test_object_names_cost_one_query_per_content_type(client: Client, make_row: MakeRow) -> None:
    make_row(Photo.objects.create(title="first"))
    url = reverse(f"{PREFIX}_changelist")
    with CaptureQueriesContext(connection) as one_queue, CaptureQueriesContext(connection):
        queue(client)
    with CaptureQueriesContext(connection) as one_list:
        client.get(url)
    for i in range(6):
        make_row(Photo.objects.create(title=f"photo {i}"))
    with CaptureQueriesContext(connection) as many_queue:
        queue(client)
    with CaptureQueriesContext(connection) as many_list:
        client.get(url)
    assert len(many_queue) == len(one_queue)
    assert len(many_list) == len(one_list)


# --- 5. The appeal queue is called the same everywhere -----------------------------------


@pytest.mark.usefixtures("owners")
def test_the_appeal_queue_title_breadcrumb_and_button_agree(client: Client) -> None:
    changelist = client.get(reverse("admin:nsfw_moderation_appeal_changelist")).content.decode()
    queue_url = reverse("admin:nsfw_moderation_appeal_queue")
    button = re.search(rf'<a href="{queue_url}">([^<]+)</a>', changelist)
    assert button is not None
    assert button[1] == "Appeal queue"
    page = client.get(queue_url).content.decode()
    assert re.search(r"<h1>([^<]+)</h1>", page)[1] == "Appeal queue"  # type: ignore[index]
    assert "<title>Appeal queue |" in page
    crumbs = text_of(re.search(r'<div class="breadcrumbs">(.*?)</div>', page, re.S)[1])  # type: ignore[index]
    assert crumbs.endswith("&rsaquo; Appeals &rsaquo; Appeal queue")


# --- 7. An appeal's page shows its outcome -----------------------------------------------


def appealed(reviewer: User, title: str = "alice") -> Appeal:
    """A photo of ``title``'s that ``reviewer`` rejected, and its owner's appeal."""
    from tests.admin_fixtures import create_row

    owner = User.objects.create_user(title)
    row = create_row(Photo.objects.create(title=title), sha256="a" * 64)
    review.reject(row, user=reviewer, note="reported")
    return file_appeal(Statement.objects.get(image=row), owner, "It is a painting.")


@pytest.mark.usefixtures("owners")
def test_an_appeals_page_shows_its_outcome(client: Client, reviewer: User, make_user: Any) -> None:
    appeal = appealed(reviewer)
    url = reverse("admin:nsfw_moderation_appeal_change", args=[appeal.pk])
    waiting = text_of(client.get(url).content.decode())
    assert "waiting" in waiting
    other = make_user("judge", REVIEW)
    review.decide_appeal(
        appeal, user=other, upheld=True, note="context: museum", user_note="Sorry about that."
    )
    page = text_of(client.get(url).content.decode())
    assert "upheld: the restriction was lifted" in page
    assert "Decided by: judge" in page
    assert "Internal note (colleagues only): context: museum" in page
    assert "Note to the owner (sent with the outcome): Sorry about that." in page
    assert re.search(r"Decided at: \S", page)


# --- 8. Statements say what and whose -------------------------------------------------------


@pytest.mark.usefixtures("owners")
def test_statements_list_names_object_and_owner_without_n_plus_one(
    client: Client, reviewer: User
) -> None:
    from tests.admin_fixtures import create_row

    url = reverse("admin:nsfw_moderation_statement_changelist")

    def reject_photo_of(name: str) -> None:
        User.objects.create_user(name)
        row = create_row(Photo.objects.create(title=name), sha256=name[0] * 64)
        review.reject(row, user=reviewer)

    reject_photo_of("alice")
    with CaptureQueriesContext(connection) as one:
        first = client.get(url).content.decode()
    assert re.search(r'<td class="field-object_display">alice</td>', first)
    assert re.search(r'<td class="field-owner[^"]*">alice</td>', first)
    for name in ("bob", "carol", "dave"):
        reject_photo_of(name)
    with CaptureQueriesContext(connection) as four:
        listed = client.get(url).content.decode()
    assert re.search(r'<td class="field-object_display">carol</td>', listed)
    assert len(four) == len(one)


@pytest.mark.usefixtures("owners")
def test_the_appeals_list_names_the_object_without_n_plus_one(
    client: Client, reviewer: User
) -> None:
    url = reverse("admin:nsfw_moderation_appeal_changelist")
    appealed(reviewer, "alice")
    with CaptureQueriesContext(connection) as one:
        client.get(url)
    appealed(reviewer, "bob")
    appealed(reviewer, "carol")
    with CaptureQueriesContext(connection) as three:
        listed = client.get(url).content.decode()
    assert '<td class="field-object_display">carol</td>' in listed
    assert len(three) == len(one)


# --- 9. A rejection can be undone, minutes later, by whoever made it ---------------------------


UNDO = reverse(f"{PREFIX}_undo")


def csrf_client(user: User) -> Client:
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    return client


def posted_form(html: str, form_class: str) -> tuple[str, list[tuple[str, str]]]:
    """The action and the hidden fields of the page's first ``<form class=form_class>``."""
    form = re.search(
        rf'<form method="post" action="([^"]+)" class="{form_class}">(.*?)</form>', html, re.S
    )
    assert form is not None, f"no {form_class} form on the page"
    fields = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form[2])
    return form[1], fields


def token_of(page: str) -> str:
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert token is not None
    return token[1]


def reject_in_queue(client: Client, row: ModeratedImage) -> str:
    """Reject ``row`` with its card's button, as the queue posts it; the next page's HTML."""
    page = queue(client).content.decode()
    data = {
        "csrfmiddlewaretoken": token_of(page),
        "decide_one": f"reject:{row.pk}",
        "seen": f"{row.pk}:{row.sha256}",
        "next": reverse(f"{PREFIX}_review"),
    }
    response = client.post(reverse(f"{PREFIX}_decide"), data, follow=True)
    assert response.status_code == 200
    return response.content.decode()


def undo_from(client: Client, page: str) -> str:
    action, fields = posted_form(page, "nsfw-undo")
    response = client.post(action, dict(fields), follow=True)
    assert response.status_code == 200
    return response.content.decode()


def test_a_rejection_is_undone_by_a_new_decision(reviewer: User, make_row: MakeRow) -> None:
    row = make_row(sha256="a" * 64, pdq="0f" * 32, pdq_quality=100, audit=True)
    client = csrf_client(reviewer)
    page = reject_in_queue(client, row)
    assert "1 image marked Rejected." in text_of(page)
    assert BlockedImage.objects.filter(image=row).exists()
    statement = Statement.objects.get(image=row)

    raw = undo_from(client, page)
    after = text_of(raw)
    assert "1 rejection undone" in after
    row.refresh_from_db()
    assert (row.verdict, row.audit) == (Verdict.FLAGGED, True)  # back in the queue, a sample again
    events = list(row.events.filter(kind="reviewed").order_by("pk"))
    assert [(e.verdict_before, e.verdict_after, e.actor) for e in events] == [
        (Verdict.FLAGGED, Verdict.REJECTED, reviewer),
        (Verdict.REJECTED, Verdict.FLAGGED, reviewer),
    ]
    # The statement stays on record; the bytes leave the blocklist and the built-in bank.
    assert Statement.objects.filter(pk=statement.pk).exists()
    assert not BlockedImage.objects.filter(image=row).exists()
    assert not BankEntry.objects.filter(image=row, removed_at__isnull=True).exists()
    # Twice is once: the undo was the last word.
    again = text_of(undo_from(client, page))
    assert "The image has changed since the rejection" in again
    assert row.events.filter(kind="reviewed").count() == 2


def test_an_undo_needs_the_csrf_token(reviewer: User, make_row: MakeRow) -> None:
    row = make_row(sha256="a" * 64)
    client = csrf_client(reviewer)
    page = reject_in_queue(client, row)
    _action, fields = posted_form(page, "nsfw-undo")
    forged = {name: value for name, value in fields if name != "csrfmiddlewaretoken"}
    assert client.post(UNDO, forged).status_code == 403
    row.refresh_from_db()
    assert row.verdict == Verdict.REJECTED


def test_only_the_moderator_who_rejected_may_undo(
    reviewer: User, make_row: MakeRow, make_user: Any
) -> None:
    row = make_row(sha256="a" * 64)
    page = reject_in_queue(csrf_client(reviewer), row)
    colleague = csrf_client(make_user("colleague", REVIEW))
    _action, fields = posted_form(page, "nsfw-undo")
    data = dict(fields, csrfmiddlewaretoken=token_of(queue(colleague).content.decode()))
    refused = text_of(colleague.post(UNDO, data, follow=True).content.decode())
    assert "Only the moderator who rejected an image may undo the rejection." in refused
    row.refresh_from_db()
    assert row.verdict == Verdict.REJECTED


def test_an_undo_comes_too_late_after_the_window(
    reviewer: User, make_row: MakeRow, monkeypatch: pytest.MonkeyPatch
) -> None:
    row = make_row(sha256="a" * 64)
    client = csrf_client(reviewer)
    page = reject_in_queue(client, row)
    later = timezone.now() + review.UNDO_WINDOW + timedelta(seconds=1)
    monkeypatch.setattr(review, "timezone", SimpleNamespace(now=lambda: later))
    assert "Too late to undo" in text_of(undo_from(client, page))
    row.refresh_from_db()
    assert row.verdict == Verdict.REJECTED


def test_an_undo_never_applies_to_other_bytes(reviewer: User, make_row: MakeRow) -> None:
    row = make_row(sha256="a" * 64)
    client = csrf_client(reviewer)
    page = reject_in_queue(client, row)
    # A new upload under the same row, classified and rejected by the blocklist or not:
    # the rejection the moderator would take back was about the old bytes.
    ModeratedImage.objects.filter(pk=row.pk).update(sha256="b" * 64)
    assert "The image has changed since the rejection" in text_of(undo_from(client, page))
    row.refresh_from_db()
    assert row.verdict == Verdict.REJECTED


def test_no_undo_once_another_decision_followed(
    reviewer: User, make_row: MakeRow, make_user: Any
) -> None:
    row = make_row(sha256="a" * 64)
    client = csrf_client(reviewer)
    page = reject_in_queue(client, row)
    review.reject(row, user=make_user("colleague", REVIEW), note="agreed")
    assert "The image has changed since the rejection" in text_of(undo_from(client, page))
    assert row.events.filter(kind="reviewed").count() == 2


def test_no_undo_where_on_reject_acted_on_the_file(reviewer: User, make_row: MakeRow) -> None:
    row = make_row(sha256="a" * 64)
    client = csrf_client(reviewer)
    with moderation(ON_REJECT="nsfw_moderation.hooks.clear_field"):
        page = reject_in_queue(client, row)
        assert "nsfw-undo" not in page
        rejection = row.events.get(kind="reviewed")
        with pytest.raises(review.NotUndoable, match="ON_REJECT"):
            review.undo_rejection(rejection, user=reviewer)
