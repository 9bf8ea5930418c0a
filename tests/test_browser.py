"""The review UI in a real headless Chromium, against a live server.

Uses Debian's ``chromium`` package; nothing is downloaded here. Every page is
checked with axe-core (pinned in the Makefile, fetched by ``make browser``).
Every image is a generated picture of coloured shapes.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.files.base import ContentFile
from django.utils import timezone
from PIL import Image, ImageDraw

from nsfw_moderation import append_only, review
from nsfw_moderation.appeals import file_appeal
from nsfw_moderation.models import ModeratedImage, ModerationEvent, Status, Verdict
from tests.testapp.models import Photo
from tests.workers import ROOT

# Playwright's sync API runs an event loop in this thread; the ORM calls made
# here (fixtures, assertions) are still plain synchronous code.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
QUEUE = "/admin/nsfw_moderation/moderatedimage/review/"
DASHBOARD = "/admin/nsfw_moderation/moderatedimage/dashboard/"
CHANGELIST = "/admin/nsfw_moderation/moderatedimage/"
AXE_VERSION = re.search(r"^AXE_VERSION := (\S+)$", (ROOT / "Makefile").read_text(), re.M)[1]
AXE = ROOT / "tests" / ".axe" / AXE_VERSION / "axe.min.js"
PASSWORD = "correct horse battery staple"

pytest_plugins = ["tests.admin_fixtures"]
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium"
    ),
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield browser
        browser.close()


def moderator_page(
    browser: Any, live_server: Any, make_user: Callable[..., User], **options: Any
) -> tuple[Any, Any]:
    make_user("moderator", "nsfw_moderation.review_moderatedimage")
    context = browser.new_context(
        viewport={"width": 1280, "height": 900}, base_url=live_server.url, **options
    )
    page = context.new_page()
    page.goto(f"/admin/login/?next={QUEUE}")
    page.fill("#id_username", "moderator")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"**{QUEUE}")
    return context, page


@pytest.fixture
def page(browser: Any, live_server: Any, make_user: Callable[..., User]) -> Iterator[Any]:
    context, page = moderator_page(browser, live_server, make_user)
    yield page
    context.close()


def picture(background: tuple[int, int, int], accent: tuple[int, int, int], seed: int) -> bytes:
    """Harmless generated art: a coloured card with a few shapes on it."""
    image = Image.new("RGB", (320, 240), background)
    draw = ImageDraw.Draw(image)
    for i in range(3):
        x, y = 40 + ((seed * 67 + i * 90) % 220), 30 + ((seed * 41 + i * 70) % 150)
        draw.ellipse([x, y, x + 60, y + 60], fill=accent)
    draw.rectangle([20, 190, 300, 210], fill=accent)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


REDS = [
    ((220, 40, 40), (250, 200, 60)),
    ((200, 30, 90), (255, 150, 150)),
    ((240, 90, 20), (120, 20, 20)),
]


def upload_flagged(count: int) -> list[ModeratedImage]:
    photos = []
    for i in range(count):
        background, accent = REDS[i % len(REDS)]
        data = picture(background, accent, i)
        photos.append(
            Photo.objects.create(title=f"shapes {i}", image=ContentFile(data, f"shapes-{i}.png"))
        )
    rows = ModeratedImage.objects.filter(object_id__in=[str(p.pk) for p in photos]).order_by("pk")
    assert {row.verdict for row in rows} == {Verdict.FLAGGED}
    return list(rows)


def blur_of(page: Any, pk: int) -> str:
    return page.eval_on_selector(
        f'.nsfw-card[data-pk="{pk}"] img', "img => getComputedStyle(img).filter"
    )


def wait_until_revealed(page: Any, pk: int) -> None:
    page.wait_for_function(
        "pk => !getComputedStyle(document.querySelector(`.nsfw-card[data-pk='${pk}'] img`))"
        ".filter.includes('blur')",
        arg=pk,
    )


def test_reveal_then_approve_with_the_keyboard(colour_backend: None, page: Any) -> None:
    rows = upload_flagged(3)
    page.reload()
    first = rows[0]
    assert "blur" in blur_of(page, first.pk)

    page.click(f'.nsfw-card[data-pk="{first.pk}"] .nsfw-reveal')
    wait_until_revealed(page, first.pk)
    assert "blur" in blur_of(page, rows[1].pk)

    # The first card is current on load; "a" approves it.
    page.keyboard.press("a")
    page.wait_for_selector(".messagelist .success")
    assert "1 image marked Approved." in page.inner_text(".messagelist")
    assert page.locator(f'.nsfw-card[data-pk="{first.pk}"]').count() == 0
    first.refresh_from_db()
    assert first.verdict == Verdict.APPROVED
    event = first.events.get(kind=ModerationEvent.Kind.REVIEWED)
    assert (event.actor.username, event.verdict_before, event.verdict_after) == (
        "moderator",
        "flagged",
        "approved",
    )

    page.goto(f"/admin/nsfw_moderation/moderatedimage/{first.pk}/change/")
    events = page.inner_text("#events-group")
    assert "Reviewed" in events
    assert "Approved" in events


def test_keyboard_navigation_and_reject(colour_backend: None, page: Any) -> None:
    rows = upload_flagged(3)
    page.reload()
    page.keyboard.press("j")
    assert page.get_attribute(".nsfw-card.is-current", "data-pk") == str(rows[1].pk)
    page.keyboard.press("v")
    wait_until_revealed(page, rows[1].pk)
    page.keyboard.press("r")
    page.wait_for_selector(".messagelist .success")
    assert [row.verdict for row in ModeratedImage.objects.order_by("pk")] == [
        "flagged",
        "rejected",
        "flagged",
    ]
    # The card that took the decided one's place is current.
    assert page.get_attribute(".nsfw-card.is-current", "data-pk") == str(rows[2].pk)


def test_bulk_reject_two_images(colour_backend: None, page: Any) -> None:
    rows = upload_flagged(3)
    page.reload()
    for row in rows[:2]:
        page.check(f'.nsfw-card[data-pk="{row.pk}"] input[name="ids"]')
    page.fill("#nsfw-note", "duplicate uploads")
    page.click('.nsfw-bulk button[value="reject"]')
    page.wait_for_selector(".messagelist .success")
    assert "2 images marked Rejected." in page.inner_text(".messagelist")
    verdicts = [row.verdict for row in ModeratedImage.objects.order_by("pk")]
    assert verdicts == ["rejected", "rejected", "flagged"]
    notes = set(ModerationEvent.objects.filter(kind="reviewed").values_list("note", flat=True))
    assert notes == {"duplicate uploads"}


def test_reveal_all_preference(colour_backend: None, page: Any) -> None:
    rows = upload_flagged(2)
    page.reload()
    page.check('input[name="reveal_all"]')  # saved as soon as it is ticked
    page.wait_for_load_state("load")
    page.wait_for_function("() => document.querySelector('input[name=reveal_all]').checked")
    for row in rows:
        assert "blur" not in blur_of(page, row.pk)


# --- Screenshots for the docs ------------------------------------------------------


def backdate_events(days: int) -> None:
    """Spread the classification events over the last ``days`` days.

    Each flagged row gets a few earlier classifications (as if its file had
    been replaced), so the per-day chart has some shape.
    """
    now = timezone.now()
    with append_only.lifted():  # back-dated past the triggers, as only a test may
        for i, event in enumerate(ModerationEvent.objects.order_by("pk")):
            ModerationEvent._base_manager.filter(pk=event.pk).update(
                created_at=now - timedelta(days=(i * 7) % days, hours=i % 5)
            )
    flagged = list(ModeratedImage.objects.filter(score__gte=0.5))
    for day in range(days):
        for n in range((day * 5 + 3) % 7 // 2 + (day % 3 == 0)):
            row = flagged[(day + n) % len(flagged)]
            event = ModerationEvent.objects.create(
                image=row, kind="classified", verdict_before="pending", verdict_after="flagged"
            )
            with append_only.lifted():
                ModerationEvent._base_manager.filter(pk=event.pk).update(
                    created_at=now - timedelta(days=day, hours=n)
                )


def test_screenshots(colour_backend: None, page: Any, tmp_path: Path) -> None:
    # The docs' screenshots are refreshed only on request: NSFW_UPDATE_SCREENSHOTS=1.
    directory = SCREENSHOTS if os.environ.get("NSFW_UPDATE_SCREENSHOTS") else tmp_path
    rows = upload_flagged(8)
    for i in range(14):
        shade = 30 + (i * 37) % 200
        Photo.objects.create(
            title=f"calm {i}",
            image=ContentFile(
                picture((20, shade // 2, 200), (shade, 200, 240), i), f"calm-{i}.png"
            ),
        )
    for i in range(6):
        mixed = picture((160, 60 + i * 10, 90), (40, 160, 200), i)
        Photo.objects.create(title=f"mixed {i}", image=ContentFile(mixed, f"mixed-{i}.png"))
    ModeratedImage.objects.filter(pk=rows[-1].pk).update(verdict=Verdict.REJECTED)
    ModeratedImage.objects.filter(pk=rows[-2].pk).update(verdict=Verdict.APPROVED)
    waiting = ModeratedImage.objects.filter(verdict=Verdict.ALLOWED).order_by("pk")[:1]
    ModeratedImage.objects.filter(pk__in=list(waiting.values_list("pk", flat=True))).update(
        status=Status.QUEUED,
        verdict=Verdict.PENDING,
        updated_at=timezone.now() - timedelta(minutes=4),
    )
    backdate_events(30)

    page.reload()
    page.click(f'.nsfw-card[data-pk="{rows[1].pk}"] .nsfw-reveal')
    page.keyboard.press("j")
    page.wait_for_function("() => Array.from(document.images).every(i => i.complete)")
    page.wait_for_timeout(400)
    page.screenshot(path=str(directory / "review-queue.png"))

    page.goto(DASHBOARD)
    page.wait_for_selector(".nsfw-chart svg")
    page.screenshot(path=str(directory / "dashboard.png"), full_page=True)
    assert (directory / "review-queue.png").stat().st_size > 10_000
    assert (directory / "dashboard.png").stat().st_size > 10_000


# --- Accessibility -----------------------------------------------------------------

SERIOUS = ("serious", "critical")


@pytest.fixture(scope="module")
def axe_source() -> str:
    if not AXE.exists():
        message = f"axe-core {AXE_VERSION} is not in {AXE.parent}: run `make browser`"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return AXE.read_text()


def serious_violations(page: Any, axe_source: str) -> list[str]:
    """axe-core's WCAG 2 A/AA violations of impact serious or critical on ``page``."""
    page.add_script_tag(content=axe_source)
    assert page.evaluate("axe.version") == AXE_VERSION
    violations = page.evaluate(
        """async () => (await axe.run(document, {
            runOnly: {type: "tag", values: ["wcag2a", "wcag2aa"]},
            resultTypes: ["violations"],
        })).violations.map(v => ({
            id: v.id, impact: v.impact, nodes: v.nodes.map(n => n.target.join(" ")),
        }))"""
    )
    return [
        f"{v['id']} ({v['impact']}): {', '.join(v['nodes'])}"
        for v in violations
        if v["impact"] in SERIOUS
    ]


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_no_serious_accessibility_violations(
    colour_backend: None,
    browser: Any,
    live_server: Any,
    make_user: Callable[..., User],
    axe_source: str,
    scheme: str,
) -> None:
    rows = upload_flagged(5)
    ModeratedImage.objects.filter(pk=rows[1].pk).update(verdict=Verdict.BLOCKED)
    context, page = moderator_page(browser, live_server, make_user, color_scheme=scheme)
    moderator = User.objects.get(username="moderator")
    review.approve(rows[2], user=moderator, note="harmless")
    review.reject(rows[3], user=moderator, note="explicit")
    pages = {
        "review queue": f"{QUEUE}?verdict=",
        "dashboard": DASHBOARD,
        "changelist": CHANGELIST,
        "change page": f"{CHANGELIST}{rows[3].pk}/change/",
    }
    found = {}
    try:
        page.goto(pages["review queue"])
        verdicts = page.locator(".nsfw-card .nsfw-badge").all_inner_texts()
        assert sorted(verdicts) == ["Approved", "Blocked", "Flagged", "Flagged", "Rejected"]
        found["review queue"] = serious_violations(page, axe_source)
        for name in ("dashboard", "changelist", "change page"):
            page.goto(pages[name])
            found[name] = serious_violations(page, axe_source)
    finally:
        context.close()
    assert {name: v for name, v in found.items() if v} == {}


