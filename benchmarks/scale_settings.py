"""Settings for ``benchmarks/scale.py``: the benchmark settings on PostgreSQL, with the admin.

The database comes from ``NSFW_BENCH_DATABASE_URL``
(default ``postgres://postgres@127.0.0.1:5432/nsfw_scale_bench``).
"""

from __future__ import annotations

import os
from urllib.parse import unquote, urlparse

from benchmarks.settings import *  # noqa: F403
from benchmarks.settings import INSTALLED_APPS, NSFW_MODERATION

DATABASE_URL = os.environ.get(
    "NSFW_BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/nsfw_scale_bench"
)
_url = urlparse(DATABASE_URL)
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": unquote(_url.path.lstrip("/")),
        "USER": unquote(_url.username or "postgres"),
        "PASSWORD": unquote(_url.password or ""),
        "HOST": _url.hostname or "127.0.0.1",
        "PORT": str(_url.port or 5432),
        "CONN_MAX_AGE": None,
    }
}

INSTALLED_APPS = [
    "django.contrib.admin",
    *INSTALLED_APPS,
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
ROOT_URLCONF = "benchmarks.urls"
ALLOWED_HOSTS = ["testserver"]
STATIC_URL = "/static/"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

NSFW_MODERATION = {
    **NSFW_MODERATION,
    "MODELS": {"benchapp.ScalePhoto": ["image"], "benchapp.ScaleAvatar": ["image"]},
    "QUEUE": "sync",
}
