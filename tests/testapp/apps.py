from __future__ import annotations

import os
from typing import Any

from django.apps import AppConfig


class TestAppConfig(AppConfig):
    name = "tests.testapp"
    label = "testapp"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        import nsfw_moderation

        from .models import Banner

        # Registered in code rather than in settings.
        nsfw_moderation.register(Banner, fields=["image"])
        _log_worker_results()


def _log_worker_results() -> None:
    """In worker processes started by the tests: note which worker finished which row."""
    tag, path = os.environ.get("NSFW_TEST_WORKER_TAG"), os.environ.get("NSFW_TEST_WORKER_LOG")
    if not (tag and path):
        return
    from nsfw_moderation.signals import moderation_completed

    def record(sender: Any, instance: Any, **kwargs: Any) -> None:
        with open(path, "a") as log:
            log.write(f"{instance.pk} {tag}\n")

    moderation_completed.connect(record, weak=False, dispatch_uid="tests:worker-log")
