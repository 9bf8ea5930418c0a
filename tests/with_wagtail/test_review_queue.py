"""The review queue in Wagtail's admin: a site with no Django admin URLs reviews there."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import NoReverseMatch, reverse
from wagtail.images.views.serve import generate_image_url

from nsfw_moderation.models import ModeratedImage, ModerationEvent, Verdict

pytestmark = pytest.mark.django_db

QUEUE = "/cms/image-moderation/"
DECIDE = "/cms/image-moderation/decide/"
DASHBOARD = "/cms/image-moderation/dashboard/"


def denied(response: Any) -> bool:
    """Wagtail's answer to PermissionDenied in its admin: back home, with a message."""
    return response.status_code == 302 and response["Location"] == "/cms/"


def row_of(image: Any) -> ModeratedImage:
    return ModeratedImage.objects.of_object(image, "file").get()


def test_no_django_admin_urls_are_mounted() -> None:
    with pytest.raises(NoReverseMatch):
        reverse("admin:index")


def test_the_menu_shows_the_queue_to_moderators_only(
    client: Client, moderator: Any, editor: Any
) -> None:
    client.force_login(moderator)
    assert QUEUE in client.get("/cms/").content.decode()
    client.force_login(editor)
    assert QUEUE not in client.get("/cms/").content.decode()


@pytest.mark.parametrize("url", [QUEUE, DASHBOARD])
def test_editors_may_not_open_the_pages(client: Client, editor: Any, url: str) -> None:
    client.force_login(editor)
    assert denied(client.get(url))


def test_anonymous_users_are_sent_to_wagtails_login(client: Client) -> None:
    response = client.get(QUEUE)
    assert response.status_code == 302
    assert response["Location"].startswith("/cms/login/")


def test_the_queue_shows_flagged_images_with_blurred_previews(
    client: Client, moderator: Any, make_image: Any
) -> None:
    red, blue = make_image("red"), make_image("blue")
    client.force_login(moderator)
    response = client.get(QUEUE)
    assert response.status_code == 200
    assert response["X-Frame-Options"] == "DENY"
    assert [card.row.pk for card in response.context["cards"]] == [row_of(red).pk]
    html = response.content.decode()
    assert 'class="nsfw-reveal-toggle"' in html  # blurred until revealed
    assert f"/cms/images/{red.pk}/" in html  # the image's Wagtail page
    preview = client.get(response.context["cards"][0].preview_url)
    assert preview.status_code == 200
    assert preview["Content-Type"] == "image/jpeg"
    assert preview["X-Moderation-Preview"] in {"image", "placeholder"}
    assert f'data-pk="{row_of(blue).pk}"' not in html


def test_previews_need_the_permission(client: Client, editor: Any, make_image: Any) -> None:
    row = row_of(make_image("red"))
    client.force_login(editor)
    assert denied(client.get(f"/cms/image-moderation/{row.pk}/preview/"))


def test_a_moderator_approves_and_the_image_is_served(
    client: Client, moderator: Any, make_image: Any
) -> None:
    red = make_image("red")
    row = row_of(red)
    client.force_login(moderator)
    response = client.post(
        DECIDE, {"decide_one": f"approve:{row.pk}", "seen": f"{row.pk}:{row.sha256}"}
    )
    assert response.status_code == 302
    assert response["Location"] == QUEUE
    row.refresh_from_db()
    assert (row.verdict, row.reviewed_by) == (Verdict.APPROVED, moderator)
    assert ModerationEvent.objects.filter(verdict_after=Verdict.APPROVED).count() == 1
    client.logout()
    assert client.get(generate_image_url(red, "width-40")).status_code == 200


def test_a_moderator_rejects_in_bulk_with_notes(
    client: Client, moderator: Any, make_image: Any
) -> None:
    rows = [row_of(make_image("red")) for _ in range(2)]
    client.force_login(moderator)
    client.post(
        DECIDE,
        {
            "decision": "reject",
            "ids": [row.pk for row in rows],
            "seen": [f"{row.pk}:{row.sha256}" for row in rows],
            "note": "for colleagues",
        },
    )
    assert {row.verdict for row in ModeratedImage.objects.filter(pk__in=[r.pk for r in rows])} == {
        Verdict.REJECTED
    }
    notes = ModerationEvent.objects.filter(verdict_after=Verdict.REJECTED).values_list(
        "note", flat=True
    )
    assert list(notes).count("for colleagues") == 2
    messages = [str(m) for m in client.get(QUEUE).context["messages"]]
    assert messages == ["2 images marked Rejected."]


def test_a_changed_file_is_not_decided(client: Client, moderator: Any, make_image: Any) -> None:
    row = row_of(make_image("red"))
    client.force_login(moderator)
    client.post(DECIDE, {"decide_one": f"reject:{row.pk}", "seen": f"{row.pk}:{'0' * 64}"})
    row.refresh_from_db()
    assert row.verdict == Verdict.FLAGGED


def test_editors_may_not_decide(client: Client, editor: Any, make_image: Any) -> None:
    row = row_of(make_image("red"))
    client.force_login(editor)
    assert denied(client.post(DECIDE, {"decide_one": f"approve:{row.pk}"}))
    row.refresh_from_db()
    assert row.verdict == Verdict.FLAGGED


def test_the_dashboard_counts(client: Client, moderator: Any, make_image: Any) -> None:
    make_image("red")
    make_image("blue")
    client.force_login(moderator)
    response = client.get(DASHBOARD)
    assert response.status_code == 200
    assert response.context["awaiting_review"] == 1
    assert 'data-stat="awaiting_review">1<' in response.content.decode()


def test_wagtails_group_editor_offers_the_review_permission() -> None:
    from wagtail import hooks

    offered = {
        f"{permission.content_type.app_label}.{permission.codename}"
        for hook in hooks.get_hooks("register_permissions")
        for permission in hook()
    }
    assert "nsfw_moderation.review_moderatedimage" in offered
