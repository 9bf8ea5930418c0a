"""The moderators' decisions as labels: read from the log, on the dashboard, in ``nsfw_evaluate``.

Decisions are made through :mod:`nsfw_moderation.review` on rows left as the
worker would leave them (flagged, or drawn for an audit, or with a shadow score).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from nsfw_moderation import append_only, labels, review
from nsfw_moderation.models import ModeratedImage, ModerationEvent, Verdict
from nsfw_moderation.quality import Proportion
from tests.conftest import moderation

pytest_plugins = ["tests.admin_fixtures"]
pytestmark = pytest.mark.django_db

PREFIX = "admin:nsfw_moderation_moderatedimage"
MakeRow = Callable[..., ModeratedImage]


@pytest.fixture
def client(client: Client, reviewer: User) -> Client:
    client.force_login(reviewer)
    return client


@pytest.fixture
def decide(make_row: MakeRow, reviewer: User) -> Callable[..., ModeratedImage]:
    def decide(score: float, verdict: str, *, before: str = Verdict.FLAGGED, **values: Any):
        row = make_row(verdict=before, score=score, **values)
        review.decide(row, verdict, user=reviewer)
        return row

    return decide


def back_date(row: ModeratedImage, age: timedelta) -> None:
    # Past the database's append-only triggers, as only a test may.
    with append_only.lifted():
        events = ModerationEvent._base_manager.filter(image=row)
        events.update(created_at=timezone.now() - age)


# --- Reading the decisions -------------------------------------------------------------


def test_the_latest_decision_per_bytes_counts_once(decide, reviewer):
    row = decide(0.8, Verdict.APPROVED, sha256="a" * 64)
    review.reject(row, user=reviewer)  # changed their mind
    ModeratedImage.objects.filter(pk=row.pk).update(sha256="b" * 64, verdict=Verdict.FLAGGED)
    review.approve(row, user=reviewer)  # a new file in the same field: new bytes, a new label
    found = sorted(labels.decisions(timezone.now()), key=lambda d: d.key[3])
    assert [(d.key[3][0], d.rejected, d.before) for d in found] == [
        ("a", True, Verdict.FLAGGED),
        ("b", False, Verdict.FLAGGED),
    ]


def test_only_the_decisions_of_the_period_count_unless_asked_for_all(decide):
    recent = decide(0.8, Verdict.REJECTED)
    old = decide(0.9, Verdict.REJECTED)
    back_date(old, timedelta(days=labels.DAYS + 1))
    now = timezone.now()
    assert {d.key[1] for d in labels.decisions(now)} == {recent.object_id}
    assert len(labels.decisions(now, days=None)) == 2
    assert len(labels.decisions(now, days=labels.DAYS + 2)) == 2


def test_an_admin_that_scopes_its_rows_scopes_the_decisions(decide):
    mine = decide(0.8, Verdict.REJECTED)
    decide(0.9, Verdict.APPROVED)
    scoped = ModeratedImage.objects.filter(pk=mine.pk)
    assert [d.key[1] for d in labels.decisions(timezone.now(), scoped)] == [mine.object_id]


def test_other_reviews_and_other_kinds_of_events_are_not_labels(decide, make_row):
    row = decide(0.8, Verdict.REJECTED)
    ModerationEvent.record(row, ModerationEvent.Kind.CLASSIFIED, verdict_before=Verdict.PENDING)
    other = make_row(score=0.7)
    ModerationEvent.record(other, ModerationEvent.Kind.APPEAL_DECIDED, verdict_before="rejected")
    assert len(labels.decisions(timezone.now())) == 1


def test_audit_decisions_give_the_miss_rate(decide, make_row):
    for _ in range(2):
        decide(0.1, Verdict.REJECTED, before=Verdict.ALLOWED, audit=True)
    for _ in range(6):
        decide(0.1, Verdict.APPROVED, before=Verdict.ALLOWED, audit=True)
    decide(0.95, Verdict.APPROVED, before=Verdict.BLOCKED, audit=True)
    decide(0.2, Verdict.REJECTED, before=Verdict.ALLOWED)  # not drawn: not in the estimate
    make_row(verdict=Verdict.ALLOWED, score=0.1, audit=True)  # waiting
    audit = labels.quality_report(timezone.now()).audit
    assert audit.missed == Proportion(2, 8)
    assert audit.wrong_blocks == Proportion(1, 1)
    assert audit.waiting == {Verdict.ALLOWED: 1}


def test_the_estimate_counts_the_images_allowed_now(decide, make_row):
    decide(0.1, Verdict.REJECTED, before=Verdict.ALLOWED, audit=True)
    make_row(verdict=Verdict.ALLOWED, score=0.1, audit=True)  # a sample waiting
    for _ in range(3):
        make_row(verdict=Verdict.ALLOWED, score=0.1)
    make_row(verdict=Verdict.FLAGGED, score=0.8)
    audit = labels.quality_report(timezone.now()).audit
    assert audit.allowed_images == 4  # from the kept counts: the waiting sample and three others
    assert audit.estimated_missed_images[0] == 4.0


def test_the_report_compares_the_shadow_model(decide):
    shadow = {"shadow_model_name": "shadow/x"}
    decide(0.9, Verdict.REJECTED, shadow_score=0.6, **shadow)
    decide(0.8, Verdict.APPROVED, shadow_score=0.2, **shadow)
    decide(0.3, Verdict.REJECTED, before=Verdict.ALLOWED, audit=True, shadow_score=0.8, **shadow)
    with moderation(FLAG_THRESHOLD=0.7, SHADOW_MODEL={"MODEL": "shadow/x", "FLAG_THRESHOLD": 0.5}):
        report = labels.quality_report(timezone.now())
    (pair,) = report.shadows
    assert (pair.live_model, pair.shadow_model) == ("tests/colour", "shadow/x")
    assert (pair.live.precision, pair.shadow.precision) == (0.5, 1.0)
    assert (pair.live_audit.recall, pair.shadow_audit.recall) == (0.0, 1.0)
    assert report.shadow_configured


# --- Dashboard ---------------------------------------------------------------------------


def dashboard(client: Client) -> Any:
    response = client.get(reverse(f"{PREFIX}_dashboard"))
    assert response.status_code == 200
    return response


def test_the_dashboard_shows_precision_thresholds_and_the_audit_estimate(client, decide):
    for score in (0.72, 0.85, 0.95):
        decide(score, Verdict.REJECTED)
    decide(0.75, Verdict.APPROVED)
    decide(0.1, Verdict.REJECTED, before=Verdict.ALLOWED, audit=True)
    decide(0.1, Verdict.APPROVED, before=Verdict.ALLOWED, audit=True)
    response = dashboard(client)
    (model,) = response.context["quality"].models
    assert (model.model, model.flags) == ("tests/colour", Proportion(3, 4))
    html = response.content.decode()
    assert "Precision of flagging: <strong>75.0 %</strong>" in html
    assert 'class="nsfw-threshold-table"' in html
    assert "FLAG_THRESHOLD now" in html
    assert "Estimated miss rate: <strong>50.0 %</strong>" in html
    assert "No <code>BLOCK_THRESHOLD</code> to suggest yet" in html


@pytest.mark.parametrize(
    ("value", "point", "low", "high"),
    [
        (0.06273, "6.3 %", "6.2 %", "6.3 %"),  # the example: truncated, it read 6.2 %
        (0.0625, "6.3 %", "6.2 %", "6.3 %"),  # half-up, not half-even (which gives 6.2 %)
        (0.06, "6.0 %", "6.0 %", "6.0 %"),  # a bound on the grid stays where it is
        (0.999999, "100.0 %", "99.9 %", "100.0 %"),
        (0.0, "0.0 %", "0.0 %", "0.0 %"),
    ],
)
def test_percentages_round_half_up_and_bounds_round_outwards(value, point, low, high):
    from nsfw_moderation.templatetags import nsfw_moderation_charts as charts

    assert charts.nsfw_percent(value) == point
    assert charts.nsfw_percent_low(value) == low
    assert charts.nsfw_percent_high(value) == high
    assert charts.nsfw_percent(None) == charts.nsfw_percent_low(None) == "–"


def test_the_dashboard_rounds_shares_and_widens_intervals_to_contain_the_true_one(
    client, decide, make_row
):
    decide(0.9, Verdict.REJECTED)
    for _ in range(15):
        decide(0.7, Verdict.APPROVED)
    decide(0.1, Verdict.REJECTED, before=Verdict.ALLOWED, audit=True)
    for _ in range(2):
        decide(0.1, Verdict.APPROVED, before=Verdict.ALLOWED, audit=True)
    for _ in range(10):
        make_row(verdict=Verdict.ALLOWED, score=0.1)
    html = " ".join(dashboard(client).content.decode().split())
    # 1 of 16 flags upheld: 6.25 %, Wilson 95 % interval 1.112 % to 28.329 %.
    assert "<strong>6.3 %</strong> (95% interval 1.1 % to 28.4 %)" in html
    # 1 of 3 allowed samples unsafe: 33.33 % (6.149 % to 79.234 %) of 10 allowed images,
    # about 3.3 (0.61 to 7.92) images: the interval printed is 0 to 8, not 1 to 8.
    miss = "<strong>33.3 %</strong> of the allowed images are unsafe (95% interval 6.1 % to 79.3 %)"
    assert miss in html
    assert "That is about 3 (0 to 8) of the 10 images allowed now." in html


def test_the_dashboard_tells_a_new_site_what_to_do(client):
    html = dashboard(client).content.decode()
    assert "No decisions yet: review flagged images" in html
    assert "No audit samples yet: set AUDIT_SAMPLE_RATE" in html
    assert "No shadow model: set SHADOW_MODEL" in html


def test_the_dashboard_links_the_waiting_audit_samples(client, make_row):
    make_row(verdict=Verdict.ALLOWED, score=0.05, audit=True)
    make_row(verdict=Verdict.BLOCKED, score=0.99, audit=True)
    html = dashboard(client).content.decode()
    assert f'href="{reverse(f"{PREFIX}_review")}?verdict=audit"' in html
    assert "2 audit samples waiting for a moderator" in html


def test_the_dashboard_takes_as_many_queries_for_ten_times_the_decisions(client, decide):
    dashboard(client)  # warm: sessions, content types, kept counts
    queries = []
    for count in (3, 30):
        for i in range(count):
            decide(0.6 + (i % 4) / 10, Verdict.REJECTED if i % 3 else Verdict.APPROVED)
        decide(0.1, Verdict.REJECTED, before=Verdict.ALLOWED, audit=True)
        with CaptureQueriesContext(connection) as captured:
            dashboard(client)
        queries.append(len(captured.captured_queries))
    assert queries[0] == queries[1]


# --- nsfw_evaluate --decisions -------------------------------------------------------------


def evaluate(*args: str) -> str:
    out = io.StringIO()
    call_command("nsfw_evaluate", *args, stdout=out)
    return out.getvalue()


def test_the_command_prints_the_report_from_the_decisions(decide):
    decide(0.9, Verdict.REJECTED)
    decide(0.95, Verdict.REJECTED)
    decide(0.75, Verdict.APPROVED)
    decide(0.2, Verdict.REJECTED, before=Verdict.ALLOWED, audit=True)
    text = evaluate("--decisions")
    assert "Model: tests/colour (4 decided images)" in text
    assert "Precision of flagging: 0.667 (2/3; 95% interval 0.208 to 0.939)" in text
    assert "BLOCK_THRESHOLD: not enough decisions yet for a target of 0.99" in text
    assert "Miss rate (rejected among 1 decided samples of allowed images): 1.000" in text
    # The table's row at 0.9: two decided, both rejected.
    assert any(line.split()[:3] == ["0.90", "2", "2"] for line in text.splitlines())


def test_the_command_reads_the_days_and_model_asked_for(decide, make_row, reviewer):
    decide(0.9, Verdict.REJECTED)
    other = make_row(verdict=Verdict.FLAGGED, score=0.8, model_name="other/model")
    review.reject(other, user=reviewer)
    back_date(other, timedelta(days=10))
    assert "Model: other/model" not in evaluate("--decisions", "--days", "5")
    text = evaluate("--decisions", "--model", "other/model")
    assert "Model: other/model (1 decided images)" in text
    assert "Model: tests/colour" not in text


def test_the_command_on_a_site_without_decisions_says_how_to_get_them():
    assert "No decisions yet: review flagged images" in evaluate("--decisions")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "Give DIR"),
        (("somewhere", "--decisions"), "either DIR or --decisions"),
        (("--decisions", "--target", "1"), "--target"),
        (("--decisions", "--days", "0"), "--days"),
    ],
)
def test_the_command_needs_one_source_of_labels(args, message):
    with pytest.raises(CommandError, match=message):
        evaluate(*args)
