"""Audit sampling: automatic verdicts drawn at random for a moderator to check.

The worker draws a share (``AUDIT_SAMPLE_RATE``) of the classifier's own
``allowed`` and ``blocked`` verdicts; the review queue shows them beside the
flagged images, marked as audit samples, while they stay as they are on the
site; a decision records that it audited a sample and settles it.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.checks import run_checks
from django.core.files.base import ContentFile
from django.db import transaction
from django.template import Context, Template
from django.test import Client
from django.urls import reverse

from nsfw_moderation import banks, enqueue, hashing, query, review
from nsfw_moderation.admin.forms import AUDIT_SAMPLES, NEEDS_REVIEW
from nsfw_moderation.admin.moderation import PAGE_SIZE
from nsfw_moderation.models import HashBank, ModeratedImage, ModerationEvent, Status, Verdict
from nsfw_moderation.worker import pipeline, tasks
from tests.admin_fixtures import appealed_blocked_sample, queue
from tests.conftest import moderation
from tests.images import blue, encoded, image_bytes, picture, red
from tests.testapp.models import Photo

pytest_plugins = ["tests.admin_fixtures"]

PREFIX = "admin:nsfw_moderation_moderatedimage"
MakeRow = Callable[..., ModeratedImage]

#: Thresholds under which tests.backends.ColourBackend's verdicts are known:
#: blue allowed (0.0), FLAGGED_RED flagged (0.75), red blocked (1.0).
THRESHOLDS = {"FLAG_THRESHOLD": 0.5, "BLOCK_THRESHOLD": 0.9}
FLAGGED_RED = (192, 32, 32)


def colour(rate: Any, **changes: Any) -> Any:
    """ColourBackend with the known thresholds and ``AUDIT_SAMPLE_RATE=rate``."""
    values = {"BACKEND": "tests.backends.ColourBackend", **THRESHOLDS, **changes}
    return moderation(AUDIT_SAMPLE_RATE=rate, **values)


def row_of(obj: Any) -> ModeratedImage:
    return ModeratedImage.objects.get(object_id=str(obj.pk), field_name="image")


def upload(content: ContentFile, title: str = "photo") -> ModeratedImage:
    return row_of(Photo.objects.create(title=title, image=content))


def classified(row: ModeratedImage) -> ModerationEvent:
    return row.events.filter(kind=ModerationEvent.Kind.CLASSIFIED).latest("pk")


def binomial_band(n: int, p: float, level: float) -> tuple[int, int]:
    """The central ``level`` interval of Binomial(n, p), exactly: each tail ≤ (1 − level) / 2."""
    tail = (1 - level) / 2
    cdf = list(
        itertools.accumulate(math.comb(n, k) * p**k * (1 - p) ** (n - k) for k in range(n + 1))
    )
    low = next(k for k in range(n + 1) if cdf[k] > tail)
    high = next(k for k in range(n + 1) if cdf[k] >= 1 - tail)
    return low, high


# --- 1. Drawing samples in the worker --------------------------------------------------


@pytest.mark.django_db(transaction=True)
class TestDrawing:
    def test_a_rate_of_zero_draws_nothing_even_the_lowest_draw(self, monkeypatch):
        monkeypatch.setattr(pipeline, "audit_draw", lambda: 0.0)
        with colour(0.0):
            rows = [upload(blue()), upload(red())]
        assert [(r.verdict, r.audit) for r in rows] == [("allowed", False), ("blocked", False)]
        assert [classified(r).audit for r in rows] == [False, False]

    def test_a_rate_of_one_draws_every_allowed_and_blocked_model_verdict(self):
        with colour(1.0):
            allowed, flagged, blocked = (
                upload(blue()),
                upload(ContentFile(image_bytes(FLAGGED_RED), "f.png")),
                upload(red()),
            )
        found = {r.verdict: (r.audit, classified(r).audit) for r in (allowed, flagged, blocked)}
        assert found == {
            "allowed": (True, True),
            "blocked": (True, True),
            "flagged": (False, False),  # in the queue anyway: nothing to sample
        }

    def test_the_draw_is_compared_with_the_rate(self, monkeypatch):
        draws = iter([0.099, 0.1, 0.5])
        monkeypatch.setattr(pipeline, "audit_draw", lambda: next(draws))
        with colour(0.1):
            rows = [upload(blue(f"{i}.png"), title=str(i)) for i in range(3)]
        # A draw below the rate is a sample; at or above it is not.
        assert [r.audit for r in rows] == [True, False, False]

    @pytest.mark.parametrize(
        ("rate", "expected"),
        [
            ({"blocked": 1.0}, {"allowed": False, "blocked": True}),
            ({"allowed": 1.0}, {"allowed": True, "blocked": False}),
            ({"allowed": 1.0, "blocked": 0.0}, {"allowed": True, "blocked": False}),
        ],
    )
    def test_a_rate_per_verdict(self, rate, expected):
        with colour(rate):
            rows = [upload(blue()), upload(red())]
        assert {r.verdict: r.audit for r in rows} == expected

    def test_a_failed_classification_is_never_a_sample(self):
        with colour(1.0, ON_ERROR="allow"):
            row = upload(ContentFile(b"", "empty.png"))
        assert (row.status, row.verdict, row.audit) == (Status.FAILED, Verdict.ALLOWED, False)
        assert row.events.get(kind=ModerationEvent.Kind.FAILED).audit is False

    def test_a_block_by_a_persons_earlier_no_is_not_a_sample(self):
        with colour(0.0):
            first = upload(red())
        review.reject(first)
        with colour(1.0):
            again = upload(red("again.png"), title="again")  # the same bytes
        assert (again.verdict, again.audit) == (Verdict.BLOCKED, False)

    def test_identical_bytes_reusing_an_automatic_verdict_are_drawn_like_any(self):
        with colour(0.0):
            first = upload(blue())
        with colour(1.0):
            again = upload(blue("again.png"), title="again")
        assert again.reused_from == first
        assert (again.verdict, again.audit, classified(again).audit) == ("allowed", True, True)

    def test_a_classification_again_clears_an_earlier_draw(self):
        with colour(1.0):
            row = upload(blue())
        assert row.audit
        # Queued again without a reset (the worker alone decides the mark).
        ModeratedImage.objects.filter(pk=row.pk).update(status=Status.QUEUED)
        with colour(0.0):
            tasks.classify(row.pk)
        row.refresh_from_db()
        assert (row.status, row.verdict, row.audit) == (Status.DONE, Verdict.ALLOWED, False)

    def test_a_failure_on_a_drawn_row_clears_the_mark(self):
        with colour(1.0):
            row = upload(blue())
        assert row.audit
        ModeratedImage.objects.filter(pk=row.pk).update(status=Status.QUEUED)
        with colour(1.0, BACKEND="tests.backends.NaNBackend"):
            tasks.classify(row.pk)
        row.refresh_from_db()
        assert (row.status, row.verdict, row.audit) == (Status.FAILED, Verdict.FLAGGED, False)

    # Queued, not classified: the reset itself clears the mark.

    def test_a_re_upload_clears_the_mark(self):
        with colour(1.0):
            photo = Photo.objects.create(title="photo", image=blue())
        assert row_of(photo).audit
        with colour(1.0, QUEUE="django_q"):
            photo.image = ContentFile(image_bytes((0, 0, 200)), "replaced.png")
            photo.save()
        row = row_of(photo)
        assert (row.status, row.verdict, row.audit) == (Status.QUEUED, Verdict.PENDING, False)
        replaced = row.events.get(kind=ModerationEvent.Kind.REPLACED)
        assert replaced.verdict_before == Verdict.ALLOWED

    def test_a_requeue_clears_the_mark(self):
        with colour(1.0):
            row = upload(blue())
        assert row.audit
        with colour(1.0, QUEUE="django_q"):
            enqueue.requeue(ModeratedImage.objects.filter(pk=row.pk))
        row.refresh_from_db()
        assert (row.status, row.verdict, row.audit) == (Status.QUEUED, Verdict.PENDING, False)

    def test_a_rate_draws_that_share_of_verdicts(self):
        # 300 allowed verdicts at 0.3, from the real (unpredictable) source: the
        # number drawn lies in Binomial(300, 0.3)'s central 99.9%. Sampling that
        # always or never draws, or draws at another rate, lands outside.
        n, rate = 300, 0.3
        with colour(rate), transaction.atomic():
            for i in range(n):
                pixel = (0, i // 256, i % 256)  # distinct bytes: each one classified
                small = ContentFile(image_bytes(pixel, size=(16, 16)), f"{i}.png")
                Photo.objects.create(title=str(i), image=small)
        rows = ModeratedImage.objects.all()
        assert set(rows.values_list("verdict", flat=True)) == {Verdict.ALLOWED}
        assert rows.filter(reused_from__isnull=False).count() == 0
        drawn = set(rows.filter(audit=True).values_list("pk", flat=True))
        low, high = binomial_band(n, rate, 0.999)
        assert low <= len(drawn) <= high, (len(drawn), (low, high))
        # The classified events say which verdicts were drawn: exactly these.
        events = ModerationEvent.objects.filter(kind=ModerationEvent.Kind.CLASSIFIED)
        assert events.count() == n
        assert set(events.filter(audit=True).values_list("image_id", flat=True)) == drawn


def test_the_binomial_band_of_a_known_case():
    # Binomial(10, 0.5): P(X ≤ 1) = 11/1024 ≈ 0.0107, P(X ≤ 2) = 56/1024 ≈ 0.055.
    assert binomial_band(10, 0.5, 0.95) == (2, 8)
    assert binomial_band(10, 0.5, 0.98) == (1, 9)


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(not hashing.available(), reason="pdqhash is not installed")
@pytest.mark.parametrize("action", [HashBank.Action.ALLOW, HashBank.Action.BLOCK])
def test_a_hash_bank_verdict_is_not_a_sample(action):
    banks.forget_index()
    bank = HashBank.objects.create(name=f"{action} list", action=action)
    banks.add_entries(bank, [(*hashing.pdq(picture(1)), "test")])
    try:
        with colour(1.0):
            row = upload(encoded(picture(1)))
    finally:
        banks.forget_index()
    assert row.bank_entry is not None
    assert row.audit is False
    # A picture no bank knows is the model's to sample.
    with colour(1.0):
        assert upload(encoded(picture(2)), title="other").audit


# --- 2. Decisions ------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("decide", [review.approve, review.reject])
@pytest.mark.parametrize("verdict", [Verdict.ALLOWED, Verdict.BLOCKED])
def test_deciding_a_sample_records_the_audit_and_settles_it(
    make_row: MakeRow, reviewer: User, decide: Any, verdict: str
) -> None:
    row = make_row(verdict=verdict, audit=True, sha256="b" * 64)
    event = decide(row, user=reviewer)
    row.refresh_from_db()
    assert (event.kind, event.verdict_before, event.audit) == ("reviewed", verdict, True)
    assert event.verdict_after == row.verdict
    assert row.audit is False
    # Deciding it again is an ordinary decision, not a second audit.
    assert review.approve(row, user=reviewer).audit is False


@pytest.mark.django_db
def test_deciding_a_flagged_image_is_not_an_audit(make_row: MakeRow, reviewer: User) -> None:
    assert review.reject(make_row(), user=reviewer).audit is False


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("upheld", [True, False])
def test_an_appeal_decision_settles_a_blocked_sample(upheld: bool) -> None:
    with moderation(OWNER="tests.owners.owner_of"):
        row, appeal = appealed_blocked_sample()
        review.decide_appeal(appeal, user=User.objects.get(username="reviewer"), upheld=upheld)
    row.refresh_from_db()
    event = row.events.get(kind=ModerationEvent.Kind.APPEAL_DECIDED)
    # A person looked: upheld, the block was wrong (approved); not, it was right.
    after = Verdict.APPROVED if upheld else Verdict.BLOCKED
    assert (event.audit, event.verdict_before, event.verdict_after) == (True, "blocked", after)
    assert (row.verdict, row.audit) == (after, False)


# --- 3. The review queue -----------------------------------------------------------------


@pytest.fixture
def client(client: Client, reviewer: User) -> Client:
    client.force_login(reviewer)
    return client


def shown(response: Any) -> list[int]:
    return [card.row.pk for card in response.context["cards"]]


@pytest.fixture
def rows(make_row: MakeRow) -> dict[str, ModeratedImage]:
    """One row of each kind, created in this order (oldest first)."""
    return {
        "flagged": make_row(score=0.7),
        "allowed sample": make_row(verdict=Verdict.ALLOWED, score=0.2, audit=True),
        "allowed": make_row(verdict=Verdict.ALLOWED, score=0.1),
        "blocked sample": make_row(verdict=Verdict.BLOCKED, score=0.95, audit=True),
        "blocked": make_row(verdict=Verdict.BLOCKED, score=0.99),
        "approved": make_row(verdict=Verdict.APPROVED, score=0.6),
    }


def pks(rows: dict[str, ModeratedImage], *names: str) -> list[int]:
    return [rows[name].pk for name in names]


@pytest.mark.django_db
class TestQueue:
    def test_by_default_it_shows_flagged_images_and_audit_samples(self, client, rows):
        response = queue(client)
        assert shown(response) == pks(rows, "flagged", "allowed sample", "blocked sample")
        assert response.context["page"].paginator.count == 3
        assert response.context["form"]["verdict"].value() == NEEDS_REVIEW

    def test_orders_apply_to_both_kinds(self, client, rows):
        expected = pks(rows, "blocked sample", "flagged", "allowed sample")
        assert shown(queue(client, order="score")) == expected
        newest = pks(rows, "blocked sample", "allowed sample", "flagged")
        assert shown(queue(client, order="newest")) == newest

    def test_rows_without_a_score_come_last_by_score(self, client, rows, make_row):
        failed = make_row(status=Status.FAILED, score=None)  # flagged, unscored
        expected = [*pks(rows, "blocked sample", "flagged", "allowed sample"), failed.pk]
        assert shown(queue(client, order="score")) == expected

    def test_pages_run_through_both_kinds_in_order(self, client, make_row):
        made = [
            make_row(verdict=Verdict.ALLOWED, audit=True) if i % 4 == 1 else make_row()
            for i in range(PAGE_SIZE + 11)
        ]
        first, second = queue(client), queue(client, p=2)
        assert first.context["page"].paginator.count == len(made)
        assert shown(first) + shown(second) == [row.pk for row in made]
        newest = queue(client, order="newest", p=2)
        assert shown(newest) == [row.pk for row in made[::-1]][PAGE_SIZE:]

    def test_other_filters_narrow_both_kinds(self, client, rows):
        assert shown(queue(client, score_min="0.5")) == pks(rows, "flagged", "blocked sample")

    def test_a_filter_shows_only_audit_samples(self, client, rows):
        response = queue(client, verdict=AUDIT_SAMPLES)
        assert shown(response) == pks(rows, "allowed sample", "blocked sample")
        assert response.context["page"].paginator.count == 2

    def test_an_explicit_verdict_still_means_that_verdict_and_empty_means_any(self, client, rows):
        assert shown(queue(client, verdict="allowed")) == pks(rows, "allowed sample", "allowed")
        assert shown(queue(client, verdict="flagged")) == pks(rows, "flagged")
        assert len(shown(queue(client, verdict=""))) == len(rows)

    def test_a_sample_waits_once_even_when_flagged_since(self, client, make_row):
        # e.g. a flag bank matched an allowed sample afterwards
        row = make_row(audit=True)
        assert shown(queue(client)) == [row.pk]
        assert queue(client).context["page"].paginator.count == 1

    def test_each_sample_is_marked_in_words(self, client, rows):
        html = queue(client).content.decode()
        assert html.count("Audit sample:") == 2
        assert "allowed automatically, visible on the site meanwhile." in html
        assert "blocked automatically, hidden on the site meanwhile." in html
        assert html.count('class="nsfw-card is-audit"') == 2
        assert f'aria-label="Audit sample {rows["allowed sample"].file_name}"' in html

    @pytest.mark.parametrize(
        ("decision", "after"), [("approve", "approved"), ("reject", "rejected")]
    )
    def test_a_moderator_decides_a_sample_from_the_queue(self, client, rows, decision, after):
        sample = rows["allowed sample"]
        response = client.post(
            reverse(f"{PREFIX}_decide"),
            {"decide_one": f"{decision}:{sample.pk}", "seen": f"{sample.pk}:{sample.sha256}"},
        )
        assert response.status_code == 302
        sample.refresh_from_db()
        assert (sample.verdict, sample.audit) == (after, False)
        event = sample.events.get(kind=ModerationEvent.Kind.REVIEWED)
        assert (event.audit, event.verdict_before) == (True, "allowed")
        # Settled: it no longer waits in the queue.
        assert sample.pk not in shown(queue(client))

    def test_a_viewer_who_may_not_review_cannot_see_the_queue_or_decide(self, staff, rows):
        client = Client()
        client.force_login(staff)
        assert client.get(reverse(f"{PREFIX}_review")).status_code == 403
        sample = rows["allowed sample"]
        posted = client.post(reverse(f"{PREFIX}_decide"), {"decide_one": f"reject:{sample.pk}"})
        assert posted.status_code == 403
        changelist = reverse(f"{PREFIX}_changelist")
        client.post(changelist, {"action": "reject", "_selected_action": [sample.pk]})
        sample.refresh_from_db()
        assert (sample.verdict, sample.audit) == (Verdict.ALLOWED, True)
        assert not ModerationEvent.objects.filter(kind=ModerationEvent.Kind.REVIEWED).exists()


@pytest.mark.django_db
def test_the_changelist_filters_audit_samples(admin_client: Client, rows: dict) -> None:
    response = admin_client.get(reverse(f"{PREFIX}_changelist"), {"audit__exact": "1"})
    assert response.status_code == 200
    listed = {row.pk for row in response.context["cl"].result_list}
    assert listed == set(pks(rows, "allowed sample", "blocked sample"))
    assert "By audit sample" in response.content.decode()


@pytest.mark.django_db
def test_a_rows_page_shows_whether_it_is_an_audit_sample(admin_client: Client, rows: dict) -> None:
    sample = rows["allowed sample"]
    response = admin_client.get(reverse(f"{PREFIX}_change", args=[sample.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    start = html.index('class="form-row field-audit')
    field = html[start : html.index('class="form-row', start + 1)]
    assert "Audit sample" in field  # the field's label
    assert "icon-yes.svg" in field


# --- 4. The sample stays as it is on the site meanwhile -------------------------------------


@pytest.mark.django_db(transaction=True)
def test_an_allowed_sample_stays_visible_and_a_blocked_one_hidden() -> None:
    with colour(1.0):
        shown_photo = Photo.objects.create(title="shown", image=blue())
        hidden_photo = Photo.objects.create(title="hidden", image=red())
    assert [row_of(shown_photo).audit, row_of(hidden_photo).audit] == [True, True]
    photos = Photo.objects.all()
    assert list(query.visible(photos, "image")) == [shown_photo]
    assert list(query.hidden(photos, "image")) == [hidden_photo]
    assert query.is_visible(shown_photo, "image")
    assert not query.is_visible(hidden_photo, "image")
    template = Template(
        "{% load nsfw_moderation %}{{ a|nsfw_visible:'image' }} {{ b|nsfw_visible:'image' }}"
    )
    assert template.render(Context({"a": shown_photo, "b": hidden_photo})) == "True False"


@pytest.mark.django_db(transaction=True)
@pytest.mark.urls("tests.admin_fixtures")
def test_the_host_admin_shows_a_samples_verdict_as_it_stands(admin_client: Client) -> None:
    with colour(1.0):
        photo = Photo.objects.create(title="sampled", image=blue())
    assert row_of(photo).audit
    response = admin_client.get("/admin/testapp/photo/")
    assert response.status_code == 200
    assert "image: Allowed 0.00" in response.content.decode()


# --- 5. The setting's check (E028) ----------------------------------------------------------


def check_ids(**changes: object) -> list[str]:
    with moderation(**changes):
        return sorted(m.id for m in run_checks() if m.id and m.id.startswith("nsfw_moderation."))


@pytest.mark.django_db(databases="__all__")
@pytest.mark.parametrize(
    ("rate", "expected"),
    [
        (0, []),
        (0.01, []),
        (1, []),
        ({"allowed": 0.01, "blocked": 0.05}, []),
        ({"blocked": 1.0}, []),
        ({}, []),
        (1.5, ["nsfw_moderation.E028"]),
        (-0.1, ["nsfw_moderation.E028"]),
        ({"allowed": 2}, ["nsfw_moderation.E028"]),
        ({"flagged": 0.1}, ["nsfw_moderation.E028"]),
        ({"allowed": "0.1"}, ["nsfw_moderation.E028"]),
        ({"allowed": True}, ["nsfw_moderation.E028"]),
        (True, ["nsfw_moderation.E028"]),
        ("0.01", ["nsfw_moderation.E028"]),
        (None, ["nsfw_moderation.E028"]),
    ],
)
def test_the_rate_is_checked(rate: Any, expected: list[str]) -> None:
    assert check_ids(AUDIT_SAMPLE_RATE=rate) == expected


@pytest.mark.django_db(databases="__all__")
def test_the_checks_message_has_a_hint() -> None:
    with moderation(AUDIT_SAMPLE_RATE={"flagged": 0.1}):
        [message] = [m for m in run_checks() if m.id == "nsfw_moderation.E028"]
    assert "'flagged': 0.1" in message.msg
    assert message.hint


@pytest.mark.django_db
def test_a_deep_page_of_the_queue_builds_only_its_own_rows():
    """Pages further on read the sort keys up to their end, and fetch only their rows."""
    from django.db.models.signals import post_init

    from nsfw_moderation.admin.forms import ORDERINGS, needing_review
    from tests.admin_fixtures import create_row

    flagged = [create_row(verdict=Verdict.FLAGGED) for _ in range(60)]
    samples = [create_row(verdict=Verdict.ALLOWED, audit=True) for _ in range(5)]
    built: list[Any] = []

    def count(sender: Any, instance: Any, **kwargs: Any) -> None:
        built.append(instance)

    post_init.connect(count, sender=ModeratedImage)
    try:
        page = needing_review(ModeratedImage.objects.all(), ORDERINGS["oldest"])[48:72]
    finally:
        post_init.disconnect(count, sender=ModeratedImage)
    oldest_first = sorted([*flagged, *samples], key=lambda row: (row.created_at, row.pk))
    assert [row.pk for row in page] == [row.pk for row in oldest_first[48:72]]
    assert len(built) == len(page) == 17
