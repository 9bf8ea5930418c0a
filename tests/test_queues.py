"""Every queue, with real workers: batches, one model per worker process, a lost broker.

Each test runs once per queue this suite has (tests/workers.py's ``kinds_here``):
django-q2 and the Tasks framework on the database everywhere; RQ and Celery
where the suite runs on Redis (``make pytest-postgres-redis``). The load,
fault and scale-out tests are parametrised the same way (test_load.py,
test_recovery.py, test_scale_out.py).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.models import Count

from nsfw_moderation.backends import available_cores
from nsfw_moderation.models import ModeratedImage, ModerationEvent, Status
from tests.conftest import moderation
from tests.images import image_file
from tests.testapp.models import Photo
from tests.workers import Cluster, kinds_here, purge_queues, queue_settings, wait_until

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("empty_broker"),
]

COUNTING = "tests.backends.CountingColourBackend"
ROWS, BATCH = 24, 8


@pytest.fixture(autouse=True)
def _empty_queues() -> None:
    purge_queues()


def done() -> int:
    return ModeratedImage.objects.filter(status=Status.DONE).count()


def upload(kind: str, count: int, first: int = 0, *, idle: bool = True) -> None:
    """``count`` uploads sent to ``kind``'s queue (one task each); ``idle``: no worker runs."""
    with moderation(**queue_settings(kind)):
        for i in range(first, first + count):
            Photo.objects.create(image=image_file(f"p{i}.png", color=(i * 9 % 256, 60, 120)))
    if idle:
        assert ModeratedImage.objects.filter(status=Status.QUEUED).count() == count


def read_calls(path: Path) -> tuple[dict[str, int], list[tuple[str, int]]]:
    """({pid: threads} of each model load, [(pid, images)] of each call), as noted."""
    loads: dict[str, int] = {}
    calls = []
    for line in path.read_text().splitlines():
        what, pid, number = line.split()
        if what == "load":
            assert pid not in loads, f"process {pid} loaded the model twice"
            loads[pid] = int(number)
        else:
            calls.append((pid, int(number)))
    return loads, calls


@pytest.mark.parametrize("kind", kinds_here())
def test_one_task_per_upload_still_classifies_in_batches(kind: str, tmp_path: Path):
    """24 tasks, one per upload: the model sees batches, and each process loads it once."""
    upload(kind, ROWS)
    log = tmp_path / "calls.log"
    env = {"NSFW_TEST_BACKEND": COUNTING, "NSFW_TEST_CALLS_LOG": str(log)}
    env |= {"NSFW_TEST_BATCH_SIZE": str(BATCH), "NSFW_TEST_WORKERS": "2"}
    with Cluster(tmp_path / "worker.log", kind=kind, **env) as worker:
        assert wait_until(lambda: done() == ROWS, timeout=120), worker.log()
        main_pid = str(worker.process.pid) if worker.process else ""

    loads, calls = read_calls(log)
    assert sum(size for _pid, size in calls) == ROWS, "an image was classified twice"
    # A batch per claim (split between busy workers): far fewer model calls
    # than tasks, one per upload.
    assert len(calls) <= ROWS // 3, calls
    assert max(size for _pid, size in calls) > 1, calls
    # Loaded once per worker process, in the process that classifies: a forking
    # worker (qcluster, Celery's prefork pool) loads it in its children only.
    processes = 2 if kind in ("django_q", "celery") else 1
    assert len(loads) <= processes, f"loaded more often than there are workers: {loads}"
    assert {pid for pid, _size in calls} <= set(loads)
    # Each process gives the model its share of the cores (TORCH_THREADS unset).
    assert set(loads.values()) == {max(1, available_cores() // processes)}, loads
    if kind in ("django_q", "celery"):
        assert main_pid not in loads, "the parent process loaded the model"
    per_row = ModerationEvent.objects.values("image").annotate(n=Count("pk"))
    assert {entry["n"] for entry in per_row} == {1}
    print(f"\n{kind}: {len(calls)} model calls for {ROWS} tasks, loads in {len(loads)} process(es)")


@pytest.mark.parametrize("kind", [kind for kind in kinds_here() if kind in ("django_q", "celery")])
def test_a_small_backlog_is_shared_by_the_pools_processes(kind: str, tmp_path: Path):
    """Six uploads, batches of eight, two processes: each takes its share, not one all."""
    upload(kind, 6)
    log = tmp_path / "calls.log"
    env = {"NSFW_TEST_BACKEND": COUNTING, "NSFW_TEST_CALLS_LOG": str(log)}
    env |= {"NSFW_TEST_BATCH_SIZE": str(BATCH), "NSFW_TEST_WORKERS": "2"}
    with Cluster(tmp_path / "worker.log", kind=kind, **env) as worker:
        assert wait_until(lambda: done() == 6, timeout=120), worker.log()
    _loads, calls = read_calls(log)
    assert max(size for _pid, size in calls) < 6, f"one process took the whole backlog: {calls}"
    assert len({pid for pid, _size in calls}) == 2, calls


@pytest.mark.parametrize("kind", kinds_here())
def test_a_flushed_broker_loses_nothing_once_maintenance_runs(kind: str, tmp_path: Path):
    upload(kind, ROWS)
    flush(kind)
    env = {"NSFW_TEST_BACKEND": "tests.backends.ColourBackend"}
    with Cluster(tmp_path / "worker.log", kind=kind, **env) as worker:
        time.sleep(3)
        assert done() == 0, "the flushed tasks still reached the worker"
        # What cron (or beat, or django-q2's Schedule) runs every few minutes.
        with moderation(**queue_settings(kind), STALE_AFTER=0):
            call_command("nsfw_maintain", verbosity=0)
        assert wait_until(lambda: done() == ROWS, timeout=120), worker.log()
    per_row = ModerationEvent.objects.values("image").annotate(n=Count("pk"))
    assert len(per_row) == ROWS
    assert {entry["n"] for entry in per_row} == {1}


def flush(kind: str) -> None:
    """Lose every task waiting in ``kind``'s broker: Redis flushed, the task table emptied."""
    if kind == "django_q":
        from django_q.brokers import get_broker
        from django_q.conf import Conf

        get_broker(Conf.PREFIX).purge_queue()
    elif kind == "tasks-db":
        from django_tasks_db.models import DBTaskResult

        assert DBTaskResult.objects.exists()
        DBTaskResult.objects.all().delete()
    else:
        purge_queues()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL ends the connections")
# db_worker (django-tasks-db) exits when its polling query fails, as it does
# when the connection is ended mid-query: run it under a supervisor that
# restarts it (docs/queues.md).
@pytest.mark.parametrize("kind", [kind for kind in kinds_here() if kind != "tasks-db"])
def test_a_worker_outlives_its_dropped_database_connection(kind: str, tmp_path: Path):
    """The database drops the worker's connection (a restart, a failover) between tasks."""
    env = {"NSFW_TEST_BACKEND": "tests.backends.ColourBackend"}
    env["NSFW_TEST_PERSISTENT_CONNECTIONS"] = "1"  # CONN_MAX_AGE=None: kept between tasks
    with Cluster(tmp_path / "worker.log", kind=kind, **env) as worker:
        upload(kind, 4, idle=False)
        assert wait_until(lambda: done() == 4, timeout=60), worker.log()
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            ended = cursor.fetchall()
        # Celery's Django fix-up closes a task's connections after it: none to end.
        assert ended or kind == "celery", "no worker connection to end"
        upload(kind, 4, first=4, idle=False)
        assert wait_until(lambda: done() == 8, timeout=60), worker.log()