# --- The dashboard's model quality ----------------------------------------------------


def test_the_dashboard_shows_the_model_quality_from_decisions(
    page: Any, make_row: Callable[..., ModeratedImage], axe_source: str
) -> None:
    moderator = User.objects.get(username="moderator")
    # Synthetic decisions: 4 flags upheld and 1 overturned, 1 of 4 allowed samples rejected.
    for score, verdict in [
        (0.72, "rejected"),
        (0.8, "rejected"),
        (0.9, "rejected"),
        (0.97, "rejected"),
        (0.75, "approved"),
    ]:
        review.decide(make_row(score=score), verdict, user=moderator)
    for verdict in ("rejected", "approved", "approved", "approved"):
        sample = make_row(verdict=Verdict.ALLOWED, score=0.05, audit=True)
        review.decide(sample, verdict, user=moderator)
    make_row(verdict=Verdict.ALLOWED, score=0.02, audit=True)  # waiting

    page.goto(DASHBOARD)
    section = page.locator(".nsfw-quality")
    assert "Model quality, last 90 days" in section.locator("h2").inner_text()
    precision = section.locator("[data-stat=precision]").inner_text()
    assert "Flags decided: 5; upheld (rejected): 4; overturned (approved): 1." in precision
    assert "Precision of flagging: 80.0 %" in precision
    table = section.locator(".nsfw-threshold-table")
    assert table.is_visible()
    row_090 = table.locator("tbody tr", has_text="0.90").first.locator("td").all_inner_texts()
    assert row_090[:2] == ["2", "2"]
    miss = section.locator("[data-stat=miss_rate]").inner_text()
    assert "Estimated miss rate: 25.0 % of the allowed images are unsafe" in miss
    assert "from 4 decided samples" in miss
    page.click("[data-stat=audit_waiting] a")
    page.wait_for_url("**?verdict=audit")
    page.goto(DASHBOARD)
    assert serious_violations(page, axe_source) == []


