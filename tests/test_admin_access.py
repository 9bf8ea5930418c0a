"""Who may open the review UI, see previews and decide: every URL, every kind of user."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from nsfw_moderation.models import ModeratedImage, ModerationEvent, Status, Verdict

pytest_plugins = ["tests.admin_fixtures"]
pytestmark = pytest.mark.django_db

PREFIX = "admin:nsfw_moderation_moderatedimage"
READ_VIEWS = ["review", "dashboard", "preview"]
LOGIN = "/admin/login/"


def url_for(view: str, row: ModeratedImage) -> str:
    args = [row.pk] if view in ("preview", "change", "delete") else []
    return reverse(f"{PREFIX}_{view}", args=args)


def as_user(client: Client, user: User | None) -> Client:
    if user is not None:
        client.force_login(user)
    return client


def verdict_of(row: ModeratedImage) -> str:
    row.refresh_from_db()
    return row.verdict


# --- Reading: queue, dashboard, previews ---------------------------------------


@pytest.mark.parametrize("view", READ_VIEWS)
def test_anonymous_users_are_sent_to_the_login_page(
    client: Client, flagged: ModeratedImage, view: str
) -> None:
    response = client.get(url_for(view, flagged))
    assert response.status_code == 302
    assert response["Location"].startswith(LOGIN)


@pytest.mark.parametrize("view", READ_VIEWS)
def test_staff_without_the_permission_get_403(
    client: Client, staff: User, flagged: ModeratedImage, view: str
) -> None:
    response = as_user(client, staff).get(url_for(view, flagged))
    assert response.status_code == 403


@pytest.mark.parametrize("view", READ_VIEWS)
def test_reviewers_may_read(
    client: Client, reviewer: User, flagged: ModeratedImage, view: str
) -> None:
    assert as_user(client, reviewer).get(url_for(view, flagged)).status_code == 200


@pytest.mark.parametrize("view", READ_VIEWS)
def test_superusers_may_read(
    client: Client, superuser: User, flagged: ModeratedImage, view: str
) -> None:
    assert as_user(client, superuser).get(url_for(view, flagged)).status_code == 200


@pytest.mark.parametrize("view", READ_VIEWS)
def test_the_permission_without_staff_status_is_not_enough(
    client: Client, flagged: ModeratedImage, view: str, make_user: Callable[..., User]
) -> None:
    outsider = make_user("outsider", "nsfw_moderation.review_moderatedimage", staff=False)
    response = as_user(client, outsider).get(url_for(view, flagged))
    assert response.status_code == 302
    assert response["Location"].startswith(LOGIN)


def test_a_preview_of_a_missing_row_is_404(client: Client, reviewer: User) -> None:
    url = reverse(f"{PREFIX}_preview", args=[999_999])
    assert as_user(client, reviewer).get(url).status_code == 404


def test_reviewers_may_open_a_rows_page_with_its_history(
    client: Client, reviewer: User, flagged: ModeratedImage
) -> None:
    assert as_user(client, reviewer).get(url_for("change", flagged)).status_code == 200


def test_nobody_deletes_rows_and_their_audit_trail(
    client: Client, superuser: User, flagged: ModeratedImage
) -> None:
    response = as_user(client, superuser).post(url_for("delete", flagged), {"post": "yes"})
    assert response.status_code == 403
    assert ModeratedImage.objects.filter(pk=flagged.pk).exists()


# --- Deciding: the decision and preference POSTs --------------------------------


def decide(client: Client, row: ModeratedImage, decision: str = "reject") -> int:
    url = reverse(f"{PREFIX}_decide")
    return client.post(url, {"decide_one": f"{decision}:{row.pk}"}).status_code


def bulk(client: Client, rows: list[ModeratedImage], decision: str = "reject") -> int:
    url = reverse(f"{PREFIX}_decide")
    return client.post(url, {"decision": decision, "ids": [r.pk for r in rows]}).status_code


DECIDERS: list[Callable[[Client, ModeratedImage], int]] = [
    decide,
    lambda client, row: bulk(client, [row]),
]


@pytest.mark.parametrize("post", DECIDERS, ids=["one", "bulk"])
def test_anonymous_users_cannot_decide(
    client: Client, flagged: ModeratedImage, post: Callable[[Client, ModeratedImage], int]
) -> None:
    assert post(client, flagged) == 302
    assert verdict_of(flagged) == Verdict.FLAGGED


@pytest.mark.parametrize("post", DECIDERS, ids=["one", "bulk"])
def test_staff_without_the_permission_cannot_decide(
    client: Client,
    staff: User,
    flagged: ModeratedImage,
    post: Callable[[Client, ModeratedImage], int],
) -> None:
    assert post(as_user(client, staff), flagged) == 403
    assert verdict_of(flagged) == Verdict.FLAGGED
    assert not ModerationEvent.objects.exists()


@pytest.mark.parametrize("post", DECIDERS, ids=["one", "bulk"])
@pytest.mark.parametrize("who", ["reviewer", "superuser"])
def test_reviewers_and_superusers_decide(
    client: Client,
    flagged: ModeratedImage,
    post: Callable[[Client, ModeratedImage], int],
    who: str,
    request: pytest.FixtureRequest,
) -> None:
    user = request.getfixturevalue(who)
    assert post(as_user(client, user), flagged) == 302
    assert verdict_of(flagged) == Verdict.REJECTED
    assert ModerationEvent.objects.get(kind="reviewed").actor == user


@pytest.mark.parametrize("view", ["decide", "undo", "review_preferences"])
def test_get_on_state_changing_urls_is_405(
    client: Client, reviewer: User, flagged: ModeratedImage, view: str
) -> None:
    url = reverse(f"{PREFIX}_{view}")
    response = as_user(client, reviewer).get(url, {"decide_one": f"approve:{flagged.pk}"})
    assert response.status_code == 405
    assert verdict_of(flagged) == Verdict.FLAGGED


def test_decisions_need_a_csrf_token(reviewer: User, flagged: ModeratedImage) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(reviewer)
    assert decide(client, flagged) == 403
    assert verdict_of(flagged) == Verdict.FLAGGED


def test_decisions_with_the_pages_csrf_token_go_through(
    reviewer: User, flagged: ModeratedImage
) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(reviewer)
    page = client.get(reverse(f"{PREFIX}_review"))
    token = page.context["csrf_token"]
    response = client.post(
        reverse(f"{PREFIX}_decide"),
        {"decide_one": f"approve:{flagged.pk}", "csrfmiddlewaretoken": str(token)},
    )
    assert response.status_code == 302
    assert verdict_of(flagged) == Verdict.APPROVED


def test_staff_without_the_permission_cannot_save_preferences(client: Client, staff: User) -> None:
    url = reverse(f"{PREFIX}_review_preferences")
    assert as_user(client, staff).post(url, {"reveal_all": "on"}).status_code == 403
    assert "nsfw_moderation.review" not in client.session


def test_anonymous_users_cannot_save_preferences(client: Client) -> None:
    url = reverse(f"{PREFIX}_review_preferences")
    assert client.post(url, {"reveal_all": "on"}).status_code == 302
    assert "nsfw_moderation.review" not in client.session


# --- Admin actions on the changelist --------------------------------------------


def run_action(client: Client, action: str, rows: list[ModeratedImage]) -> int:
    url = reverse(f"{PREFIX}_changelist")
    data = {"action": action, "_selected_action": [r.pk for r in rows]}
    return client.post(url, data).status_code


ACTIONS = ["approve", "reject", "reclassify"]


@pytest.mark.parametrize("action", ACTIONS)
def test_staff_without_the_permission_cannot_run_the_actions(
    client: Client, staff: User, flagged: ModeratedImage, action: str
) -> None:
    as_user(client, staff)
    page = client.get(reverse(f"{PREFIX}_changelist"))
    assert page.status_code == 200
    assert f'value="{action}"' not in page.content.decode()
    run_action(client, action, [flagged])
    flagged.refresh_from_db()
    assert (flagged.verdict, flagged.status) == (Verdict.FLAGGED, Status.DONE)


@pytest.mark.parametrize("action", ACTIONS)
def test_anonymous_users_cannot_run_the_actions(
    client: Client, flagged: ModeratedImage, action: str
) -> None:
    assert run_action(client, action, [flagged]) == 302
    flagged.refresh_from_db()
    assert (flagged.verdict, flagged.status) == (Verdict.FLAGGED, Status.DONE)


@pytest.mark.parametrize("who", ["reviewer", "superuser"])
@pytest.mark.parametrize(
    ("action", "verdict", "status"),
    [
        ("approve", Verdict.APPROVED, Status.DONE),
        ("reject", Verdict.REJECTED, Status.DONE),
        ("reclassify", Verdict.PENDING, Status.QUEUED),
    ],
)
def test_reviewers_and_superusers_run_the_actions(
    client: Client,
    flagged: ModeratedImage,
    who: str,
    action: str,
    verdict: str,
    status: str,
    request: pytest.FixtureRequest,
) -> None:
    as_user(client, request.getfixturevalue(who))
    page = client.get(reverse(f"{PREFIX}_changelist"))
    assert f'value="{action}"' in page.content.decode()
    assert run_action(client, action, [flagged]) == 302
    flagged.refresh_from_db()
    assert (flagged.verdict, flagged.status) == (verdict, status)


# --- What the pages offer ----------------------------------------------------------


def test_staff_without_the_permission_see_no_review_links_or_buttons(
    client: Client, staff: User, flagged: ModeratedImage
) -> None:
    as_user(client, staff)
    changelist = client.get(reverse(f"{PREFIX}_changelist")).content.decode()
    change = client.get(url_for("change", flagged)).content.decode()
    assert reverse(f"{PREFIX}_review") not in changelist
    assert reverse(f"{PREFIX}_preview", args=[flagged.pk]) not in change
    assert "decide_one" not in change


def test_reviewers_get_links_to_the_queue_and_decision_buttons(
    client: Client, reviewer: User, flagged: ModeratedImage
) -> None:
    as_user(client, reviewer)
    changelist = client.get(reverse(f"{PREFIX}_changelist")).content.decode()
    change = client.get(url_for("change", flagged)).content.decode()
    assert reverse(f"{PREFIX}_review") in changelist
    assert reverse(f"{PREFIX}_dashboard") in changelist
    assert reverse(f"{PREFIX}_preview", args=[flagged.pk]) in change
    assert f'value="approve:{flagged.pk}"' in change
