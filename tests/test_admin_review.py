"""The review UI as a reviewer sees it: queue, previews, decisions, dashboard, host admin."""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.contrib.contenttypes.models import ContentType
from django.core.files.base import ContentFile
from django.core.files.storage import Storage
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from PIL import Image

from nsfw_moderation import append_only
from nsfw_moderation.admin.moderation import PAGE_SIZE
from nsfw_moderation.models import ModeratedImage, ModerationEvent, Status, Verdict
from nsfw_moderation.previews import PREVIEW_SIZE
from nsfw_moderation.worker.tasks import classify
from tests.admin_fixtures import queue
from tests.images import image_bytes, red
from tests.testapp.models import Document, Photo, Profile

pytest_plugins = ["tests.admin_fixtures"]
pytestmark = pytest.mark.django_db

PREFIX = "admin:nsfw_moderation_moderatedimage"
MakeRow = Callable[..., ModeratedImage]


@pytest.fixture
def client(client: Client, reviewer: User) -> Client:
    client.force_login(reviewer)
    return client


def shown(response: Any) -> set[int]:
    return {card.row.pk for card in response.context["cards"]}


# --- 1. The queue --------------------------------------------------------------


def test_the_queue_shows_flagged_images_by_default(client: Client, make_row: MakeRow) -> None:
    flagged = make_row()
    make_row(verdict=Verdict.ALLOWED, score=0.1)
    make_row(verdict=Verdict.APPROVED)
    assert shown(queue(client)) == {flagged.pk}


def test_an_empty_verdict_filter_shows_every_verdict(client: Client, make_row: MakeRow) -> None:
    rows = [make_row(), make_row(verdict=Verdict.ALLOWED), make_row(verdict=Verdict.REJECTED)]
    assert shown(queue(client, verdict="")) == {row.pk for row in rows}


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"verdict": "approved"}, {"approved"}),
        ({"verdict": "", "status": "failed"}, {"failed"}),
        ({"score_min": "0.5", "score_max": "0.8"}, {"mid"}),
        ({"score_min": "0.85"}, {"high"}),
        ({"model_name": "other/model"}, {"other"}),
    ],
)
def test_filters(
    client: Client, make_row: MakeRow, params: dict[str, str], expected: set[str]
) -> None:
    rows = {
        "high": make_row(score=0.95),
        "mid": make_row(score=0.6),
        "approved": make_row(verdict=Verdict.APPROVED),
        "failed": make_row(status=Status.FAILED, score=None),
        "other": make_row(score=0.3, model_name="other/model"),
    }
    got = shown(queue(client, **params))
    assert got == {rows[name].pk for name in expected}


def test_filter_by_content_type(client: Client, make_row: MakeRow) -> None:
    photo_row = make_row()
    profile_row = make_row(Profile.objects.create(), field_name="avatar")
    ct = ContentType.objects.get_for_model(Profile)
    assert shown(queue(client, content_type=ct.pk)) == {profile_row.pk}
    assert photo_row.pk in shown(queue(client))


def test_filter_by_upload_date(client: Client, make_row: MakeRow) -> None:
    old, new = make_row(), make_row()
    ModeratedImage.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=10))
    since = (timezone.now() - timedelta(days=1)).date().isoformat()
    until = (timezone.now() - timedelta(days=5)).date().isoformat()
    assert shown(queue(client, date_from=since)) == {new.pk}
    assert shown(queue(client, date_to=until)) == {old.pk}


def test_an_invalid_filter_is_reported_and_ignored(client: Client, make_row: MakeRow) -> None:
    row = make_row()
    response = queue(client, score_min="lots")
    assert shown(response) == {row.pk}
    assert response.context["form"].errors["score_min"]


def test_ordering(client: Client, make_row: MakeRow) -> None:
    low, high = make_row(score=0.6), make_row(score=0.99)
    by_score = [card.row.pk for card in queue(client, order="score").context["cards"]]
    oldest = [card.row.pk for card in queue(client).context["cards"]]
    assert by_score == [high.pk, low.pk]
    assert oldest == [low.pk, high.pk]


