"""Settings for the test suite (and for the qcluster processes it starts)."""

from __future__ import annotations

import importlib.util
import json
import os
import uuid
from pathlib import Path

import django

from tests.database import database_from_env, moderation_database

BASE_DIR = Path(__file__).resolve().parent

SECRET_KEY = "tests-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_q",
    "nsfw_moderation",
    "tests.testapp",
]
# The other queues' apps, where installed (make install brings them): Django's
# Tasks framework (the backport before Django 6), its database and RQ backends.
INSTALLED_APPS += [
    app
    for app in (
        "django_tasks" if django.VERSION < (6,) else "",
        "django_tasks_db",
        "django_rq",
    )
    if app and importlib.util.find_spec(app)
]
# The REST framework integration and the schema that describes it, where installed.
if importlib.util.find_spec("rest_framework"):
    INSTALLED_APPS += ["rest_framework", "nsfw_moderation.contrib.rest_framework"]
# As a site would configure them: sessions (with their CSRF check) and HTTP Basic.
REST_FRAMEWORK: dict[str, object] = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.BasicAuthentication",
    ],
}
if importlib.util.find_spec("drf_spectacular"):
    INSTALLED_APPS += ["drf_spectacular"]
    REST_FRAMEWORK["DEFAULT_SCHEMA_CLASS"] = "drf_spectacular.openapi.AutoSchema"

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

ROOT_URLCONF = "tests.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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

DATABASES = {
    "default": database_from_env(BASE_DIR),
    # Used only by tests that route nsfw_moderation there (tests/routers.py).
    "moderation": moderation_database(BASE_DIR),
}

STATIC_URL = "/static/"
MEDIA_URL = "/media/"
MEDIA_ROOT = os.environ.get("NSFW_TEST_MEDIA_ROOT", str(BASE_DIR / ".media"))

# A tiny random-weight ViT with the Falconsai shape, built by tests/conftest.py
# with save_pretrained and loaded through the real transformers code path.
TINY_MODEL_DIR = os.environ.get("NSFW_TEST_MODEL_DIR", str(BASE_DIR / ".tiny-vit"))

# The queue of this test run on Redis, Celery and the Tasks framework: its own
# name, inherited by the worker processes the tests start, so that test runs
# side by side on one Redis never take each other's tasks.
QUEUE_NAME = os.environ.setdefault("NSFW_TEST_QUEUE_NAME", f"nsfw-tests-{uuid.uuid4().hex[:8]}")
QUEUE_REDIS_URL = os.environ.get("NSFW_TEST_QUEUE_REDIS_URL", "redis://127.0.0.1:6379/5")

# Django's Tasks framework: "default" on the database (db_worker), "rq" on Redis (rqworker).
# "unreachable": RQ on a port where nothing listens (a broker that is down).
UNREACHABLE_REDIS_URL = "redis://127.0.0.1:1/0"
TASKS = {
    "default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": [QUEUE_NAME]},
    "rq": {"BACKEND": "django_tasks_rq.RQBackend", "QUEUES": [QUEUE_NAME]},
    "unreachable": {"BACKEND": "django_tasks_rq.RQBackend", "QUEUES": ["nsfw-unreachable"]},
    "immediate": {
        "BACKEND": ("django.tasks" if django.VERSION >= (6,) else "django_tasks")
        + ".backends.immediate.ImmediateBackend"
    },
}
RQ_QUEUES = {
    QUEUE_NAME: {"URL": QUEUE_REDIS_URL},
    "nsfw-unreachable": {"URL": UNREACHABLE_REDIS_URL, "SOCKET_CONNECT_TIMEOUT": 1},
}

# Celery (tests/celery_app.py reads the CELERY_ settings): one task at a time
# per child, so that a killed worker holds as little as possible.
CELERY_BROKER_URL = QUEUE_REDIS_URL
CELERY_TASK_DEFAULT_QUEUE = QUEUE_NAME
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

NSFW_MODERATION = {
    "MODELS": {
        "testapp.Photo": ["image"],
        "testapp.Document": ["file"],
        "testapp.Slide": ["picture"],
        "testapp.Profile": ["avatar", "banner"],
        "testapp.Member": ["avatar"],
    },
    "MODEL": TINY_MODEL_DIR,
    "DEVICE": "cpu",
    "PRECISION": os.environ.get("NSFW_TEST_PRECISION", "fp32"),
    "OPENVINO_CACHE": os.environ.get("NSFW_TEST_OPENVINO_CACHE", str(BASE_DIR / ".openvino")),
    "MAX_SCORE_DIFFERENCE": float(os.environ.get("NSFW_TEST_MAX_SCORE_DIFFERENCE", "0.02")),
    "MAX_VERDICT_FLIPS": int(os.environ.get("NSFW_TEST_MAX_VERDICT_FLIPS", "0")),
    # Where torch is not installed (Python 3.12+ here), the real open_nsfw weights.
    "BACKEND": os.environ.get("NSFW_TEST_BACKEND")
    or ("transformers" if importlib.util.find_spec("torch") else "opennsfw"),
    "QUEUE": os.environ.get("NSFW_TEST_QUEUE", "sync"),
    "BATCH_SIZE": int(os.environ.get("NSFW_TEST_BATCH_SIZE", "8")),
    "RETRY_DELAY": 1,
    # Threads per worker process (benchmarks/queues.py gives each worker its share).
    "TORCH_THREADS": int(os.environ["NSFW_TEST_TORCH_THREADS"])
    if os.environ.get("NSFW_TEST_TORCH_THREADS")
    else None,
    "TASKS_BACKEND": os.environ.get("NSFW_TEST_TASKS_BACKEND", "default"),
    "TASKS_QUEUE": QUEUE_NAME,
    "CELERY_APP": "tests.celery_app.app",
    "CELERY_QUEUE": QUEUE_NAME,
}

Q_CLUSTER = {
    "name": os.environ.get("NSFW_TEST_CLUSTER_NAME", "nsfw-tests"),
    "workers": int(os.environ.get("NSFW_TEST_WORKERS", "1")),
    "timeout": 60,
    "retry": 120,
    "recycle": 10_000,
    "poll": 0.1,
    "orm": "default",
    "catch_up": False,
    "ack_failures": True,
    "max_attempts": 1,
    "log_level": "WARNING",
    # A cluster for moderation tasks only (NSFW_MODERATION["CLUSTER"]), started
    # with Q_CLUSTER_NAME=nsfw-moderation; it shares "name", the signing salt.
    "ALT_CLUSTERS": {"nsfw-moderation": {}},
}
# A shadow model for worker processes (JSON), e.g. '{"MODEL": "/path/to/model"}'.
if os.environ.get("NSFW_TEST_SHADOW_MODEL"):
    NSFW_MODERATION["SHADOW_MODEL"] = json.loads(os.environ["NSFW_TEST_SHADOW_MODEL"])

if os.environ.get("NSFW_TEST_BROKER") == "redis":
    Q_CLUSTER.pop("orm")
    Q_CLUSTER["redis"] = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")

# Worker processes log "LEVEL logger: message", so that tests can read their logs;
# NSFW_TEST_LOG_LEVEL=INFO shows what an operator sees.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"record": {"format": "%(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "record"}},
    "loggers": {
        "nsfw_moderation": {
            "handlers": ["console"],
            "level": os.environ.get("NSFW_TEST_LOG_LEVEL", "WARNING"),
        },
        "django-q": {"handlers": ["console"], "level": "WARNING", "propagate": False},
    },
}
