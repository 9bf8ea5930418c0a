"""Settings for the Wagtail suite (tests/with_wagtail/): a Wagtail site with no Django admin URLs.

Run with ``pytest tests/with_wagtail --ds=tests.wagtail_settings`` (``make pytest``
does). ``django.contrib.admin`` stays installed, as in Wagtail's project
template, but tests/wagtail_urls.py mounts none of its URLs.
"""

from __future__ import annotations

import django

from tests.settings import *  # noqa: F403
from tests.settings import INSTALLED_APPS, NSFW_MODERATION, TASKS

INSTALLED_APPS = [
    # Before wagtail.images: its templates add the badges to Wagtail's own.
    "nsfw_moderation.contrib.wagtail",
    *INSTALLED_APPS,
    "tests.wagtailapp",
    "wagtail.users",
    "modelsearch",
    "wagtail.images",
    "wagtail.documents",
    "wagtail.admin",
    "wagtail",
    "modelcluster",
    "taggit",
]
ROOT_URLCONF = "tests.wagtail_urls"

DATABASES = {
    **DATABASES,  # noqa: F405
    # A test database of its own (Wagtail's tables are not the main suite's);
    # on SQLite in memory, where Wagtail's few hundred migrations run fastest.
    "default": {
        **DATABASES["default"],  # noqa: F405
        "TEST": {"NAME": f"test_{DATABASES['default']['NAME']}_wagtail"}  # noqa: F405
        if not DATABASES["default"]["ENGINE"].endswith("sqlite3")  # noqa: F405
        else {},
    },
}

WAGTAIL_SITE_NAME = "nsfw_moderation tests"
WAGTAILADMIN_BASE_URL = "http://testserver"
# Wagtail's own background work (deleting files, search index) runs at once.
TASKS = {
    **TASKS,
    "default": {
        "BACKEND": ("django.tasks" if django.VERSION >= (6,) else "django_tasks")
        + ".backends.immediate.ImmediateBackend"
    },
}
NSFW_MODERATION = {
    **NSFW_MODERATION,
    "MODELS": {**NSFW_MODERATION["MODELS"], "wagtailimages.Image": ["file"]},
    "BACKEND": "tests.backends.ColourBackend",
}