# --- Audit samples ---------------------------------------------------------------------


def test_an_audit_sample_waits_in_the_queue_marked_and_is_rejected_there(
    colour_backend: None,
    browser: Any,
    live_server: Any,
    make_user: Callable[..., User],
    axe_source: str,
) -> None:
    from tests.conftest import moderation

    flagged = upload_flagged(1)[0]
    calm = picture((20, 90, 200), (120, 200, 240), 1)
    Photo.objects.create(title="calm", image=ContentFile(calm, "calm.png"))  # not drawn
    with moderation(BACKEND="tests.backends.ColourBackend", AUDIT_SAMPLE_RATE={"allowed": 1}):
        drawn = picture((20, 90, 200), (120, 200, 240), 2)
        photo = Photo.objects.create(title="drawn", image=ContentFile(drawn, "drawn.png"))
    sample = ModeratedImage.objects.get(object_id=str(photo.pk))
    assert (sample.verdict, sample.audit) == (Verdict.ALLOWED, True)
    context, page = moderator_page(browser, live_server, make_user)
    try:
        page.goto(QUEUE)  # the default view: what waits for a person
        shown = page.locator(".nsfw-card").evaluate_all("cards => cards.map(c => c.dataset.pk)")
        assert shown == [str(flagged.pk), str(sample.pk)]
        card = f'.nsfw-card[data-pk="{sample.pk}"]'
        assert " ".join(page.inner_text(f"{card} .nsfw-audit-note").split()) == (
            "Audit sample: allowed automatically, visible on the site meanwhile."
        )
        assert page.get_attribute(card, "aria-label") == f"Audit sample {sample.file_name}"
        assert page.locator(f'.nsfw-card[data-pk="{flagged.pk}"] .nsfw-audit-note').count() == 0
        found = serious_violations(page, axe_source)
        page.click(f'{card} button[data-decision="reject"]')
        page.wait_for_selector(".messagelist .success")
        assert "1 image marked Rejected." in page.inner_text(".messagelist")
        assert page.locator(card).count() == 0
    finally:
        context.close()
    sample.refresh_from_db()
    assert (sample.verdict, sample.audit) == (Verdict.REJECTED, False)
    event = sample.events.get(kind=ModerationEvent.Kind.REVIEWED)
    assert (event.audit, event.verdict_before, event.actor.username) == (
        True,
        "allowed",
        "moderator",
    )
    assert found == []


