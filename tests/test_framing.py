"""Review pages refuse to be framed on their own, without the host's XFrameOptionsMiddleware."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

pytest_plugins = ["tests.admin_fixtures"]
pytestmark = pytest.mark.django_db

PREFIX = "admin:nsfw_moderation_moderatedimage"


def test_the_test_settings_have_no_framing_middleware() -> None:
    assert "django.middleware.clickjacking.XFrameOptionsMiddleware" not in settings.MIDDLEWARE


@pytest.mark.parametrize(
    ("view", "with_row"),
    [
        ("review", False),
        ("dashboard", False),
        ("changelist", False),
        ("preview", True),
        ("change", True),
        ("history", True),
    ],
)
def test_review_pages_deny_framing(
    client: Client, superuser: User, make_row: object, view: str, with_row: bool
) -> None:
    client.force_login(superuser)
    args = [make_row().pk] if with_row else []  # type: ignore[operator]
    response = client.get(reverse(f"{PREFIX}_{view}", args=args))
    assert response.status_code == 200
    assert response["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in response["Content-Security-Policy"]


def test_a_preview_keeps_its_own_policy_too(
    client: Client, superuser: User, make_row: object
) -> None:
    client.force_login(superuser)
    response = client.get(reverse(f"{PREFIX}_preview", args=[make_row().pk]))  # type: ignore[operator]
    assert response["Content-Security-Policy"] == (
        "default-src 'none'; sandbox; frame-ancestors 'none'"
    )
