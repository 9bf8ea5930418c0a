"""Three uploading processes and a worker at once: every upload moderated, none lost.

The scenario is benchmarks/uploads.py's (which also reports its timings):
real processes, a real worker of each queue, a fresh database per run. The
uploading processes never import the model's libraries, whatever the queue.
"""

from __future__ import annotations

import os

import pytest

from benchmarks.uploads import fresh_database, run_round
from tests.workers import kinds_here

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

UPLOADERS, PER_UPLOADER = 3, 60


def assert_nothing_lost(outcome: dict[str, float]) -> None:
    print(f"\n{outcome}")
    assert outcome["saves"] == UPLOADERS * PER_UPLOADER
    assert outcome["failed_saves"] == 0
    assert outcome["photos"] == UPLOADERS * PER_UPLOADER
    assert outcome["without_row_after"] == 0, "an upload has no row after reconciliation"
    assert outcome["not_done"] == 0, "an upload was never classified"
    assert outcome["uploaders_with_model_code"] == 0, "a web process imported the model's code"


def test_sqlite_with_djangos_default_options_loses_nothing():
    with fresh_database("sqlite-default", "") as (database, workdir):
        assert_nothing_lost(
            run_round(database, workdir, uploaders=UPLOADERS, per_uploader=PER_UPLOADER)
        )


@pytest.mark.skipif(
    os.environ.get("DATABASE_URL", "").startswith("postgres"),
    reason="the SQLite run (make pytest); PostgreSQL runs every queue below",
)
@pytest.mark.parametrize("kind", [kind for kind in kinds_here() if kind != "django_q"])
def test_sqlite_loses_nothing_on_the_other_queues(kind: str):
    with fresh_database("sqlite-recommended", "") as (database, workdir):
        assert_nothing_lost(
            run_round(database, workdir, uploaders=UPLOADERS, per_uploader=PER_UPLOADER, kind=kind)
        )


@pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith("postgres"),
    reason="the PostgreSQL + Redis run (make pytest-postgres-redis)",
)
@pytest.mark.parametrize("kind", kinds_here())
def test_postgresql_and_redis_lose_nothing(kind: str):
    with fresh_database("postgres", os.environ["DATABASE_URL"]) as (database, workdir):
        assert_nothing_lost(
            run_round(database, workdir, uploaders=UPLOADERS, per_uploader=PER_UPLOADER, kind=kind)
        )