# --- Appeals: the owner's side and the moderator's ------------------------------------

APPEAL_QUEUE = "/admin/nsfw_moderation/appeal/queue/"


DECISIONS = "/moderation/decisions/"


def owner_page_for(browser: Any, live_server: Any, owner: User, **options: Any) -> tuple[Any, Any]:
    """A browser logged in as ``owner``, a site user (the host site's login set the session)."""
    from django.test import Client

    client = Client()
    client.force_login(owner)
    context = browser.new_context(
        viewport={"width": 1000, "height": 760}, base_url=live_server.url, **options
    )
    cookie = {"name": "sessionid", "value": client.cookies["sessionid"].value}
    context.add_cookies([{**cookie, "url": live_server.url}])
    return context, context.new_page()


def owned_photo(title: str, seed: int) -> ModeratedImage:
    photo = Photo.objects.create(
        title=title, image=ContentFile(picture(*REDS[seed % len(REDS)], seed), f"{seed}.png")
    )
    return ModeratedImage.objects.get(object_id=str(photo.pk))


def thumbnail(page: Any, selector: str) -> dict[str, Any]:
    return page.eval_on_selector(
        selector,
        "img => ({width: img.naturalWidth, filter: getComputedStyle(img).filter})",
    )


def test_the_owner_appeals_and_another_moderator_lifts_the_restriction(
    colour_backend: None,
    browser: Any,
    live_server: Any,
    make_user: Callable[..., User],
    axe_source: str,
    tmp_path: Path,
) -> None:
    from nsfw_moderation.models import Appeal, Statement
    from tests.conftest import moderation

    directory = SCREENSHOTS if os.environ.get("NSFW_UPDATE_SCREENSHOTS") else tmp_path
    owner = User.objects.create_user("alice", password=PASSWORD)
    first = make_user("first", "nsfw_moderation.review_moderatedimage")
    found = {}
    with moderation(
        BACKEND="tests.backends.ColourBackend", OWNER="tests.owners.owner_before_colon"
    ):
        row = owned_photo("alice: Beach at noon", 0)
        review.reject(row, user=first, note="seen in case 12", user_note="looks explicit")
        statement = Statement.objects.get(image=row)

        owner_context, owner_page = owner_page_for(browser, live_server, owner)
        owner_page.goto(DECISIONS)
        item = f'.nsfw-decision:has(a[href$="{statement.public_id}/"])'
        assert owner_page.inner_text(f"{item} a") == "alice: Beach at noon"
        assert owner_page.inner_text(f"{item} .nsfw-state") == "Removed by a moderator"
        owner_page.wait_for_function("() => Array.from(document.images).every(i => i.complete)")
        # The worker's stored preview (256 px wide; the placeholder is 240), blurred.
        shown = thumbnail(owner_page, f"{item} img")
        assert (shown["width"], "blur" in shown["filter"]) == (256, True)
        assert "Back to the site" in owner_page.inner_text("header")
        found["decisions"] = serious_violations(owner_page, axe_source)

        owner_page.click(f'{item} a[href$="{statement.public_id}/"]')
        main = owner_page.inner_text("main")
        assert "looks explicit" in main
        assert "The image of the photo “alice: Beach at noon”" in main
        assert "case 12" not in owner_page.content()  # the internal note stays inside
        found["statement"] = serious_violations(owner_page, axe_source)
        owner_page.wait_for_function("() => Array.from(document.images).every(i => i.complete)")
        owner_page.screenshot(path=str(directory / "uploader-statement.png"), full_page=True)
        owner_page.fill("textarea[name=text]", "It is a painting of a beach.")
        owner_page.click("button[type=submit]")
        owner_page.wait_for_selector(".messages .success")
        assert Appeal.objects.get().text == "It is a painting of a beach."
        owner_page.goto(DECISIONS)
        assert owner_page.inner_text(f"{item} .nsfw-state") == "Appeal pending"

        context, page = moderator_page(browser, live_server, make_user)
        try:
            page.goto(APPEAL_QUEUE)
            card = f'.nsfw-card[data-pk="{Appeal.objects.get().pk}"]'
            assert "It is a painting of a beach." in page.inner_text(card)
            assert "blur" in page.eval_on_selector(
                f"{card} img", "img => getComputedStyle(img).filter"
            )
            found["appeal queue"] = serious_violations(page, axe_source)
            page.keyboard.press("v")
            page.keyboard.press("a")  # uphold: lift the restriction
            page.wait_for_selector(".messagelist .success")
            assert "Appeal upheld" in page.inner_text(".messagelist")
        finally:
            context.close()

        row.refresh_from_db()
        assert (row.verdict, row.reviewed_by.username) == (Verdict.APPROVED, "moderator")
        owner_page.goto(DECISIONS)
        assert owner_page.inner_text(f"{item} .nsfw-state") == "Restored after appeal"
        owner_page.click(f'{item} a[href$="{statement.public_id}/"]')
        assert "agreed with you" in owner_page.inner_text("main")
        owner_context.close()
    assert {name: v for name, v in found.items() if v} == {}


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_uploader_pages_in_each_state_and_scheme(
    colour_backend: None,
    browser: Any,
    live_server: Any,
    make_user: Callable[..., User],
    axe_source: str,
    tmp_path: Path,
    scheme: str,
) -> None:
    from nsfw_moderation.models import Statement
    from tests.conftest import moderation

    directory = SCREENSHOTS if os.environ.get("NSFW_UPDATE_SCREENSHOTS") else tmp_path
    owner = User.objects.create_user("alice")
    first = make_user("first", "nsfw_moderation.review_moderatedimage")
    second = make_user("second", "nsfw_moderation.review_moderatedimage")
    titles = ["Beach at noon", "Red kite", "Poppies"]
    with moderation(
        BACKEND="tests.backends.ColourBackend", OWNER="tests.owners.owner_before_colon"
    ):
        rows = [owned_photo(f"alice: {title}", i) for i, title in enumerate(titles)]
        for row in rows:
            review.reject(row, user=first, user_note="Looks explicit to us.")
        appeals = [
            file_appeal(Statement.objects.get(image=row), owner, "It is a painting.")
            for row in rows[:2]
        ]
        review.decide_appeal(appeals[0], user=second, upheld=True)
        with moderation(BLOCK_THRESHOLD=0.5):
            blocked = owned_photo("alice: Market stall", 5)
        assert blocked.verdict == Verdict.BLOCKED

    context, page = owner_page_for(browser, live_server, owner, color_scheme=scheme)
    try:
        page.goto(DECISIONS)
        page.wait_for_function("() => Array.from(document.images).every(i => i.complete)")
        states = page.locator(".nsfw-decision .nsfw-state").all_inner_texts()
        assert sorted(states) == [
            "Appeal pending",
            "Blocked automatically",
            "Removed by a moderator",
            "Restored after appeal",
        ]
        found = {"decisions": serious_violations(page, axe_source)}
        suffix = "" if scheme == "light" else "-dark"
        page.screenshot(path=str(directory / f"uploader-decisions{suffix}.png"), full_page=True)
        page.locator(".nsfw-decision a").first.click()
        found["statement"] = serious_violations(page, axe_source)
    finally:
        context.close()
    assert {name: v for name, v in found.items() if v} == {}