def test_the_queue_is_paginated(client: Client, make_row: MakeRow) -> None:
    for _ in range(PAGE_SIZE + 3):
        make_row()
    first, second = queue(client), queue(client, p=2)
    assert len(first.context["cards"]) == PAGE_SIZE
    assert len(second.context["cards"]) == 3
    assert "p=2" in first.content.decode()


def test_pagination_keeps_the_filters(client: Client, make_row: MakeRow) -> None:
    for _ in range(PAGE_SIZE + 1):
        make_row()
    html = queue(client, order="score").content.decode()
    assert "order=score&amp;p=2" in html


def test_a_card_shows_score_verdict_model_field_and_links(
    client: Client, make_row: MakeRow
) -> None:
    row = make_row(score=0.87654, model_name="tests/colour")
    html = queue(client).content.decode()
    assert "0.877" in html
    assert "Flagged" in html
    assert "tests/colour" in html
    assert row.field_name in html
    assert reverse(f"{PREFIX}_change", args=[row.pk]) in html
    assert reverse(f"{PREFIX}_preview", args=[row.pk]) in html
    assert f'value="approve:{row.pk}"' in html
    assert f'value="reject:{row.pk}"' in html


@pytest.mark.urls("tests.admin_fixtures")
def test_a_card_links_to_the_objects_own_admin_page(client: Client, make_row: MakeRow) -> None:
    photo = Photo.objects.create(title="cat")
    make_row(photo)
    html = queue(client).content.decode()
    assert reverse("admin:testapp_photo_change", args=[photo.pk]) in html


# --- 2. Blurred thumbnails and the display preferences -------------------------------


def test_thumbnails_are_blurred_by_default(client: Client, make_row: MakeRow) -> None:
    make_row()
    html = queue(client).content.decode()
    assert 'class="nsfw-reveal-toggle"' in html
    assert 'class="nsfw-reveal-toggle" id' in html
    assert "checked>" not in html.split('class="nsfw-reveal-toggle"')[1].split(">")[0] + ">"
    assert "is-grayscale" not in html


def test_reveal_all_and_grayscale_are_remembered(client: Client, make_row: MakeRow) -> None:
    make_row()
    url = reverse(f"{PREFIX}_review_preferences")
    response = client.post(url, {"reveal_all": "on", "grayscale": "on", "next": "/admin/"})
    assert response.status_code == 302
    assert response["Location"] == "/admin/"
    response = queue(client)
    assert response.context["preferences"] == {"reveal_all": True, "grayscale": True}
    html = response.content.decode()
    toggle = html.split('class="nsfw-reveal-toggle"')[1].split(">")[0]
    assert "checked" in toggle
    assert "nsfw-grid is-grayscale" in html


def test_preferences_can_be_switched_off_again(client: Client) -> None:
    url = reverse(f"{PREFIX}_review_preferences")
    client.post(url, {"reveal_all": "on"})
    client.post(url, {})
    assert queue(client).context["preferences"] == {"reveal_all": False, "grayscale": False}


# --- 2. Previews ----------------------------------------------------------------


def preview(client: Client, row: ModeratedImage) -> Any:
    return client.get(reverse(f"{PREFIX}_preview", args=[row.pk]))


def classified(obj: Any) -> ModeratedImage:
    """``obj``'s row, once the worker has classified it (and stored its preview)."""
    classify()
    return row_for(obj)


def assert_safe_raster(response: Any) -> Image.Image:
    assert response.status_code == 200
    assert response["Content-Type"] in ("image/jpeg", "image/webp")
    assert response["X-Content-Type-Options"] == "nosniff"
    assert {part.strip() for part in response["Cache-Control"].split(",")} >= {
        "private",
        "no-store",
    }
    image = Image.open(io.BytesIO(response.content))
    image.load()
    assert image.format in ("JPEG", "WEBP")
    return image


