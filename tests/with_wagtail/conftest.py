"""The Wagtail suite, run as ``pytest tests/with_wagtail --ds=tests.wagtail_settings``.

``make pytest`` (and the PostgreSQL and Django 6 suites) run it so, after the
main suite; under any other settings these modules are not collected, since
Wagtail's apps are not installed there. Where Wagtail is not installed at all,
they skip.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest

SETTINGS = "tests.wagtail_settings"

if os.environ.get("DJANGO_SETTINGS_MODULE") != SETTINGS:
    collect_ignore_glob = ["test_*.py"]
else:
    pytest.importorskip("wagtail", reason="the Wagtail suite needs wagtail")


@pytest.fixture
def make_image(db: None, django_capture_on_commit_callbacks: Any) -> Callable[..., Any]:
    """A Wagtail image of one colour, uploaded and classified (red: unsafe, blue: safe)."""
    from wagtail.images.models import Image

    from tests.images import image_file

    def make(color: str = "red", *, classify: bool = True, title: str = "") -> Any:
        rgb = {"red": (255, 0, 0), "blue": (0, 0, 255)}[color]
        upload = image_file(f"{color}.png", color=rgb, size=(80, 60))
        with django_capture_on_commit_callbacks(execute=classify):
            image = Image.objects.create(title=title or color, file=upload)
        return image

    return make


@pytest.fixture
def editor(db: None) -> Any:
    """A member of Wagtail's "Editors" group: edits pages, uses images, may not review."""
    from django.contrib.auth.models import Group, User

    user = User.objects.create_user("editor", password="x")
    user.groups.add(Group.objects.get(name="Editors"))
    return user


@pytest.fixture
def moderator(db: None) -> Any:
    """An editor who also has the core's review permission (and nothing of Django's admin)."""
    from django.contrib.auth.models import Group, Permission, User

    user = User.objects.create_user("moderator", password="x")
    user.groups.add(Group.objects.get(name="Editors"))
    user.user_permissions.add(
        Permission.objects.get(
            content_type__app_label="nsfw_moderation", codename="review_moderatedimage"
        )
    )
    return user


@pytest.fixture
def home(db: None) -> Any:
    from wagtail.models import Page

    return Page.objects.get(depth=2)


@pytest.fixture(autouse=True)
def _fresh_caches() -> None:
    # Wagtail caches renditions by image id; ids repeat from one test to the next.
    from django.core.cache import caches

    for cache in caches.all():
        cache.clear()