# --- Changelists fit the window; a keyboard rejection can be undone ------------------------

WIDTH = 1280


def superuser_page(browser: Any, live_server: Any, make_user: Callable[..., User]) -> Any:
    make_user("root", superuser=True)
    context = browser.new_context(
        viewport={"width": WIDTH, "height": 900}, base_url=live_server.url
    )
    page = context.new_page()
    page.goto("/admin/login/?next=/admin/")
    page.fill("#id_username", "root")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url("**/admin/")
    return context, page


def long_records() -> None:
    """Rows, events, statements, bank entries and appeals with the long names real sites have."""
    from nsfw_moderation.appeals import file_appeal
    from nsfw_moderation.models import BankEntry, HashBank, Statement
    from tests.admin_fixtures import create_row
    from tests.conftest import moderation

    # OWNER: a photo belongs to the user its title names.
    name = "a-photographer-with-a-rather-long-user-name-as-some-sites-allow"
    owner = User.objects.create_user(name)
    judge = User.objects.create_user("a-moderator-with-a-long-name-as-well", is_staff=True)
    bank = HashBank.objects.create(name="Partner list of known images, imported weekly " * 2)
    with moderation(OWNER="tests.owners.owner_of"):
        for i in range(3):
            row = create_row(
                Photo.objects.create(title=name),
                field_name=f"image_{i}",
                file_name=f"photos/{'a-very-long-upload-name-' * 6}{i}.png",
                model_name="organisation/a-long-model-name-for-nsfw-image-detection-v2",
                sha256=f"{i}" * 64,
                error="Not an image: " + "the decoder said something long " * 4,
            )
            BankEntry.objects.create(
                bank=bank, pdq=f"{i:02x}" * 32, quality=100, label="imported from " * 10, image=row
            )
            review.reject(row, user=judge, note="a long internal note " * 10)
            statement = Statement.objects.get(image=row)
            file_appeal(statement, owner, "It is a painting. " * 20)


