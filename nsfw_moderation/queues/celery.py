"""QUEUE = "celery": Celery tasks of this app, sent through the site's own Celery app.

The site's app is ``CELERY_APP`` (a dotted path, e.g. ``"mysite.celery.app"``)
or else the app a standard Django project creates in ``mysite/celery.py`` and
imports from ``mysite/__init__.py`` (:func:`site_app`). Tasks go to the
queue ``CELERY_QUEUE`` (default: the app's ``task_default_queue``), so a site
can give moderation workers of their own (``celery worker -Q moderation``).

The tasks are registered on every Celery app with ``shared_task`` when this
module is imported, which :class:`~nsfw_moderation.apps.NsfwModerationConfig`
does when ``QUEUE = "celery"``: a worker that sets Django up has them. They
are named by the stable dotted paths (``nsfw_moderation.tasks.classify`` …).

``acks_late``: a message is acknowledged after its task ran, so a worker lost
mid-task leaves it to the broker to deliver again (Redis: after its
``visibility_timeout``). Running a task twice is harmless: a row is claimed
once. Nothing relies on that redelivery: the row of a lost task is found by
the maintenance job (``maintenance_schedule()`` for beat).
"""

from __future__ import annotations

from typing import Any

from celery import Celery, _state, shared_task
from celery.signals import worker_init, worker_process_init
from django.utils.module_loading import import_string

from nsfw_moderation.conf import conf
from nsfw_moderation.queues import run

#: Every task: acknowledged when done (redelivered if the worker is lost) and
#: no result stored (the row is the result).
OPTIONS: dict[str, Any] = {"acks_late": True, "ignore_result": True}
NO_RETRY = {"max_retries": 0}


@shared_task(name="nsfw_moderation.tasks.classify", **OPTIONS)
def classify(pk: int | None = None) -> dict[str, int]:
    return run("nsfw_moderation.tasks.classify", pk)


@shared_task(name="nsfw_moderation.tasks.maintain", **OPTIONS)
def maintain() -> dict[str, int]:
    return run("nsfw_moderation.tasks.maintain")


@shared_task(name="nsfw_moderation.tasks.requeue_stale", **OPTIONS)
def requeue_stale(older_than: float | None = None) -> dict[str, int]:
    return run("nsfw_moderation.tasks.requeue_stale", older_than)


@shared_task(name="nsfw_moderation.tasks.match_stored", **OPTIONS)
def match_stored(bank_pk: int, after: int = 0) -> dict[str, int]:
    return run("nsfw_moderation.tasks.match_stored", bank_pk, after)


#: The size of this worker's prefork pool, noted in its main process before the
#: children are forked: each child gives the model its share of the cores.
pool_processes: int | None = None


@worker_init.connect(weak=False, dispatch_uid="nsfw_moderation:celery-pool")
def note_pool_size(sender: Any = None, **kwargs: Any) -> None:
    """In the worker's main process, once its concurrency is known (``--concurrency``)."""
    global pool_processes
    concurrency = getattr(sender, "concurrency", None)
    pool_processes = concurrency if isinstance(concurrency, int) else None


@worker_process_init.connect(weak=False, dispatch_uid="nsfw_moderation:celery-child")
def forget_inherited_model(**kwargs: Any) -> None:
    """In each prefork child: a model the parent loaded (it should not) is loaded anew here."""
    from nsfw_moderation.backends import reset_backend

    reset_backend()


def celery_app() -> Celery:
    """The site's Celery app: ``CELERY_APP``, else :func:`site_app`."""
    if conf.CELERY_APP:
        return import_string(conf.CELERY_APP)
    app = site_app()
    if app is None:  # check nsfw_moderation.E037
        raise LookupError("No Celery app of the site: set NSFW_MODERATION['CELERY_APP'].")
    return app


def site_app() -> Celery | None:
    """The app the site created, whichever thread asks.

    ``celery.current_app`` is per thread: in other threads (a threaded
    server's request threads) it is the default app, which Celery's Django
    fix-up makes the site's app, unless something asked for ``current_app``
    before the site's app existed: then it is Celery's fallback app, which
    sends to a broker at its default address. So: this thread's current app,
    else the default app if a site made it, else the one app created as current.
    """
    current = getattr(_state._tls, "current_app", None)
    if current is not None:
        return current
    if _state.default_app is not None and _state.default_app.set_as_current:
        return _state.default_app
    candidates = [app for app in _state._get_active_apps() if app.set_as_current]
    return candidates[0] if len(candidates) == 1 else None


def send(task: str, *args: Any) -> None:
    _send(task, args)


def send_later(task: str, delay: float, *args: Any) -> None:
    _send(task, args, countdown=delay)


def _send(task: str, args: tuple[Any, ...], **options: Any) -> None:
    if conf.CELERY_QUEUE:
        options["queue"] = conf.CELERY_QUEUE
    app = celery_app()
    # A broker that is down fails this call at once (logged by enqueue, found
    # again by maintenance) instead of holding the upload: no retry of the
    # message (retry=False), nor of the connection (max_retries=0), which
    # kombu would otherwise retry for broker_connection_timeout seconds.
    with app.connection_for_write(transport_options=NO_RETRY) as connection:
        app.send_task(task, args=args, retry=False, connection=connection, **options)


def maintenance_schedule(minutes: float | None = None) -> dict[str, dict[str, Any]]:
    """The beat entry of the maintenance job, for the site's ``beat_schedule``.

    ``app.conf.beat_schedule = {**app.conf.beat_schedule, **maintenance_schedule()}``;
    every ``minutes`` (default: as django-q2's Schedule, ``STALE_AFTER`` / 120, at least 1).
    """
    if minutes is None:
        minutes = max(1, int(conf.STALE_AFTER // 120))
    entry: dict[str, Any] = {"task": "nsfw_moderation.tasks.maintain", "schedule": minutes * 60}
    if conf.CELERY_QUEUE:
        entry["options"] = {"queue": conf.CELERY_QUEUE}
    return {"nsfw_moderation: maintenance": entry}
