"""QUEUE = "django_q" (the default): django-q2 tasks, run by ``manage.py qcluster``."""

from __future__ import annotations

import contextlib
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from nsfw_moderation.conf import conf

#: django-q2's task group of every moderation task.
TASK_GROUP = "nsfw_moderation"


def send(task: str, *args: Any) -> None:
    from django_q.conf import Conf
    from django_q.tasks import async_task

    options: dict[str, object] = {"group": TASK_GROUP}
    if conf.CLUSTER:
        options["cluster"] = conf.CLUSTER
    # django-q2's ORM broker closes the database connection before enqueueing
    # unless it runs inside a transaction: with CONN_MAX_AGE=0 that would mean
    # a new connection for every upload.
    with transaction.atomic(using=Conf.ORM) if Conf.ORM else contextlib.nullcontext():
        async_task(task, *args, q_options=options)


def send_later(task: str, delay: float, *args: Any) -> None:
    """A one-off ``Schedule``: django-q2 has no delayed task of its own."""
    from django_q.models import Schedule

    Schedule.objects.create(
        name=f"nsfw_moderation retry {args[0] if args else ''} {timezone.now().timestamp()}",
        func=task,
        args=repr(tuple(args)),
        schedule_type=Schedule.ONCE,
        repeats=-1,  # django-q2 deletes a ONCE schedule after its run only when negative
        next_run=timezone.now() + timedelta(seconds=delay),
        cluster=conf.CLUSTER,
    )
