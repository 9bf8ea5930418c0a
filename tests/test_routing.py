"""Moderation tasks can go to their own django-q2 cluster (e.g. GPU machines)."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings
from django_q.models import OrmQ, Schedule

from nsfw_moderation import enqueue
from nsfw_moderation.apps import SCHEDULE_NAME, install_schedule
from nsfw_moderation.models import ModeratedImage, Status
from tests.conftest import moderation
from tests.images import blue, red
from tests.testapp.models import Photo
from tests.workers import Cluster, wait_until

pytestmark = pytest.mark.django_db(transaction=True)

orm_broker_only = pytest.mark.skipif(
    "orm" not in settings.Q_CLUSTER, reason="inspects the ORM broker's queue table"
)


@orm_broker_only
def test_tasks_go_to_the_configured_cluster():
    with moderation(QUEUE="django_q", CLUSTER="moderation"):
        Photo.objects.create(image=red())
    (task,) = OrmQ.objects.all()
    assert task.key == "moderation"


@orm_broker_only
def test_without_a_cluster_tasks_go_to_the_default_queue():
    with moderation(QUEUE="django_q"):
        Photo.objects.create(image=red())
    assert OrmQ.objects.get().key == settings.Q_CLUSTER["name"]


def test_retries_and_the_periodic_job_use_the_cluster_too():
    with moderation(QUEUE="django_q", CLUSTER="moderation"):
        enqueue.enqueue(1, delay=30)
        install_schedule()
    assert Schedule.objects.get(func=enqueue.TASK).cluster == "moderation"
    assert Schedule.objects.get(name=SCHEDULE_NAME).cluster == "moderation"


@pytest.mark.slow
@pytest.mark.usefixtures("empty_broker")
def test_only_the_moderation_cluster_runs_moderation_tasks(tmp_path: Path, worker_backend):
    env, _ = worker_backend
    with moderation(QUEUE="django_q", CLUSTER="nsfw-moderation"):
        photos = [Photo.objects.create(image=colour) for colour in (red(), blue())]
    with Cluster(tmp_path / "general.log", **env):
        # A general-purpose cluster never picks them up...
        assert not wait_until(
            lambda: ModeratedImage.objects.exclude(status=Status.QUEUED).exists(), timeout=5
        )
    with Cluster(tmp_path / "moderation.log", Q_CLUSTER_NAME="nsfw-moderation", **env) as c:
        done = wait_until(
            lambda: ModeratedImage.objects.filter(status=Status.DONE).count() == len(photos),
            timeout=120,
        )
        assert done, c.log()
