"""Wiring at start-up: the registry from settings, the receivers, the periodic jobs, tasks."""

from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.core.signals import setting_changed
from django.db.backends.signals import connection_created
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class NsfwModerationConfig(AppConfig):
    name = "nsfw_moderation"
    verbose_name = _("NSFW moderation")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from nsfw_moderation import (  # noqa: F401
            append_only,
            checks,
            handlers,
            hooks,
            notices,
            registry,
            signals,
        )
        from nsfw_moderation.queues import checks as queue_checks  # noqa: F401

        # Before any query: the records' triggers ask every SQLite connection.
        connection_created.connect(
            append_only.register_sqlite_function, dispatch_uid="nsfw_moderation:append_only"
        )

        handlers.connect_registry()
        registry.load_from_settings()
        signals.image_blocked.connect(hooks.on_blocked, dispatch_uid="nsfw_moderation:blocked")
        signals.image_reviewed.connect(hooks.on_reviewed, dispatch_uid="nsfw_moderation:reviewed")
        signals.appeal_decided.connect(
            hooks.on_appeal_decided, dispatch_uid="nsfw_moderation:appeal_decided"
        )
        connect_notices(signals, notices)
        setting_changed.connect(settings_changed, dispatch_uid="nsfw_moderation:settings")
        post_migrate.connect(install_schedule, sender=self, dispatch_uid="nsfw_moderation:schedule")
        register_celery_tasks()


def register_celery_tasks() -> None:
    """With ``QUEUE = "celery"``: this app's tasks, on every Celery app (``shared_task``).

    Imported here, in every process that sets Django up, so that a Celery
    worker knows them without ``autodiscover_tasks``. Without Celery
    installed, check ``nsfw_moderation.E036`` says so instead of a crash.
    """
    import importlib.util

    from nsfw_moderation.conf import conf

    if conf.QUEUE == "celery" and importlib.util.find_spec("celery") is not None:
        import nsfw_moderation.queues.celery  # noqa: F401


def connect_notices(signals: Any, notices: Any) -> None:
    """E-mail to the owner for every notice (statements are written with their decisions)."""
    signals.decision_notice.connect(
        notices.email_owner, dispatch_uid="nsfw_moderation:notices.email_owner"
    )


def settings_changed(setting: str, **kwargs: Any) -> None:
    """Forget cached state built from ``NSFW_MODERATION`` (used by ``override_settings``)."""
    if setting != "NSFW_MODERATION":
        return
    from nsfw_moderation import registry
    from nsfw_moderation.backends import reset_backend

    reset_backend()
    registry.load_from_settings()


# The name predates reconciliation; kept so that upgrades update the same row.
SCHEDULE_NAME = "nsfw_moderation: re-queue stale rows"


def install_schedule(using: str = "default", **kwargs: Any) -> None:
    """Install the periodic maintenance: dropped rows re-queued, files without rows found."""
    from django.apps import apps

    from nsfw_moderation.conf import conf

    if conf.QUEUE != "django_q" or not apps.is_installed("django_q"):
        return
    from django_q.models import Schedule

    Schedule.objects.using(using).update_or_create(
        name=SCHEDULE_NAME,
        defaults={
            "func": "nsfw_moderation.tasks.maintain",
            "schedule_type": Schedule.MINUTES,
            "minutes": max(1, int(conf.STALE_AFTER // 120) or 1),
            "repeats": -1,
            "cluster": conf.CLUSTER,
        },
    )
