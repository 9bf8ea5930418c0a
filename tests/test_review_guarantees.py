"""Review decisions apply to what the moderator saw, and to what they may see."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib import admin
from django.contrib.auth.models import User
from django.core.files.base import ContentFile
from django.db.models import QuerySet
from django.http import HttpRequest
from django.test import Client
from django.urls import path, reverse

from nsfw_moderation import review
from nsfw_moderation.admin import ModeratedImageAdmin
from nsfw_moderation.models import ModeratedImage, Verdict
from tests.conftest import moderation
from tests.images import image_bytes
from tests.testapp.models import Photo

pytest_plugins = ["tests.admin_fixtures"]
pytestmark = [
    pytest.mark.django_db,
    pytest.mark.urls(__name__),
    pytest.mark.usefixtures("colour_backend"),
]


class TenantAdmin(ModeratedImageAdmin):
    """Moderators of tenant "a" see and decide the images of tenant "a" only."""

    def get_queryset(self, request: HttpRequest) -> QuerySet[ModeratedImage]:
        photos = Photo.objects.filter(title="a").values_list("pk", flat=True)
        return super().get_queryset(request).filter(object_id__in=[str(pk) for pk in photos])


tenant_site = admin.AdminSite(name="tenant")
tenant_site.register(ModeratedImage, TenantAdmin)
urlpatterns = [path("admin/", admin.site.urls), path("tenant/", tenant_site.urls)]

ADMIN = "admin:nsfw_moderation_moderatedimage"
TENANT = "tenant:nsfw_moderation_moderatedimage"


@pytest.fixture
def client(client: Client, reviewer: User) -> Client:
    client.force_login(reviewer)
    return client


@pytest.fixture
def upload(django_capture_on_commit_callbacks: Any) -> Any:
    def upload(color: tuple[int, int, int], title: str = "", photo: Photo | None = None) -> Photo:
        image = ContentFile(image_bytes(color), name="picture.png")
        with django_capture_on_commit_callbacks(execute=True):
            if photo is None:
                return Photo.objects.create(title=title, image=image)
            photo.image = image
            photo.save()
            return photo

    return upload


def row_of(photo: Photo) -> ModeratedImage:
    return ModeratedImage.objects.of_object(photo, "image").get()


def messages_of(response: Any) -> list[str]:
    return [str(message) for message in response.context["messages"]]


# --- Decisions bound to the bytes shown ------------------------------------------------


def test_a_decision_on_bytes_that_changed_since_the_page_was_shown_is_refused(client, upload):
    photo = upload((255, 0, 0))
    queue = client.get(reverse(f"{ADMIN}_review"))
    shown = row_of(photo)
    assert f'name="seen" value="{shown.pk}:{shown.sha256}"' in queue.content.decode()

    upload((250, 10, 0), photo=photo)  # replaced and classified (flagged) meanwhile
    assert row_of(photo).sha256 != shown.sha256

    response = client.post(
        reverse(f"{ADMIN}_decide"),
        {"decide_one": f"approve:{shown.pk}", "seen": f"{shown.pk}:{shown.sha256}"},
        follow=True,
    )
    assert row_of(photo).verdict == Verdict.FLAGGED
    assert any("changed after the page was shown" in m for m in messages_of(response))


def test_a_decision_on_the_bytes_shown_goes_through(client, upload):
    row = row_of(upload((255, 0, 0)))
    client.post(
        reverse(f"{ADMIN}_decide"),
        {"decision": "reject", "ids": [row.pk], "seen": f"{row.pk}:{row.sha256}"},
    )
    row.refresh_from_db()
    assert row.verdict == Verdict.REJECTED


def test_a_preview_of_other_bytes_than_the_page_showed_is_not_served(client, upload):
    photo = upload((255, 0, 0))
    old = row_of(photo).sha256
    upload((250, 10, 0), photo=photo)
    url = reverse(f"{ADMIN}_preview", args=[row_of(photo).pk])
    assert client.get(url, {"sha256": old})["X-Moderation-Preview"] == "changed"
    assert client.get(url, {"sha256": row_of(photo).sha256})["X-Moderation-Preview"] == "image"


# --- Scoped review --------------------------------------------------------------------------


def test_the_review_pages_go_through_the_admins_queryset(client, upload):
    mine, theirs = upload((255, 0, 0), title="a"), upload((255, 0, 0), title="b")
    another = row_of(upload((255, 0, 0), title="b"))
    review.approve(another)  # decided by the other tenant's moderators
    mine_row, their_row = row_of(mine), row_of(theirs)

    queue = client.get(reverse(f"{TENANT}_review"))
    cards = [card.row.pk for card in queue.context["cards"]]
    assert cards == [mine_row.pk]

    assert client.get(reverse(f"{TENANT}_preview", args=[their_row.pk])).status_code == 404
    assert client.get(reverse(f"{TENANT}_preview", args=[mine_row.pk])).status_code == 200

    client.post(
        reverse(f"{TENANT}_decide"),
        {"decision": "reject", "ids": [mine_row.pk, their_row.pk]},
    )
    mine_row.refresh_from_db()
    their_row.refresh_from_db()
    assert (mine_row.verdict, their_row.verdict) == (Verdict.REJECTED, Verdict.FLAGGED)

    dashboard = client.get(reverse(f"{TENANT}_dashboard"))
    counts = {value: n for value, _label, n in dashboard.context["verdict_counts"]}
    assert (counts[Verdict.REJECTED], counts[Verdict.FLAGGED]) == (1, 0)
    assert dashboard.context["reviewed_24h"] == 1


class OwnRowsOnly(ModeratedImageAdmin):
    """Everyone sees every row, but may only decide the rows of photos titled "a"."""

    def has_review_permission(
        self, request: HttpRequest, obj: ModeratedImage | None = None
    ) -> bool:
        allowed = super().has_review_permission(request, obj)
        if obj is None or not allowed:
            return allowed
        return Photo.objects.filter(pk=obj.object_id, title="a").exists()


def test_the_per_row_review_permission_is_asked_for_each_decision(client, upload):
    mine, theirs = row_of(upload((255, 0, 0), title="a")), row_of(upload((255, 0, 0), title="b"))
    site = admin.AdminSite(name="own")
    model_admin = OwnRowsOnly(ModeratedImage, site)
    request = HttpRequest()
    request.user = User.objects.get(username="reviewer")
    request._messages = type("Sink", (), {"add": lambda *a, **k: None})()  # type: ignore[attr-defined]
    decided = model_admin._decide(request, ModeratedImage.objects.all(), Verdict.REJECTED)
    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert decided == 1
    assert (mine.verdict, theirs.verdict) == (Verdict.REJECTED, Verdict.FLAGGED)

    # Nor may they read the other rows' pages, or send them back to the worker.
    assert model_admin.has_view_permission(request, mine)
    assert not model_admin.has_view_permission(request, theirs)
    with moderation(QUEUE="django_q"):
        model_admin.reclassify(request, ModeratedImage.objects.all())
    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert (mine.verdict, theirs.verdict) == (Verdict.PENDING, Verdict.FLAGGED)
