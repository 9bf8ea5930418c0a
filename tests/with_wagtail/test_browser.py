"""A moderator reviews in Wagtail's admin, in a real headless Chromium; axe-core checks the pages.

The harness (Debian's chromium, pinned axe-core) is tests/test_browser.py's.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from wagtail.images.views.serve import generate_image_url

from nsfw_moderation.appeals import file_appeal
from nsfw_moderation.models import ModeratedImage, Statement, Verdict
from tests.conftest import moderation
from tests.test_browser import CHROMIUM, axe_source, browser, serious_violations

__all__ = ["axe_source", "browser"]  # fixtures, used by name

QUEUE = "/cms/image-moderation/"
DASHBOARD = "/cms/image-moderation/dashboard/"
APPEALS = "/cms/image-moderation/appeals/"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium"
    ),
    # One test: the flush after it would take Wagtail's data migrations' rows
    # (root page, groups) from a next one.
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


@pytest.fixture
def page(browser: Any, live_server: Any, moderator: Any) -> Iterator[Any]:
    moderator.set_password("correct horse")
    moderator.save()
    context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=live_server.url)
    page = context.new_page()
    page.goto(f"/cms/login/?next={QUEUE}")
    page.fill("#id_username", "moderator")
    page.fill("#id_password", "correct horse")
    page.click("button[type=submit]")
    page.wait_for_url(f"**{QUEUE}")
    yield page
    context.close()


def row_of(image: Any) -> ModeratedImage:
    return ModeratedImage.objects.of_object(image, "file").get()


def blurred(page: Any, pk: int) -> bool:
    style = page.eval_on_selector(
        f'.nsfw-card[data-pk="{pk}"] img', "img => getComputedStyle(img).filter"
    )
    return "blur" in style


@pytest.fixture
def owners() -> Iterator[None]:
    # An image belongs to the user its title names: the rejected one can be appealed.
    with moderation(OWNER="tests.owners.owner_of"):
        yield


def test_a_moderator_reviews_in_wagtail(
    make_image: Any, page: Any, axe_source: str, owners: None
) -> None:
    from django.contrib.auth.models import User

    owner = User.objects.create_user("second")
    first, second = make_image("red", title="first"), make_image("red", title="second")
    rows = [row_of(first), row_of(second)]
    url = generate_image_url(first, "width-40")
    assert page.request.get(url).status == 404
    page.reload()

    found = {"review queue": serious_violations(page, axe_source)}
    assert blurred(page, rows[0].pk)
    page.click(f'.nsfw-card[data-pk="{rows[0].pk}"] .nsfw-reveal')
    page.wait_for_function(
        "pk => !getComputedStyle(document.querySelector(`.nsfw-card[data-pk='${pk}'] img`))"
        ".filter.includes('blur')",
        arg=rows[0].pk,
    )
    # The first card is current on load: "a" approves it, then "r" rejects the next.
    page.keyboard.press("a")
    page.wait_for_selector("text=1 image marked Approved.")
    page.keyboard.press("r")
    page.wait_for_selector("text=1 image marked Rejected.")
    assert [ModeratedImage.objects.get(pk=row.pk).verdict for row in rows] == [
        Verdict.APPROVED,
        Verdict.REJECTED,
    ]
    assert page.request.get(url).status == 200
    assert page.request.get(generate_image_url(second, "width-40")).status == 404

    page.goto(DASHBOARD)
    found["dashboard"] = serious_violations(page, axe_source)
    page.goto(QUEUE + "?verdict=")
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        found[f"queue, {scheme}"] = serious_violations(page, axe_source)
    page.goto(f"/cms/images/{second.pk}/")
    assert page.text_content("[data-nsfw-verdict]") == "Rejected"

    # The owner appeals; the moderator who rejected sees why another must decide.
    appeal = file_appeal(Statement.objects.get(image=rows[1]), owner, "It is a painting.")
    page.goto(APPEALS)
    assert page.is_disabled(f'button[value="approve:{appeal.pk}"]')
    assert "another moderator" in page.text_content(f"#refusal-{appeal.pk}")
    found["appeal queue"] = serious_violations(page, axe_source)
    assert found == {
        "review queue": [],
        "dashboard": [],
        "queue, light": [],
        "queue, dark": [],
        "appeal queue": [],
    }