@pytest.mark.parametrize(
    "changelist", ["moderatedimage", "bankentry", "appeal", "moderationevent", "statement"]
)
def test_changelists_fit_a_1280_pixel_window(
    browser: Any, live_server: Any, make_user: Callable[..., User], changelist: str
) -> None:
    long_records()
    context, page = superuser_page(browser, live_server, make_user)
    try:
        page.goto(f"/admin/nsfw_moderation/{changelist}/")
        assert page.locator("#result_list tbody tr").count() >= 3
        width = page.evaluate("document.documentElement.scrollWidth")
        # The admin scrolls a wide table inside its own box: that box must not scroll either.
        results = page.eval_on_selector(".results", "box => [box.scrollWidth, box.clientWidth]")
    finally:
        context.close()
    assert width <= WIDTH
    assert results[0] <= results[1]


def test_a_keyboard_rejection_is_undone_from_its_message(colour_backend: None, page: Any) -> None:
    rows = upload_flagged(2)
    page.reload()
    page.keyboard.press("r")
    page.wait_for_selector(".messagelist .success")
    assert "1 image marked Rejected." in page.inner_text(".messagelist")
    rows[0].refresh_from_db()
    assert rows[0].verdict == Verdict.REJECTED
    page.click(".messagelist .nsfw-undo button")
    page.wait_for_selector(".messagelist .success:has-text('rejection undone')")
    rows[0].refresh_from_db()
    assert rows[0].verdict == Verdict.FLAGGED
    assert page.locator(f'.nsfw-card[data-pk="{rows[0].pk}"]').count() == 1
    kinds = list(rows[0].events.filter(kind="reviewed").values_list("verdict_after", flat=True))
    assert sorted(kinds) == ["flagged", "rejected"]


