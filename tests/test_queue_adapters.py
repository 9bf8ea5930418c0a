"""Each queue's adapter in the web process: on commit, never failing an upload, checked.

The end-to-end tests with real workers are in test_queues.py; these need no worker.
"""

from __future__ import annotations

import importlib.abc
import logging
import sys
import time
from datetime import timedelta
from typing import Any

import pytest
from django.core.checks import run_checks
from django.db import transaction
from django.test import override_settings
from django.test import utils as test_utils
from django.utils import timezone

from nsfw_moderation import enqueue
from nsfw_moderation.models import ModeratedImage, Status
from tests.conftest import moderation
from tests.images import red
from tests.testapp.models import Photo

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")


def check_ids() -> set[str]:
    return {message.id for message in run_checks() if message.id}


def task_rows() -> Any:
    from django_tasks_db.models import DBTaskResult

    return DBTaskResult.objects.all()


# --- Django's Tasks framework ------------------------------------------------------


def test_tasks_enqueues_once_the_upload_is_committed():
    with moderation(QUEUE="tasks"):
        with transaction.atomic():
            photo = Photo.objects.create(image=red())
            assert not task_rows().exists(), "a worker could look for an uncommitted row"
        row = ModeratedImage.objects.get(object_id=str(photo.pk))
    task = task_rows().get()
    assert task.task_path == "nsfw_moderation.queues.tasks.classify"
    assert task.args_kwargs["args"] == [row.pk]
    assert task.queue_name == conf_queue_name()


def conf_queue_name() -> str:
    from django.conf import settings

    return settings.QUEUE_NAME


def test_tasks_retry_is_deferred():
    with moderation(QUEUE="tasks"):
        enqueue.enqueue(7, delay=30)
    task = task_rows().get()
    assert task.run_after > timezone.now() + timedelta(seconds=20)


def test_tasks_retry_on_a_backend_without_defer_is_left_to_maintenance():
    # The ImmediateBackend cannot defer: nothing is sent (it would run here,
    # now), and the row waits for the maintenance sweep after its retry_at.
    with moderation(QUEUE="tasks", TASKS_BACKEND="immediate", TASKS_QUEUE="default"):
        enqueue.enqueue(7, delay=30)
    assert not task_rows().exists()


def test_an_upload_never_fails_or_waits_because_rq_is_down(caplog):
    with moderation(QUEUE="tasks", TASKS_BACKEND="unreachable", TASKS_QUEUE="nsfw-unreachable"):
        started = time.monotonic()
        photo = Photo.objects.create(image=red())
        elapsed = time.monotonic() - started
    assert Photo.objects.filter(pk=photo.pk).exists()
    assert ModeratedImage.objects.get(object_id=str(photo.pk)).status == Status.QUEUED
    assert "Could not enqueue moderated image" in caplog.text
    assert elapsed < 3


# --- Celery ----------------------------------------------------------------------------


def test_an_upload_never_fails_or_waits_because_the_celery_broker_is_down(caplog):
    caplog.set_level(logging.ERROR)
    with moderation(QUEUE="celery", CELERY_APP="tests.celery_app.unreachable"):
        started = time.monotonic()
        photo = Photo.objects.create(image=red())
        elapsed = time.monotonic() - started
    assert ModeratedImage.objects.get(object_id=str(photo.pk)).status == Status.QUEUED
    assert "Could not enqueue moderated image" in caplog.text
    # Celery would retry the connection for seconds: the adapter asks it not to.
    assert elapsed < 3


def test_celery_tasks_are_registered_under_their_stable_names():
    import nsfw_moderation.queues.celery  # noqa: F401  (what ready() does with QUEUE="celery")
    from nsfw_moderation.queues import TASKS
    from tests.celery_app import app

    assert set(TASKS) <= set(app.tasks)
    assert app.tasks["nsfw_moderation.tasks.classify"].acks_late


def test_the_beat_entry_runs_maintenance_on_the_moderation_queue():
    from nsfw_moderation.queues.celery import maintenance_schedule

    with moderation(CELERY_QUEUE="moderation", STALE_AFTER=600):
        (entry,) = maintenance_schedule().values()
    assert entry == {
        "task": "nsfw_moderation.tasks.maintain",
        "schedule": 300,
        "options": {"queue": "moderation"},
    }


# --- Checks ------------------------------------------------------------------------------


