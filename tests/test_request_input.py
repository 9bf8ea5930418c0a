"""Hostile request parameters: a 400, a 404 or a form error, never a 500, on every database.

``str.isdigit`` accepts digits that ``int()`` refuses ("²") and numbers past
what a database integer holds; PostgreSQL refuses a NUL character anywhere in
text ("A string literal cannot contain NUL (0x00) characters."). Each view
that reads an id, a name or a note from the request is tried with them here,
through the Django test client, on SQLite and (``DATABASE_URL``) PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.auth.models import User
from django.test import Client
from django.urls import include, path, reverse

from nsfw_moderation import notices
from nsfw_moderation.appeals import file_appeal
from nsfw_moderation.media import serve_visible
from nsfw_moderation.models import Appeal, AppealOutcome, ModerationEvent, Statement, Verdict
from tests.conftest import moderation
from tests.images import blue
from tests.testapp.models import Photo

pytest_plugins = ["tests.admin_fixtures"]
pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]

urlpatterns = [
    path("admin/", admin.site.urls),
    path("moderation/", include("nsfw_moderation.urls")),
    path("media/<path:path>", serve_visible),
]

PREFIX = "admin:nsfw_moderation_moderatedimage"
#: Digits to ``str.isdigit``, not to ``int()``; a number past a 64-bit integer; a NUL.
BAD_IDS = ["²", "١٢", "99999999999999999999999", "1\x00", "\x00", "-1", " 1", "1.0"]


def logged_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def is_refused_cleanly(response: Any) -> bool:
    """Answered: a redirect with a message, a 400 or a 404; not a server error."""
    return response.status_code in (302, 400, 404)


# --- The review queue's decisions ----------------------------------------------------


@pytest.mark.parametrize("bad", BAD_IDS)
def test_decide_one_with_a_bad_id_decides_nothing(reviewer: User, flagged: Any, bad: str) -> None:
    client = logged_in(reviewer)
    response = client.post(reverse(f"{PREFIX}_decide"), {"decide_one": f"approve:{bad}"})
    assert is_refused_cleanly(response), response.status_code
    flagged.refresh_from_db()
    assert flagged.verdict == Verdict.FLAGGED


@pytest.mark.parametrize("bad", BAD_IDS)
def test_bulk_ids_and_seen_with_bad_values_decide_only_the_good_ones(
    reviewer: User, flagged: Any, bad: str
) -> None:
    client = logged_in(reviewer)
    response = client.post(
        reverse(f"{PREFIX}_decide"),
        {
            "decision": "reject",
            "ids": [bad, str(flagged.pk)],
            "seen": [f"{bad}:{'a' * 64}", f"{flagged.pk}:{flagged.sha256}"],
        },
    )
    assert response.status_code == 302
    flagged.refresh_from_db()
    assert flagged.verdict == Verdict.REJECTED


def test_a_nul_in_the_decision_note_is_not_stored(reviewer: User, flagged: Any) -> None:
    client = logged_in(reviewer)
    response = client.post(
        reverse(f"{PREFIX}_decide"),
        {
            "decide_one": f"reject:{flagged.pk}",
            "note": "seen\x00 twice",
            "user_note": "not\x00 here",
        },
    )
    assert response.status_code == 302
    event = ModerationEvent.objects.filter(image=flagged, kind="reviewed").get()
    assert event.note == "seen twice"
    assert Statement.objects.get(image=flagged).user_note == "not here"


def test_a_nul_in_a_decision_name_is_refused(reviewer: User, flagged: Any) -> None:
    client = logged_in(reviewer)
    response = client.post(reverse(f"{PREFIX}_decide"), {"decide_one": f"app\x00rove:{flagged.pk}"})
    assert is_refused_cleanly(response)
    flagged.refresh_from_db()
    assert flagged.verdict == Verdict.FLAGGED


# --- The appeal queue's decisions ----------------------------------------------------


@pytest.fixture
def appeal(make_row: Any) -> Iterator[Appeal]:
    with moderation(OWNER="tests.owners.owner_of"):
        owner = User.objects.create_user("alice")
        row = make_row(
            Photo.objects.create(title="alice"),
            verdict=Verdict.BLOCKED,
            audit=True,
            sha256="c" * 64,
        )
        yield file_appeal(notices.issue(row, automated=True), owner, "It is a painting.")


@pytest.mark.parametrize("bad", BAD_IDS)
def test_an_appeal_decision_with_a_bad_id_decides_nothing(
    reviewer: User, appeal: Appeal, bad: str
) -> None:
    client = logged_in(reviewer)
    response = client.post(
        "/admin/nsfw_moderation/appeal/queue/decide/", {"decide_one": f"approve:{bad}"}
    )
    assert is_refused_cleanly(response), response.status_code
    assert AppealOutcome.objects.count() == 0


def test_nul_in_an_appeals_notes_is_not_stored(reviewer: User, appeal: Appeal) -> None:
    client = logged_in(reviewer)
    notes = {f"note-{appeal.pk}": "a\x00b", f"user_note-{appeal.pk}": "c\x00d"}
    response = client.post(
        "/admin/nsfw_moderation/appeal/queue/decide/",
        {"decide_one": f"approve:{appeal.pk}", **notes},
    )
    assert response.status_code == 302
    outcome = AppealOutcome.objects.get()
    assert (outcome.note, outcome.user_note) == ("ab", "cd")


# --- Names and searches from the request ------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("colour_backend")
@pytest.mark.parametrize(
    "name", ["photos/a\x00.png", "\x00", "photos/\x00/../a.png", "photos/a.png\x00.jpg"]
)
def test_a_nul_in_a_media_path_is_a_404(name: str) -> None:
    Photo.objects.create(image=blue())
    response = Client().get("/media/" + name)
    assert response.status_code == 404


@pytest.mark.parametrize(
    "params",
    [
        {"q": "a\x00b"},
        {"model_name": "a\x00b"},
        {"content_type__id__exact": "²"},
        {"content_type__id__exact": "1\x00"},
        {"content_type__id__exact": "99999999999999999999999"},
        {"verdict__exact": "flag\x00ged"},
        {"created_at__gte": "\x00"},
    ],
    ids=["search", "model", "ct-superscript", "ct-nul", "ct-huge", "verdict-nul", "date-nul"],
)
def test_the_change_list_answers_bad_filters_without_an_error(
    superuser: User, flagged: Any, params: dict[str, str]
) -> None:
    response = logged_in(superuser).get(reverse(f"{PREFIX}_changelist"), params)
    assert response.status_code in (200, 302, 400), response.status_code


@pytest.mark.parametrize(
    "params",
    [
        {"model_name": "a\x00b"},
        {"content_type": "²"},
        {"content_type": "1\x00"},
        {"content_type": "99999999999999999999999"},
        {"p": "²"},
        {"p": "\x00"},
        {"verdict": "\x00", "status": "\x00", "order": "\x00"},
        {"date_from": "2024-01-01\x00"},
    ],
)
def test_the_review_queue_ignores_bad_filters(
    reviewer: User, flagged: Any, params: dict[str, str]
) -> None:
    response = logged_in(reviewer).get(reverse(f"{PREFIX}_review"), params)
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("url", "params"),
    [
        ("admin:nsfw_moderation_moderationevent_changelist", {"q": "a\x00b"}),
        ("admin:nsfw_moderation_moderationevent_changelist", {"kind__exact": "\x00"}),
        ("admin:nsfw_moderation_statement_changelist", {"q": "a\x00b"}),
        ("admin:nsfw_moderation_appeal_changelist", {"q": "a\x00b"}),
        ("admin:nsfw_moderation_hashbank_changelist", {"q": "a\x00b"}),
        ("admin:nsfw_moderation_hashbank_changelist", {"action__exact": "\x00"}),
        ("admin:nsfw_moderation_bankentry_changelist", {"bank__id__exact": "²"}),
        ("admin:nsfw_moderation_bankentry_changelist", {"label": "\x00"}),
        ("admin:nsfw_moderation_blockedimage_changelist", {"sha256": "\x00"}),
        ("admin:nsfw_moderation_statement_changelist", {"verdict__exact": "\x00"}),
        ("admin:nsfw_moderation_appeal_changelist", {"outcome__upheld__exact": "\x00"}),
    ],
)
def test_the_record_lists_answer_bad_filters_without_an_error(
    superuser: User, flagged: Any, url: str, params: dict[str, str]
) -> None:
    response = logged_in(superuser).get(reverse(url), params)
    assert response.status_code in (200, 302, 400), response.status_code


@pytest.mark.parametrize("pk", ["99999999999999999999999", "9223372036854775808"])
def test_pages_of_a_row_past_any_id_are_404(reviewer: User, superuser: User, pk: str) -> None:
    assert (
        logged_in(reviewer).get(f"/admin/nsfw_moderation/moderatedimage/{pk}/preview/").status_code
        == 404
    )
    change = logged_in(superuser).get(f"/admin/nsfw_moderation/moderatedimage/{pk}/change/")
    assert change.status_code in (302, 404)


def test_the_owners_pages_refuse_a_nul_in_the_appeal(appeal: Appeal) -> None:
    statement = appeal.statement
    client = logged_in(User.objects.get(username="alice"))
    response = client.post(f"/moderation/decisions/{statement.public_id}/", {"text": "a\x00b"})
    assert response.status_code in (200, 302)
    assert Appeal.objects.get().text == "It is a painting."
