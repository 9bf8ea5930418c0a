"""A worker machine dies mid-batch: after a restart every row gets exactly one verdict.

On every queue (tests/workers.py's ``kinds_here``): the killed worker's rows
come back through the maintenance job, whatever the broker did with its tasks.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.management import call_command
from django.db.models import Count

from nsfw_moderation.apps import SCHEDULE_NAME
from nsfw_moderation.models import ModeratedImage, ModerationEvent, Status
from tests.conftest import moderation
from tests.images import image_file
from tests.workers import Cluster, kinds_here, purge_queues, queue_settings, wait_until

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("empty_broker"),
]

ROWS = 40


def counts() -> dict[str, int]:
    return dict(
        ModeratedImage.objects.values_list("status")
        .annotate(n=Count("pk"))
        .values_list("status", "n")
    )


@pytest.mark.parametrize("kind", kinds_here())
def test_sigkill_mid_batch_then_restart(tmp_path: Path, kind: str):
    purge_queues()
    with moderation(**queue_settings(kind)):
        for i in range(ROWS):
            create_photo(i)
    slow = {"NSFW_TEST_BACKEND": "tests.backends.SlowColourBackend", "NSFW_TEST_SLOW": "1.0"}
    worker_log = tmp_path / "worker.log"

    first = Cluster(
        tmp_path / "first.log",
        kind=kind,
        NSFW_TEST_WORKER_TAG="first",
        NSFW_TEST_WORKER_LOG=str(worker_log),
        **slow,
    ).start()
    try:
        # A finished row is in the log as well as in the table: its signal is sent
        # just after the verdict commits, and a kill in between would lose it.
        mid_batch = wait_until(
            lambda: (
                counts().get(Status.DONE, 0) >= 1
                and counts().get(Status.PROCESSING, 0) >= 1
                and worker_log.exists()
                and "first" in worker_log.read_text()
            ),
            timeout=120,
            interval=0.05,
        )
        assert mid_batch, first.log()
    finally:
        first.kill()  # the whole machine dies: cluster and workers, no clean-up
    at_kill = counts()
    assert at_kill.get(Status.PROCESSING, 0) >= 1

    # The periodic job (here run by its command) re-queues what the dead worker held.
    with moderation(**queue_settings(kind)):
        call_command("nsfw_requeue", "--older-than", "0", verbosity=0)
    assert counts().get(Status.PROCESSING, 0) == 0

    with Cluster(
        tmp_path / "second.log",
        kind=kind,
        NSFW_TEST_WORKER_TAG="second",
        NSFW_TEST_WORKER_LOG=str(worker_log),
        **{**slow, "NSFW_TEST_SLOW": "0"},
    ) as second:
        done = wait_until(lambda: counts().get(Status.DONE, 0) == ROWS, timeout=120)
        assert done, second.log()

    per_row = ModerationEvent.objects.values("image").annotate(n=Count("pk"))
    assert len(per_row) == ROWS
    assert {entry["n"] for entry in per_row} == {1}, "a row was classified twice"
    finished = worker_log.read_text().split()
    pks = finished[0::2]
    assert len(pks) == len(set(pks)), "a row was finished twice"
    # A worker killed between committing a verdict and sending its signal loses
    # that signal (documented): only rows it held can be missing from the log.
    assert len(pks) >= ROWS - at_kill[Status.PROCESSING]
    assert {"first", "second"} <= set(finished[1::2])
    print(f"{kind}: rows={ROWS} killed_mid_batch={at_kill} verdicts={len(per_row)} duplicates=0")


def create_photo(i: int) -> None:
    from tests.testapp.models import Photo

    Photo.objects.create(image=image_file(f"p{i}.png", color=(i * 5 % 256, 40, 200)))


def test_the_periodic_job_is_installed_by_migrate():
    from django_q.models import Schedule

    call_command("migrate", verbosity=0)  # the sync queue needs no schedule
    assert not Schedule.objects.filter(name=SCHEDULE_NAME).exists()
    with moderation(QUEUE="django_q", STALE_AFTER=600):
        call_command("migrate", verbosity=0)
        call_command("migrate", verbosity=0)  # idempotent
    schedule = Schedule.objects.get(name=SCHEDULE_NAME)
    assert schedule.func == "nsfw_moderation.tasks.maintain"
    assert schedule.schedule_type == Schedule.MINUTES
    assert schedule.repeats == -1
    assert schedule.minutes == 5