def row_for(obj: Any) -> ModeratedImage:
    return ModeratedImage.objects.get(
        content_type=ContentType.objects.get_for_model(obj), object_id=str(obj.pk)
    )


def test_a_preview_is_a_re_encoded_thumbnail(client: Client) -> None:
    original = image_bytes((255, 0, 0), size=(64, 48), fmt="PNG")
    photo = Photo.objects.create(image=ContentFile(original, name="red.png"))
    response = preview(client, classified(photo))
    image = assert_safe_raster(response)
    assert response.content != original
    assert response["X-Moderation-Preview"] == "image"
    assert image.size == (64, 48)
    red_, green, blue = image.convert("RGB").getpixel((32, 24))
    assert red_ > 200 and green < 60 and blue < 60  # noqa: PT018 (one colour)


def test_a_preview_is_bounded_in_size(client: Client) -> None:
    big = image_bytes((0, 0, 255), size=(2000, 1200), fmt="PNG")
    photo = Photo.objects.create(image=ContentFile(big, name="big.png"))
    image = assert_safe_raster(preview(client, classified(photo)))
    assert max(image.size) == PREVIEW_SIZE


def test_a_preview_drops_the_uploads_metadata(client: Client) -> None:
    marker = b"private-marker-from-the-upload"
    upload = image_bytes((10, 200, 10), fmt="JPEG", comment=marker)
    assert marker in upload
    photo = Photo.objects.create(image=ContentFile(upload, name="green.jpg"))
    response = preview(client, classified(photo))
    assert_safe_raster(response)
    assert response["X-Moderation-Preview"] == "image"
    assert marker not in response.content


SVG = (
    b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
    b"<script>alert(document.cookie)</script><rect width='10' height='10'/></svg>"
)
HTML = b"<!doctype html><html><body><script>alert(document.cookie)</script></body></html>"


def test_an_svg_upload_is_never_served_as_svg(client: Client) -> None:
    document = Document.objects.create(file=ContentFile(SVG, name="drawing.svg"))
    response = preview(client, classified(document))
    assert_safe_raster(response)
    assert response["X-Moderation-Preview"] == "placeholder"
    assert b"<svg" not in response.content
    assert b"<script" not in response.content


def test_an_html_upload_disguised_as_png_is_never_served(client: Client) -> None:
    photo = Photo.objects.create(image=ContentFile(HTML, name="innocent.png"))
    response = preview(client, classified(photo))
    assert_safe_raster(response)
    assert response["X-Moderation-Preview"] == "placeholder"
    assert b"<script" not in response.content


def test_a_row_not_classified_yet_gets_a_placeholder(client: Client) -> None:
    photo = Photo.objects.create(image=ContentFile(image_bytes(), name="waiting.png"))
    response = preview(client, row_for(photo))
    assert_safe_raster(response)
    assert response["X-Moderation-Preview"] == "placeholder"


