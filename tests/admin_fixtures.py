"""Users, rows and a host-app admin site for the review UI tests.

Test modules load it with ``pytest_plugins = ["tests.admin_fixtures"]`` and use
only its fixtures (importing it as well would stop pytest rewriting its asserts).

Also a URLconf (``@pytest.mark.urls("tests.admin_fixtures")``) whose admin
site registers the test app's ``Photo`` and ``Profile`` the way a host project
would: with :class:`ModerationStatusMixin` and :class:`ModeratedImageInline`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.auth.models import Permission, User
from django.contrib.contenttypes.models import ContentType
from django.test import Client
from django.urls import path, reverse

from nsfw_moderation import notices
from nsfw_moderation.admin import (
    ModeratedImageAdmin,
    ModeratedImageInline,
    ModerationEventAdmin,
    ModerationStatusMixin,
)
from nsfw_moderation.appeals import file_appeal
from nsfw_moderation.models import Appeal, ModeratedImage, ModerationEvent, Status, Verdict
from tests.testapp.models import Photo, Profile

PASSWORD = "correct horse battery staple"


# --- A host project's admin ---------------------------------------------------

host_site = admin.AdminSite(name="admin")


class PhotoAdmin(ModerationStatusMixin, admin.ModelAdmin):
    list_display = ["title"]
    inlines = [ModeratedImageInline]


class ProfileAdmin(ModerationStatusMixin, admin.ModelAdmin):
    list_display = ["name"]
    inlines = [ModeratedImageInline]


host_site.register(Photo, PhotoAdmin)
host_site.register(Profile, ProfileAdmin)
host_site.register(ModeratedImage, ModeratedImageAdmin)
host_site.register(ModerationEvent, ModerationEventAdmin)
host_site.register(User)

urlpatterns = [path("admin/", host_site.urls)]


# --- Users --------------------------------------------------------------------


def create_user(username: str, *perms: str, staff: bool = True, superuser: bool = False) -> User:
    user = User.objects.create_user(
        username, password=PASSWORD, is_staff=staff, is_superuser=superuser
    )
    for perm in perms:
        app_label, codename = perm.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    return user


@pytest.fixture
def reviewer(db: None) -> User:
    return create_user("reviewer", "nsfw_moderation.review_moderatedimage")


@pytest.fixture
def staff(db: None) -> User:
    """Staff who may look at the rows but not review them."""
    return create_user("staff", "nsfw_moderation.view_moderatedimage", "testapp.view_photo")


@pytest.fixture
def superuser(db: None) -> User:
    return create_user("root", superuser=True)


# --- Rows ---------------------------------------------------------------------


def create_row(
    obj: Any = None,
    *,
    field_name: str = "image",
    verdict: str = Verdict.FLAGGED,
    status: str = Status.DONE,
    score: float | None = 0.9,
    model_name: str = "tests/colour",
    file_name: str = "photos/picture.png",
    **values: Any,
) -> ModeratedImage:
    """A row as the worker would leave it, without running the worker."""
    if obj is None:
        obj = Photo.objects.create(title="row")
    ModeratedImage.objects.filter(
        content_type=ContentType.objects.get_for_model(obj),
        object_id=str(obj.pk),
        field_name=field_name,
    ).delete()
    return ModeratedImage.objects.create(
        content_type=ContentType.objects.get_for_model(obj),
        object_id=str(obj.pk),
        field_name=field_name,
        file_name=file_name,
        verdict=verdict,
        status=status,
        score=score,
        model_name=model_name,
        **values,
    )


def appealed_blocked_sample(text: str = "It is a painting.") -> tuple[ModeratedImage, Appeal]:
    """A blocked audit sample of alice's photo, her appeal filed, and a reviewer to decide it.

    Call it inside ``moderation(OWNER="tests.owners.owner_of")``. Returns the
    row and the appeal; the reviewer is the user ``reviewer``.
    """
    owner = User.objects.create_user("alice")
    create_user("reviewer", "nsfw_moderation.review_moderatedimage")
    row = create_row(
        Photo.objects.create(title="alice"), verdict=Verdict.BLOCKED, audit=True, sha256="c" * 64
    )
    return row, file_appeal(notices.issue(row, automated=True), owner, text)


@pytest.fixture
def make_user(db: None) -> Callable[..., User]:
    return create_user


@pytest.fixture
def make_row(db: None) -> Callable[..., ModeratedImage]:
    return create_row


@pytest.fixture
def flagged(db: None) -> ModeratedImage:
    return create_row()


def queue(client: Client, **params: Any) -> Any:
    """The default admin site's review queue page, with ``params``; it must answer 200."""
    response = client.get(reverse("admin:nsfw_moderation_moderatedimage_review"), params)
    assert response.status_code == 200
    return response
