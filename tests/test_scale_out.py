"""Two worker machines on one database and one broker share the work, never a row.

On every queue: two qclusters, two db_workers, two rqworkers, two Celery workers.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.db import connection
from django.db.models import Count

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

IMAGES = int(os.environ.get("NSFW_TEST_SCALE_IMAGES", "300"))


@pytest.mark.parametrize("kind", kinds_here())
def test_two_clusters_share_the_queue(tmp_path: Path, worker_backend, kind: str):
    purge_queues()
    worker_log = tmp_path / "workers.log"
    # Several workers per cluster, small batches: plenty of chances to collide.
    env = {
        **worker_backend[0],
        "NSFW_TEST_WORKER_LOG": str(worker_log),
        "NSFW_TEST_WORKERS": "2",
        "NSFW_TEST_BATCH_SIZE": "4",
    }
    with moderation(**queue_settings(kind)):
        for i in range(IMAGES):
            Photo.objects.create(image=image_file(f"p{i}.png", color=(i % 256, 80, 160)))

    with (
        Cluster(tmp_path / "a.log", kind=kind, NSFW_TEST_WORKER_TAG="a", **env) as a,
        Cluster(tmp_path / "b.log", kind=kind, NSFW_TEST_WORKER_TAG="b", **env) as b,
    ):
        done = wait_until(
            lambda: ModeratedImage.objects.filter(status=Status.DONE).count() == IMAGES,
            timeout=300,
        )
        assert done, a.log() + b.log()

    per_row = ModerationEvent.objects.values("image").annotate(n=Count("pk"))
    assert len(per_row) == IMAGES
    assert {entry["n"] for entry in per_row} == {1}, "a row was classified twice"
    finished = worker_log.read_text().split()
    pks, tags = finished[0::2], finished[1::2]
    assert len(pks) == len(set(pks)) == IMAGES, "a row was finished by two workers"
    by_cluster = {tag: tags.count(tag) for tag in ("a", "b")}
    assert all(by_cluster.values()), by_cluster
    print(
        f"\nscale-out on {connection.vendor}, {kind}: {IMAGES} rows, "
        f"by cluster {by_cluster}, duplicates 0"
    )
