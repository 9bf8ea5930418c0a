"""At scale: what a request or a worker's claim reads does not grow with the tables.

The plans are checked on tables of a few thousand rows with statistics
(:mod:`tests.bulk`): on PostgreSQL, ``EXPLAIN ANALYZE`` counts the rows each
query touches in the moderation and event tables; everywhere, the number of
queries does not grow with the rows.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from nsfw_moderation.admin import listing
from nsfw_moderation.models import ModeratedImage, ModerationEvent, Status, Verdict
from nsfw_moderation.worker import outcomes
from tests.bulk import many_events, many_objects, reads_per_query, scans_per_query, vacuum
from tests.conftest import moderation
from tests.testapp.models import Photo

pytestmark = pytest.mark.django_db(transaction=True)

ROWS = 4000


@pytest.fixture
def postgresql() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("EXPLAIN ANALYZE's row counts are PostgreSQL's")


def most_rows_read(action) -> tuple[int, str]:
    """The largest number of rows one query of ``action`` touched, and that query."""
    with CaptureQueriesContext(connection) as captured:
        action()
    reads = reads_per_query(captured.captured_queries)
    sql = max(reads, key=reads.__getitem__)
    return reads[sql], sql


@pytest.mark.usefixtures("postgresql")
@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("first", [False, True], ids=["any", "first"])
def test_a_claim_reads_a_batch_not_the_queue(first, workers, settings):
    # With several workers, a claim takes its share of a backlog smaller than a batch each.
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "workers": workers}
    many_objects(Photo, "image", ROWS)
    queued = ModeratedImage.objects.filter(status=Status.QUEUED)
    assert queued.count() > 10 * 16
    pk = queued.order_by("-pk").values_list("pk", flat=True)[0] if first else None
    claimed: list[ModeratedImage] = []
    with moderation(QUEUE="django_q"):
        claim = lambda: claimed.extend(outcomes.claim_batch(uuid.uuid4(), first=pk))  # noqa: E731
        read, sql = most_rows_read(claim)
    assert len(claimed) == 8  # tests.settings: BATCH_SIZE
    assert read <= 4 * len(claimed), sql


# --- Admin pages ------------------------------------------------------------------

#: Page → (view, query, most rows one query may touch). A page shows at most
#: 100 rows; the tables hold 4,000 rows and 4,000 events.
PAGES = {
    "review queue": ("review", "", 250),
    "review queue, newest first": ("review", "?order=newest", 250),
    "review queue, audit samples": ("review", "?verdict=audit", 250),
    "changelist": ("changelist", "", 250),
    "changelist, flagged": ("changelist", "?verdict__exact=flagged", 250),
    # A third of the rows match: a page reads about three pages' worth, in order.
    "changelist, one model": ("changelist", "?model_name=model-1&status__exact=done", 400),
    "changelist, one content type": ("changelist", "?content_type__id__exact={photo}", 250),
    "dashboard": ("dashboard", "", 250),
}


def page_url(page: str) -> str:
    view, query, _most = PAGES[page]
    photo = ContentType.objects.get_for_model(Photo).pk
    return reverse(f"admin:nsfw_moderation_moderatedimage_{view}") + query.format(photo=photo)


@pytest.mark.usefixtures("postgresql")
@pytest.mark.parametrize("page", PAGES)
def test_an_admin_page_reads_a_page_not_the_tables(admin_client, page):
    many_objects(Photo, "image", ROWS)
    many_events()
    read, sql = most_rows_read(lambda: ok(admin_client.get(page_url(page))))
    assert read <= PAGES[page][2], sql


@pytest.mark.usefixtures("postgresql")
def test_the_default_queue_reads_a_page_of_flagged_rows_not_all_of_them(admin_client):
    # It lists flagged rows and audit samples: an OR of the two would read
    # every flagged row (200 here) and sort them.
    many_objects(Photo, "image", ROWS)
    allowed = ModeratedImage.objects.filter(verdict="allowed").order_by("pk")
    samples = list(allowed.values_list("pk", flat=True)[::100])  # 34 waiting
    ModeratedImage.objects.filter(pk__in=samples).update(audit=True)
    vacuum()
    assert ModeratedImage.objects.filter(verdict="flagged").count() == 200
    for query in ("?order=oldest", "?order=newest"):
        url = page_url("review queue") + query
        read, sql = most_rows_read(lambda: ok(admin_client.get(url)))  # noqa: B023
        assert read <= 2 * 24 + len(samples), sql


@pytest.mark.usefixtures("postgresql")
def test_a_large_listing_the_counts_cannot_tell_shows_the_planners_estimate(
    admin_client, monkeypatch
):
    monkeypatch.setattr(listing, "ESTIMATE_ABOVE", 1000)
    many_objects(Photo, "image", ROWS)  # an hour apart, back from now
    changelist = reverse("admin:nsfw_moderation_moderatedimage_changelist")
    since = timezone.now() - timedelta(days=120)  # about 2,880 rows
    url = f"{changelist}?{since_query(since)}"
    read, sql = most_rows_read(lambda: ok(admin_client.get(url)))
    assert read <= 250, sql
    exact = ModeratedImage.objects.filter(created_at__gte=since).count()
    assert admin_client.get(url).context["cl"].result_count == pytest.approx(exact, rel=0.2)
    # Below the threshold, rows are counted.
    recent = timezone.now() - timedelta(days=2)
    response = admin_client.get(f"{changelist}?{since_query(recent)}")
    exact = ModeratedImage.objects.filter(created_at__gte=recent).count()
    assert response.context["cl"].result_count == exact


def since_query(moment: Any) -> str:
    return urlencode({"created_at__gte": moment.isoformat()})


@pytest.mark.parametrize("page", PAGES)
def test_an_admin_page_takes_as_many_queries_for_ten_times_the_rows(admin_client, page):
    ok(admin_client.get(page_url(page)))  # warm: sessions, content types, kept counts
    queries = []
    for count in (30, 300):
        many_objects(Photo, "image", count)
        with CaptureQueriesContext(connection) as captured:
            ok(admin_client.get(page_url(page)))
        queries.append(len(captured.captured_queries))
    assert queries[0] == queries[1]


@pytest.mark.usefixtures("postgresql")
def test_the_dashboard_counts_events_from_their_indexes_alone(admin_client):
    many_objects(Photo, "image", ROWS)
    many_events()
    vacuum()
    with CaptureQueriesContext(connection) as captured:
        ok(admin_client.get(page_url("dashboard")))
    scans = scans_per_query(captured.captured_queries, ModerationEvent._meta.db_table)
    # The model quality section reads the decisions themselves: see the next test.
    event_scans = {sql: nodes for sql, nodes in scans.items() if nodes and not is_decisions(sql)}
    assert len(event_scans) == 2  # the last 24 hours, flagged per day
    for sql, nodes in event_scans.items():
        scans = [(node["Node Type"], node.get("Heap Fetches")) for node in nodes]
        assert scans == [("Index Only Scan", 0)], sql


def is_decisions(sql: str) -> bool:
    return "'reviewed'" in sql and "shadow_score" in sql


@pytest.mark.usefixtures("postgresql")
def test_the_dashboard_reads_the_decisions_of_the_period_not_the_log(admin_client):
    many_objects(Photo, "image", ROWS)
    many_events()
    decided = list(ModeratedImage.objects.filter(verdict=Verdict.FLAGGED)[:150])
    ModerationEvent.objects.bulk_create(
        [
            ModerationEvent.record(
                row,
                ModerationEvent.Kind.REVIEWED,
                verdict_before=Verdict.FLAGGED,
                verdict_after=Verdict.REJECTED,
                save=False,
            )
            for row in decided
        ]
    )
    vacuum()
    with CaptureQueriesContext(connection) as captured:
        response = ok(admin_client.get(page_url("dashboard")))
    assert response.context["quality"].decided == len(decided)
    reads = reads_per_query([q for q in captured.captured_queries if is_decisions(q["sql"])])
    (read,) = reads.values()
    assert read <= len(decided) + 10


def ok(response: Any) -> Any:
    assert response.status_code == 200
    return response