def test_the_moderator_who_rejected_sees_why_they_cannot_decide_the_appeal(
    colour_backend: None, page: Any
) -> None:
    from nsfw_moderation.appeals import file_appeal
    from nsfw_moderation.models import AppealOutcome, Statement
    from tests.conftest import moderation

    owner = User.objects.create_user("alice")
    with moderation(OWNER="tests.owners.owner_of"):
        photo = Photo.objects.create(
            title="alice", image=ContentFile(picture(*REDS[0], 0), "beach.png")
        )
        row = ModeratedImage.objects.get(object_id=str(photo.pk))
        review.reject(row, user=User.objects.get(username="moderator"))
        appeal = file_appeal(Statement.objects.get(image=row), owner, "It is a painting.")
    page.goto(APPEAL_QUEUE)
    card = f'.nsfw-card[data-pk="{appeal.pk}"]'
    assert "another moderator must decide the appeal" in page.inner_text(card)
    for decision in ("approve", "reject"):
        button = page.locator(f'{card} button[data-decision="{decision}"]')
        assert button.is_disabled()
        assert button.get_attribute("aria-describedby") == f"refusal-{appeal.pk}"
    page.keyboard.press("a")  # the shortcut presses a disabled button: nothing happens
    page.wait_for_timeout(300)
    assert not AppealOutcome.objects.exists()
