"""Three uploading processes and a worker at once: every upload moderated, none lost.

The scenario is benchmarks/uploads.py's (which also reports its timings):
real processes, a real ``qcluster``, a fresh database per run.
"""

from __future__ import annotations

import os

import pytest

from benchmarks.uploads import fresh_database, run_round

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

UPLOADERS, PER_UPLOADER = 3, 60


def assert_nothing_lost(outcome: dict[str, float]) -> None:
    print(f"\n{outcome}")
    assert outcome["saves"] == UPLOADERS * PER_UPLOADER
    assert outcome["failed_saves"] == 0
    assert outcome["photos"] == UPLOADERS * PER_UPLOADER
    assert outcome["without_row_after"] == 0, "an upload has no row after reconciliation"
    assert outcome["not_done"] == 0, "an upload was never classified"


def test_sqlite_with_djangos_default_options_loses_nothing():
    with fresh_database("sqlite-default", "") as (database, workdir):
        assert_nothing_lost(
            run_round(database, workdir, uploaders=UPLOADERS, per_uploader=PER_UPLOADER)
        )


@pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith("postgres"),
    reason="the PostgreSQL + Redis run (make pytest-postgres-redis)",
)
def test_postgresql_and_redis_lose_nothing():
    with fresh_database("postgres", os.environ["DATABASE_URL"]) as (database, workdir):
        assert_nothing_lost(
            run_round(database, workdir, uploaders=UPLOADERS, per_uploader=PER_UPLOADER)
        )
