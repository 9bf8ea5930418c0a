"""The test site's Celery app, as a Django project has it: ``celery -A tests.celery_app worker``."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

app = Celery("nsfw_tests")
app.config_from_object("django.conf:settings", namespace="CELERY")

#: An app whose broker is down: nothing listens on its port.
unreachable = Celery("nsfw_unreachable", broker="redis://127.0.0.1:1/0", set_as_current=False)