def test_the_preview_view_never_opens_the_upload(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    photo = Photo.objects.create(image=ContentFile(image_bytes((255, 0, 0)), name="red.png"))
    row = classified(photo)
    # The file is gone, and any attempt to open or decode one would fail the test.
    photo.image.storage.delete(photo.image.name)
    opened: list[str] = []
    monkeypatch.setattr(Storage, "open", lambda self, name, *a, **k: opened.append(name))
    monkeypatch.setattr(Image, "open", lambda *a, **k: opened.append("Image.open"))
    response = preview(client, row)
    assert response["X-Moderation-Preview"] == "image"
    assert opened == []
    monkeypatch.undo()
    assert_safe_raster(response)


def test_a_preview_is_of_the_current_file_only(client: Client) -> None:
    photo = Photo.objects.create(image=ContentFile(image_bytes((255, 0, 0)), name="red.png"))
    classified(photo)
    photo.image = ContentFile(image_bytes((0, 0, 255)), name="blue.png")
    photo.save()
    # The row now holds the new file, not classified yet: the old picture is not it.
    assert preview(client, row_for(photo))["X-Moderation-Preview"] == "placeholder"
    response = preview(client, classified(photo))
    red_, _, blue = assert_safe_raster(response).convert("RGB").getpixel((10, 10))
    assert blue > 200 and red_ < 60  # noqa: PT018 (one colour)


def test_a_preview_of_a_row_whose_object_is_gone_gets_a_placeholder(
    client: Client, make_row: MakeRow
) -> None:
    row = make_row()
    Photo.objects.filter(pk=row.object_id).delete()
    row = ModeratedImage.objects.create(
        content_type=row.content_type, object_id="424242", field_name="image", file_name="x.png"
    )
    assert preview(client, row)["X-Moderation-Preview"] == "placeholder"


# --- 3. Decisions ------------------------------------------------------------------


def decide(client: Client, **data: Any) -> Any:
    return client.post(reverse(f"{PREFIX}_decide"), data)


def test_approving_one_image(client: Client, reviewer: User, make_row: MakeRow) -> None:
    row = make_row()
    response = decide(client, decide_one=f"approve:{row.pk}", note="fine")
    assert response.status_code == 302
    row.refresh_from_db()
    assert (row.verdict, row.reviewed_by) == (Verdict.APPROVED, reviewer)
    event = row.events.get(kind=ModerationEvent.Kind.REVIEWED)
    assert (event.verdict_before, event.verdict_after, event.note) == (
        "flagged",
        "approved",
        "fine",
    )


def test_rejecting_many_images_at_once(client: Client, make_row: MakeRow) -> None:
    chosen = [make_row(), make_row()]
    other = make_row()
    response = decide(client, decision="reject", ids=[r.pk for r in chosen], note="spam")
    assert response.status_code == 302
    verdicts = dict(ModeratedImage.objects.values_list("pk", "verdict"))
    assert [verdicts[r.pk] for r in chosen] == ["rejected", "rejected"]
    assert verdicts[other.pk] == "flagged"
    assert ModerationEvent.objects.filter(kind="reviewed", note="spam").count() == 2


def test_a_per_image_button_ignores_the_ticked_boxes(client: Client, make_row: MakeRow) -> None:
    one, ticked = make_row(), make_row()
    decide(client, decide_one=f"approve:{one.pk}", ids=[ticked.pk], decision="reject")
    assert dict(ModeratedImage.objects.values_list("pk", "verdict")) == {
        one.pk: "approved",
        ticked.pk: "flagged",
    }


def test_a_decision_reports_what_it_did(client: Client, make_row: MakeRow) -> None:
    rows = [make_row(), make_row(status=Status.QUEUED, verdict=Verdict.PENDING)]
    response = decide(client, decision="approve", ids=[r.pk for r in rows])
    messages = [str(m) for m in response.wsgi_request._messages]
    assert "1 image marked Approved." in messages
    assert any("not decided" in m for m in messages)


@pytest.mark.parametrize(
    "data",
    [
        {"decision": "delete", "ids": ["1"]},
        {"decide_one": "allow:1"},
        {"decision": "approve"},
        {"decide_one": "approve:not-a-number"},
    ],
)
def test_bad_decisions_change_nothing(
    client: Client, make_row: MakeRow, data: dict[str, Any]
) -> None:
    row = make_row()
    data = {k: [str(row.pk)] if k == "ids" else v for k, v in data.items()}
    assert decide(client, **data).status_code == 302
    row.refresh_from_db()
    assert row.verdict == Verdict.FLAGGED
    assert not ModerationEvent.objects.exists()


def test_a_decision_returns_to_the_queue_page_it_came_from(
    client: Client, make_row: MakeRow
) -> None:
    row = make_row()
    back = reverse(f"{PREFIX}_review") + "?order=score&p=2"
    response = decide(client, decide_one=f"approve:{row.pk}", next=back)
    assert response["Location"] == back


def test_a_decision_never_redirects_off_site(client: Client, make_row: MakeRow) -> None:
    row = make_row()
    response = decide(client, decide_one=f"approve:{row.pk}", next="https://evil.example/")
    assert response["Location"] == reverse(f"{PREFIX}_review")


def test_events_are_shown_on_the_rows_page(client: Client, make_row: MakeRow) -> None:
    row = make_row()
    decide(client, decide_one=f"reject:{row.pk}", note="first look")
    decide(client, decide_one=f"approve:{row.pk}", note="second look")
    html = client.get(reverse(f"{PREFIX}_change", args=[row.pk])).content.decode()
    assert "first look" in html
    assert "second look" in html
    assert html.count("Reviewed") >= 2


@pytest.mark.django_db(transaction=True)
def test_reviewing_an_upload_the_pipeline_flagged(
    colour_backend: None, client: Client, reviewer: User
) -> None:
    photo = Photo.objects.create(image=red())
    row = row_for(photo)
    assert row.verdict == Verdict.FLAGGED
    assert shown(queue(client)) == {row.pk}
    assert_safe_raster(preview(client, row))
    decide(client, decide_one=f"reject:{row.pk}")
    row.refresh_from_db()
    assert row.verdict == Verdict.REJECTED
    assert shown(queue(client)) == set()


# --- Escaping -------------------------------------------------------------------------

HOSTILE = '<img src=x onerror="alert(1)">'


def test_file_names_are_escaped_in_the_queue(client: Client, make_row: MakeRow) -> None:
    make_row(file_name=f"photos/{HOSTILE}.png")
    html = queue(client).content.decode()
    assert HOSTILE not in html
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in html


def test_notes_are_escaped_on_the_rows_page(client: Client, make_row: MakeRow) -> None:
    row = make_row(file_name=f"photos/{HOSTILE}.png")
    decide(client, decide_one=f"approve:{row.pk}", note=HOSTILE)
    html = client.get(reverse(f"{PREFIX}_change", args=[row.pk])).content.decode()
    assert HOSTILE not in html
    assert "&lt;img src=x" in html


# --- 6. Dashboard ---------------------------------------------------------------------


def dashboard(client: Client) -> Any:
    response = client.get(reverse(f"{PREFIX}_dashboard"))
    assert response.status_code == 200
    return response


def event(row: ModeratedImage, kind: str, after: str, age: timedelta) -> None:
    made = ModerationEvent.objects.create(
        image=row, kind=kind, verdict_before="pending", verdict_after=after
    )
    # Back-dated past the database's append-only triggers, as only a test may.
    with append_only.lifted():
        ModerationEvent._base_manager.filter(pk=made.pk).update(created_at=timezone.now() - age)


def test_dashboard_counts(client: Client, make_row: MakeRow) -> None:
    make_row(score=0.95)
    make_row(score=0.55)
    make_row(verdict=Verdict.ALLOWED, score=0.05)
    queued = make_row(status=Status.QUEUED, verdict=Verdict.PENDING, score=None)
    make_row(status=Status.PROCESSING, verdict=Verdict.PENDING, score=None)
    ModeratedImage.objects.filter(pk=queued.pk).update(
        updated_at=timezone.now() - timedelta(hours=3)
    )
    context = dashboard(client).context
    verdicts = {value: n for value, _, n in context["verdict_counts"]}
    statuses = {value: n for value, _, n in context["status_counts"]}
    assert (verdicts["flagged"], verdicts["allowed"], verdicts["pending"]) == (2, 1, 2)
    assert (statuses["done"], statuses["queued"], statuses["processing"]) == (3, 1, 1)
    assert context["queue_depth"] == 2
    assert context["awaiting_review"] == 2
    assert timedelta(hours=3) <= context["oldest_queued_age"] < timedelta(hours=3, minutes=5)


def test_dashboard_with_nothing_queued(client: Client) -> None:
    context = dashboard(client).context
    assert context["queue_depth"] == 0
    assert context["oldest_queued_age"] is None


def test_dashboard_throughput_counts_the_last_24_hours(client: Client, make_row: MakeRow) -> None:
    row = make_row()
    event(row, "classified", "flagged", timedelta(hours=1))
    event(row, "classified", "allowed", timedelta(hours=23))
    event(row, "classified", "allowed", timedelta(hours=25))
    event(row, "failed", "flagged", timedelta(hours=2))
    event(row, "reviewed", "approved", timedelta(minutes=5))
    context = dashboard(client).context
    assert (context["classified_24h"], context["failed_24h"], context["reviewed_24h"]) == (2, 1, 1)


def test_dashboard_score_histogram(client: Client, make_row: MakeRow) -> None:
    for score in (0.0, 0.05, 0.55, 0.99, 1.0):
        make_row(score=score)
    make_row(score=None, status=Status.FAILED)
    histogram = dashboard(client).context["score_histogram"]
    assert len(histogram) == 10
    assert [n for _, n in histogram] == [2, 0, 0, 0, 0, 1, 0, 0, 0, 2]
    assert histogram[0][0] == "0.0–0.1"


def test_dashboard_flagged_per_day(client: Client, make_row: MakeRow) -> None:
    row = make_row()
    event(row, "classified", "flagged", timedelta(minutes=1))
    event(row, "classified", "flagged", timedelta(days=2))
    event(row, "classified", "flagged", timedelta(days=2, minutes=1))
    event(row, "classified", "allowed", timedelta(days=2))
    event(row, "classified", "flagged", timedelta(days=40))
    days = dashboard(client).context["flagged_per_day"]
    assert len(days) == 30
    assert days[-1][1] == 1
    assert days[-3][1] == 2
    assert sum(n for _, n in days) == 3


def test_dashboard_draws_inline_svg_without_external_assets(
    client: Client, make_row: MakeRow
) -> None:
    make_row(score=0.7)
    html = dashboard(client).content.decode()
    assert html.count("<svg") >= 4
    assert "<rect" in html
    assert "cdn" not in html.lower()
    assert 'src="http' not in html
    assert 'href="http' not in html.replace('xmlns="http', "")


# --- 5. Host apps: changelist column and inline -----------------------------------------


@pytest.mark.urls("tests.admin_fixtures")
def test_the_host_changelist_shows_each_fields_verdict(
    admin_client: Client, make_row: MakeRow
) -> None:
    profile = Profile.objects.create(name="ada")
    avatar = make_row(profile, field_name="avatar", score=0.91)
    make_row(profile, field_name="banner", verdict=Verdict.ALLOWED, score=0.02)
    html = admin_client.get(reverse("admin:testapp_profile_changelist")).content.decode()
    assert "avatar: Flagged 0.91" in html
    assert "banner: Allowed 0.02" in html
    assert reverse(f"{PREFIX}_change", args=[avatar.pk]) in html


@pytest.mark.urls("tests.admin_fixtures")
def test_the_host_changelist_column_has_no_n_plus_one(
    admin_client: Client, make_row: MakeRow
) -> None:
    def queries(count: int) -> int:
        for _ in range(count):
            make_row(Photo.objects.create(title="p"))
        with CaptureQueriesContext(connection) as captured:
            response = admin_client.get(reverse("admin:testapp_photo_changelist"))
        assert response.status_code == 200
        return len(captured)

    assert queries(1) == queries(5)


@pytest.mark.urls("tests.admin_fixtures")
def test_the_host_changelist_marks_files_not_yet_seen(admin_client: Client) -> None:
    Photo.objects.create(title="empty")
    html = admin_client.get(reverse("admin:testapp_photo_changelist")).content.decode()
    assert "image: –" in html


@pytest.mark.urls("tests.admin_fixtures")
def test_the_host_change_page_has_a_read_only_moderation_inline(
    admin_client: Client, make_row: MakeRow
) -> None:
    photo = Photo.objects.create(title="cat")
    row = make_row(photo, score=0.87)
    html = admin_client.get(reverse("admin:testapp_photo_change", args=[photo.pk])).content.decode()
    assert "Flagged" in html
    assert "0.87" in html
    assert reverse(f"{PREFIX}_change", args=[row.pk]) in html
    assert "moderatedimage-content_type-object_id-0-verdict" not in html  # not editable