class Blocker(importlib.abc.MetaPathFinder):
    """Makes a package uninstalled for the import system."""

    def __init__(self, *names: str) -> None:
        self.names = names

    def find_spec(self, name: str, *args: Any) -> None:
        if name.split(".")[0] in self.names:
            raise ModuleNotFoundError(name)


@pytest.mark.parametrize(
    ("queue", "packages"), [("celery", ["celery"]), ("tasks", ["django_tasks"])]
)
def test_e036_the_queues_package_is_missing(monkeypatch, queue: str, packages: list[str]):
    assert "nsfw_moderation.E036" not in checks_with(monkeypatch, QUEUE=queue)
    for name in list(sys.modules):
        if name.split(".")[0] in packages:
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(sys, "meta_path", [Blocker(*packages), *sys.meta_path])
    if queue == "tasks" and "django.tasks" in sys.modules:  # Django 6 has it built in
        pytest.skip("django.tasks is part of this Django")
    assert "nsfw_moderation.E036" in checks_with(monkeypatch, QUEUE=queue)


def checks_with(monkeypatch: Any, **changes: Any) -> set[str]:
    with moderation(**changes):
        return check_ids()


def test_e037_no_celery_app_to_send_to(monkeypatch):
    from celery import _state

    from tests.celery_app import app

    assert "nsfw_moderation.E037" in checks_with(monkeypatch, QUEUE="celery", CELERY_APP="no.app")
    assert "nsfw_moderation.E037" in checks_with(
        monkeypatch, QUEUE="celery", CELERY_APP="tests.celery_app.os"
    )
    # Unset: the site's app (tests.celery_app.app) is found…
    assert "nsfw_moderation.E037" not in checks_with(monkeypatch, QUEUE="celery", CELERY_APP=None)
    # …and where the site created none, there is none to find.
    monkeypatch.setattr(_state._tls, "current_app", None)
    monkeypatch.setattr(app, "set_as_current", False)
    assert "nsfw_moderation.E037" in checks_with(monkeypatch, QUEUE="celery", CELERY_APP=None)


def test_the_sites_celery_app_is_found_from_any_thread(monkeypatch):
    """A request thread, where Celery's fallback app became the default before the site's.

    ``celery.current_app`` is per thread; Celery's Django fix-up makes the
    site's app the default for other threads, unless something asked for
    ``current_app`` before the site's app existed: then it is the fallback.
    """
    import threading

    from celery import Celery, _state, current_app

    from nsfw_moderation.queues.celery import celery_app
    from tests.celery_app import app

    fallback = Celery("default", fixups=[], set_as_current=False)
    monkeypatch.setattr(_state, "default_app", fallback)
    found: dict[str, Any] = {}

    def request_thread() -> None:
        with moderation(QUEUE="celery", CELERY_APP=None):
            found["current_app"] = current_app._get_current_object()
            found["ours"] = celery_app()

    thread = threading.Thread(target=request_thread)
    thread.start()
    thread.join()
    assert found["current_app"] is fallback  # why celery.current_app is not enough
    assert found["ours"] is app


def test_e038_an_in_process_tasks_backend_outside_tests(monkeypatch):
    immediate = {"QUEUE": "tasks", "TASKS_BACKEND": "immediate", "TASKS_QUEUE": "default"}
    assert "nsfw_moderation.E038" not in checks_with(monkeypatch, **immediate)  # in tests
    monkeypatch.delattr(test_utils._TestState, "saved_data")
    assert "nsfw_moderation.E038" in checks_with(monkeypatch, **immediate)
    assert "nsfw_moderation.E038" not in checks_with(monkeypatch, QUEUE="tasks")


def test_e039_the_tasks_backend_or_queue_is_not_configured(monkeypatch):
    assert "nsfw_moderation.E039" in checks_with(monkeypatch, QUEUE="tasks", TASKS_BACKEND="nope")
    assert "nsfw_moderation.E039" in checks_with(monkeypatch, QUEUE="tasks", TASKS_QUEUE="other")
    assert not {"nsfw_moderation.E038", "nsfw_moderation.E039"} & checks_with(
        monkeypatch, QUEUE="tasks"
    )


def test_the_queue_choices_include_tasks_and_celery():
    for queue in ("tasks", "celery"):
        with override_settings(NSFW_MODERATION={"QUEUE": queue}):
            assert "nsfw_moderation.E006" not in check_ids()
