"""System checks of the chosen queue: its package, the Celery app, the Tasks backend.

Ids continue :mod:`nsfw_moderation.checks`' (``nsfw_moderation.E036`` …). Like
those, none imports the worker or loads a model.
"""

from __future__ import annotations

import importlib.util
from typing import Any

from django.core.checks import CheckMessage, Error, Tags, register
from django.utils.module_loading import import_string

from nsfw_moderation.conf import conf

PREFIX = "NSFW_MODERATION"

#: What to install for each queue (the extra of this package that brings it).
INSTALL = {
    "tasks": "pip install 'nsfw-moderation[tasks]' (the django-tasks backport; "
    "Django 6.0 has django.tasks built in)",
    "celery": "pip install 'nsfw-moderation[celery]'",
}

#: Backends that run a task in the process that enqueued it, or never.
IN_PROCESS_BACKENDS = ("ImmediateBackend", "DummyBackend")


@register(Tags.compatibility)
def check_queue_package(**kwargs: Any) -> list[CheckMessage]:
    """E036: ``QUEUE`` names a queue whose package is not installed."""
    if conf.QUEUE not in INSTALL or _queue_package_installed(conf.QUEUE):
        return []
    return [
        Error(
            f"{PREFIX}['QUEUE'] is {conf.QUEUE!r} but its package is not installed.",
            hint=INSTALL[conf.QUEUE] + ", or choose another QUEUE.",
            id="nsfw_moderation.E036",
        )
    ]


def _queue_package_installed(queue: str) -> bool:
    if queue == "celery":
        return _has_module("celery")
    return _has_module("django.tasks") or _has_module("django_tasks")


def _has_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ImportError:  # the parent package is missing
        return False


@register(Tags.compatibility)
def check_celery_app(**kwargs: Any) -> list[CheckMessage]:
    """E037: with ``QUEUE = "celery"``, no site Celery app to send tasks to."""
    if conf.QUEUE != "celery" or not _queue_package_installed("celery"):
        return []
    problem = _celery_app_problem()
    if not problem:
        return []
    return [
        Error(
            f"{PREFIX}['QUEUE'] is 'celery' but {problem}",
            hint="Set NSFW_MODERATION['CELERY_APP'] to the dotted path of your Celery app "
            "(e.g. 'mysite.celery.app'), or import that app in your project's __init__.py "
            "as Celery's Django guide shows.",
            id="nsfw_moderation.E037",
        )
    ]


def _celery_app_problem() -> str:
    from celery import Celery

    from nsfw_moderation.queues.celery import site_app

    if not conf.CELERY_APP:
        return "" if site_app() is not None else "no Celery app of the site was found."
    try:
        app = import_string(conf.CELERY_APP)
    except ImportError as exc:
        return f"CELERY_APP {conf.CELERY_APP!r} cannot be imported: {exc}"
    if not isinstance(app, Celery):
        return f"CELERY_APP {conf.CELERY_APP!r} is not a Celery app."
    return ""


@register(Tags.compatibility)
def check_tasks_backend(**kwargs: Any) -> list[CheckMessage]:
    """E038, E039: the Tasks backend exists, takes the queue, and runs tasks out of process."""
    if conf.QUEUE != "tasks" or not _queue_package_installed("tasks"):
        return []
    from nsfw_moderation.queues.framework import task_backends

    alias, queue = conf.TASKS_BACKEND, conf.TASKS_QUEUE
    try:
        backend = task_backends[alias]
    except Exception as exc:
        return [_backend_error(f"TASKS_BACKEND {alias!r} is not a usable TASKS backend: {exc}")]
    if backend.queues and queue not in backend.queues:
        return [_backend_error(f"TASKS_QUEUE {queue!r} is not among the queues of {alias!r}.")]
    if type(backend).__name__ in IN_PROCESS_BACKENDS and not _in_tests():
        return [_in_process_error(alias, type(backend).__name__)]
    return []


def _backend_error(message: str) -> Error:
    return Error(
        f"{PREFIX}: {message}",
        hint="Name a backend of settings.TASKS (and one of its QUEUES) in "
        "NSFW_MODERATION['TASKS_BACKEND'] and ['TASKS_QUEUE'].",
        id="nsfw_moderation.E039",
    )


def _in_process_error(alias: str, name: str) -> Error:
    return Error(
        f"{PREFIX}['QUEUE'] is 'tasks' but the backend {alias!r} is the {name}, which "
        "runs no task in a worker: uploads would be classified in the web process, "
        "or never.",
        hint="Use a backend with workers (django-tasks-db's DatabaseBackend and db_worker, "
        "django-tasks-rq's RQBackend and rqworker). For tests, QUEUE='sync'.",
        id="nsfw_moderation.E038",
    )


def _in_tests() -> bool:
    """Whether Django's test environment is set up (``manage.py test``, pytest-django)."""
    from django.test import utils

    return hasattr(getattr(utils, "_TestState", None), "saved_data")
