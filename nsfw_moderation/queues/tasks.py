"""QUEUE = "tasks": Django's Tasks framework (``django.tasks``, or the ``django_tasks`` backport).

The tasks below are the framework's entry points; their dotted paths
(``nsfw_moderation.queues.tasks.classify`` …) are what a backend stores, so
they are stable. Each is sent to the backend alias ``TASKS_BACKEND`` and the
queue ``TASKS_QUEUE``; the backend must run tasks out of process (check
``nsfw_moderation.E038``): ``django-tasks-db``'s ``db_worker``, or
``django-tasks-rq``'s ``rqworker`` with ``--worker-class rq.worker.SimpleWorker``
(RQ's default worker forks a process per task, which would load the model for
every task).

This module is imported by the web process to enqueue: it never imports the
worker at import time.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.db import close_old_connections
from django.utils import timezone

from nsfw_moderation.conf import conf
from nsfw_moderation.queues import run, short_name
from nsfw_moderation.queues.framework import task, task_backends


def _framework_task(function: Callable[..., Any]) -> Any:
    # The framework checks a task against its backend when it is defined, so
    # it is defined on the configured backend and queue; each send names them
    # again (settings read on access).
    return task(backend=conf.TASKS_BACKEND, queue_name=conf.TASKS_QUEUE)(function)


@_framework_task
def classify(pk: int | None = None) -> dict[str, int]:
    return _run("nsfw_moderation.tasks.classify", pk)


@_framework_task
def maintain() -> dict[str, int]:
    return _run("nsfw_moderation.tasks.maintain")


@_framework_task
def requeue_stale(older_than: float | None = None) -> dict[str, int]:
    return _run("nsfw_moderation.tasks.requeue_stale", older_than)


@_framework_task
def match_stored(bank_pk: int, after: int = 0) -> dict[str, int]:
    return _run("nsfw_moderation.tasks.match_stored", bank_pk, after)


def _run(task_path: str, *args: Any) -> dict[str, int]:
    # RQ's SimpleWorker never closes Django's database connections between
    # tasks (db_worker does, as Celery's Django fix-up does): one the database
    # dropped (a restart, a failover) would fail every later task.
    close_old_connections()
    try:
        return run(task_path, *args)
    finally:
        close_old_connections()


def send(task_path: str, *args: Any) -> None:
    _configured(task_path).enqueue(*args)


def send_later(task_path: str, delay: float, *args: Any) -> None:
    if not task_backends[conf.TASKS_BACKEND].supports_defer:
        # The row waits with its retry_at; the maintenance sweep enqueues it
        # once that has passed. Sending it now would only find it not due.
        return
    run_after = timezone.now() + timedelta(seconds=delay)
    _configured(task_path).using(run_after=run_after).enqueue(*args)


def _configured(task_path: str) -> Any:
    framework_task = globals()[short_name(task_path)]
    return framework_task.using(backend=conf.TASKS_BACKEND, queue_name=conf.TASKS_QUEUE)
