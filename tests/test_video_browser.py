"""A video's strip of frames in headless Chromium: blurred, revealed with the card, accessible."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.files.base import ContentFile

pytest.importorskip("av")
pytest.importorskip("playwright")

from nsfw_moderation import registry
from nsfw_moderation.models import ModeratedImage, Verdict, VideoFrame
from tests import videos
from tests.test_browser import (  # the harness: Debian's chromium, a logged-in moderator
    CHANGELIST,
    CHROMIUM,
    axe_source,
    browser,
    page,
    serious_violations,
)
from tests.testapp.models import Document

pytest_plugins = ["tests.admin_fixtures"]
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium"),
    pytest.mark.django_db(transaction=True),
]
__all__ = ["axe_source", "browser", "page"]


def strip_filters(page: Any, pk: int) -> list[str]:
    return page.eval_on_selector_all(
        f'.nsfw-card[data-pk="{pk}"] .nsfw-strip img',
        "images => images.map(img => getComputedStyle(img).filter)",
    )


def test_the_strip_is_blurred_until_the_card_is_revealed_and_passes_axe(
    colour_backend: None, page: Any, axe_source: str
) -> None:
    data = videos.clip(
        [(0.0, videos.SAFE), (3.0, videos.UNSAFE), (5.0, videos.SAFE)], seconds=8, gop=10
    )
    document = Document.objects.create(file=ContentFile(data, name="clip.mp4"))
    (field_name,) = registry.fields_for(Document)
    row = ModeratedImage.objects.of_object(document, field_name).get()
    assert row.verdict == Verdict.FLAGGED
    frames = list(VideoFrame.of(row))
    page.reload()
    filters = strip_filters(page, row.pk)
    assert len(filters) == len(frames) > 1
    assert all("blur" in f for f in filters)
    first = page.inner_text(f'.nsfw-card[data-pk="{row.pk}"] .nsfw-strip li:first-child')
    assert first == f"0:03 · {frames[0].score:.2f}"
    assert serious_violations(page, axe_source) == []
    page.click(f'.nsfw-card[data-pk="{row.pk}"] .nsfw-reveal')
    page.wait_for_function(
        "pk => [...document.querySelectorAll(`.nsfw-card[data-pk='${pk}'] .nsfw-strip img`)]"
        ".every(img => !getComputedStyle(img).filter.includes('blur'))",
        arg=row.pk,
    )
    # Each frame opens larger, on its own, through the admin's checks.
    url = page.get_attribute(f'.nsfw-card[data-pk="{row.pk}"] .nsfw-strip a', "href")
    response = page.request.get(url)
    assert response.status == 200
    assert response.headers["content-type"] == "image/jpeg"
    page.goto(f"{CHANGELIST}{row.pk}/change/")
    assert page.locator(".nsfw-strip li").count() == len(frames)
    assert serious_violations(page, axe_source) == []
