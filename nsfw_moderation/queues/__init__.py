"""Which queue carries work to a worker: one adapter per ``QUEUE`` value, behind ``enqueue``.

Every adapter module offers the same two functions, and the work is always
named by a stable dotted path of :mod:`nsfw_moderation.tasks` (``TASKS``):

- ``send(task, *args)``: run ``task(*args)`` in a worker, soon;
- ``send_later(task, delay, *args)``: the same, no sooner than ``delay`` seconds.

Both may raise (a broker down): :mod:`nsfw_moderation.enqueue` catches and
logs, and the maintenance job enqueues the row again. The worker code never
knows which adapter called it: each queue's task runs the same function of
:mod:`nsfw_moderation.worker.tasks`.
"""

from __future__ import annotations

import sys
from importlib import import_module
from typing import Any, Protocol, cast

from django.utils.module_loading import import_string

from nsfw_moderation.conf import conf

#: The module of each ``QUEUE`` value, imported on first use only: a site
#: without Celery never imports the Celery adapter.
ADAPTERS = {
    "django_q": "nsfw_moderation.queues.django_q",
    "tasks": "nsfw_moderation.queues.tasks",
    "celery": "nsfw_moderation.queues.celery",
    "sync": "nsfw_moderation.queues.sync",
}

#: The work a queue carries, by stable dotted path (also django-q2's task names).
TASKS = (
    "nsfw_moderation.tasks.classify",
    "nsfw_moderation.tasks.maintain",
    "nsfw_moderation.tasks.requeue_stale",
    "nsfw_moderation.tasks.match_stored",
)

#: The Python package each queue needs, for the system check.
PACKAGES = {"django_q": "django_q", "tasks": "django_tasks", "celery": "celery"}


class Adapter(Protocol):
    def send(self, task: str, *args: Any) -> None: ...

    def send_later(self, task: str, delay: float, *args: Any) -> None: ...


def adapter() -> Adapter:
    """The adapter of the configured ``QUEUE``."""
    return cast(Adapter, import_module(ADAPTERS[conf.QUEUE]))


def short_name(task: str) -> str:
    """``nsfw_moderation.tasks.classify`` → ``classify``: the name in every adapter."""
    if task not in TASKS:
        raise ValueError(f"Not a moderation task: {task}")
    return task.rsplit(".", 1)[1]


def run(task: str, *args: Any) -> dict[str, int]:
    """Run ``task`` here: what each queue's task does in its worker.

    Found by its stable dotted path, so that the adapters, which the web
    process imports, never import the worker.
    """
    result: dict[str, int] = import_string(task)(*args)
    return result


def worker_processes() -> int:
    """How many worker processes of this queue share this machine's cores, as far as known.

    A Celery worker's prefork pool says (its size, noted before the fork); a
    ``db_worker`` or ``rqworker`` is one process, which cannot know of others
    beside it: set ``TORCH_THREADS`` when running several on one machine.
    """
    celery_adapter = sys.modules.get("nsfw_moderation.queues.celery")
    pool = getattr(celery_adapter, "pool_processes", None)
    return pool if conf.QUEUE == "celery" and isinstance(pool, int) and pool > 0 else 1
