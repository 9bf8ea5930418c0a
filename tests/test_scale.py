"""At scale: what a request or a worker's claim reads does not grow with the tables.

The plans are checked on tables of a few thousand rows with statistics
(:mod:`tests.bulk`): on PostgreSQL, ``EXPLAIN ANALYZE`` counts the rows each
query touches in the moderation and event tables; everywhere, the number of
queries does not grow with the rows.
"""

from __future__ import annotations

import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from nsfw_moderation.models import ModeratedImage, Status
from nsfw_moderation.worker import outcomes
from tests.bulk import many_objects, reads_per_query
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
@pytest.mark.parametrize("first", [False, True], ids=["any", "first"])
def test_a_claim_reads_a_batch_not_the_queue(first):
    many_objects(Photo, "image", ROWS)
    queued = ModeratedImage.objects.filter(status=Status.QUEUED)
    assert queued.count() > 10 * 16
    pk = queued.order_by("-pk").values_list("pk", flat=True)[0] if first else None
    claimed: list[ModeratedImage] = []
    read, sql = most_rows_read(lambda: claimed.extend(outcomes.claim_batch(uuid.uuid4(), first=pk)))
    assert len(claimed) == 8  # tests.settings: BATCH_SIZE
    assert read <= 4 * len(claimed), sql
