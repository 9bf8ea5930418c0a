"""The review pages on an admin site with another name, mounted beside the default one."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.auth.models import User
from django.core.files.base import ContentFile
from django.test import Client
from django.urls import path, reverse

from nsfw_moderation.admin import ModeratedImageAdmin, ModerationStatusMixin
from nsfw_moderation.models import ModeratedImage, Verdict
from tests.images import image_bytes
from tests.testapp.models import Photo

pytest_plugins = ["tests.admin_fixtures"]
pytestmark = [
    pytest.mark.django_db,
    pytest.mark.urls(__name__),
    pytest.mark.usefixtures("colour_backend"),
]

moderation_site = admin.AdminSite(name="moderation")


class PhotoAdmin(ModerationStatusMixin, admin.ModelAdmin):
    pass


moderation_site.register(ModeratedImage, ModeratedImageAdmin)
moderation_site.register(Photo, PhotoAdmin)

# The default site (which registers ModeratedImage too) stays mounted first.
urlpatterns = [path("admin/", admin.site.urls), path("moderation/", moderation_site.urls)]

PREFIX = "moderation:nsfw_moderation_moderatedimage"
LINK = re.compile(r'(?:href|src|action)="(/[^"]*)"')


@pytest.fixture
def client(client: Client, reviewer: User) -> Client:
    client.force_login(reviewer)
    return client


@pytest.fixture
def flagged_photo(django_capture_on_commit_callbacks: Any) -> Photo:
    # Red is unsafe to tests.backends.ColourBackend: classified as flagged on save.
    with django_capture_on_commit_callbacks(execute=True):
        photo = Photo.objects.create(image=ContentFile(image_bytes((255, 0, 0)), name="red.png"))
    assert row_of(photo).verdict == Verdict.FLAGGED
    return photo


def row_of(photo: Photo) -> ModeratedImage:
    return ModeratedImage.objects.of_object(photo, "image").get()


def links(response: Any) -> list[str]:
    assert response.status_code == 200
    return [
        url for url in LINK.findall(response.content.decode()) if not url.startswith("/static/")
    ]


def assert_stays_on_the_site(response: Any) -> None:
    found = links(response)
    assert found, "the page has links"
    # The admin's own "View site" link (site_url) is the one link off the admin.
    strays = [
        url
        for url in found
        if not url.startswith("/moderation/") and url != moderation_site.site_url
    ]
    assert strays == []


def test_the_site_mounts_every_review_view():
    names = ("review", "decide", "undo", "review_preferences", "dashboard", "changelist")
    assert all(reverse(f"{PREFIX}_{name}").startswith("/moderation/") for name in names)


def test_queue_preview_decision_and_dashboard_stay_on_that_site(client, flagged_photo):
    row = row_of(flagged_photo)
    queue = client.get(reverse(f"{PREFIX}_review"))
    assert_stays_on_the_site(queue)
    preview_path = reverse(f"{PREFIX}_preview", args=[row.pk])
    assert any(url.startswith(preview_path) for url in links(queue))
    # The host object links into this site's own Photo admin.
    assert reverse("moderation:testapp_photo_change", args=[flagged_photo.pk]) in links(queue)

    preview = client.get(reverse(f"{PREFIX}_preview", args=[row.pk]))
    assert preview.status_code == 200
    assert preview["X-Moderation-Preview"] == "image"

    decided = client.post(
        reverse(f"{PREFIX}_decide"), {"decide_one": f"reject:{row.pk}"}, follow=True
    )
    assert decided.redirect_chain == [(reverse(f"{PREFIX}_review"), 302)]
    assert_stays_on_the_site(decided)
    # The rejection's Undo posts to this site too.
    assert f'action="{reverse(f"{PREFIX}_undo")}"' in decided.content.decode()
    row.refresh_from_db()
    assert row.verdict == Verdict.REJECTED

    assert_stays_on_the_site(client.get(reverse(f"{PREFIX}_dashboard")))
    assert_stays_on_the_site(client.get(reverse(f"{PREFIX}_change", args=[row.pk])))
    assert_stays_on_the_site(client.get(reverse(f"{PREFIX}_changelist")))


def test_the_host_columns_link_into_that_site(client, superuser, flagged_photo):
    client.force_login(superuser)
    host_changelist = client.get(reverse("moderation:testapp_photo_changelist"))
    assert_stays_on_the_site(host_changelist)
    assert reverse(f"{PREFIX}_change", args=[row_of(flagged_photo).pk]) in links(host_changelist)


def test_a_host_object_missing_from_the_site_is_not_linked_elsewhere(client, flagged_photo):
    # The default site registers no Photo admin: the queue there must not link
    # the photo into the other site.
    queue = client.get(reverse("admin:nsfw_moderation_moderatedimage_review"))
    assert [url for url in links(queue) if url.startswith("/moderation/")] == []
