"""Settings for the demo site. Not for production: DEBUG is on and the key is public.

Environment overrides (all optional):

- ``PORT``: where ``run.py`` serves the site (default 8000).
- ``NSFW_DEMO_BACKEND``: ``transformers`` or ``opennsfw``, to force a classifier.
- ``NSFW_DEMO_QUEUE``: ``django_q`` (default, a qcluster worker) or ``sync``
  (classify inside the web process; handy for scripts and tests).
- ``DEMO_DB_PATH`` / ``DEMO_MEDIA_ROOT``: where the SQLite file and uploads live.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from demo_site.model_choice import cached_revision, choose_backend

BASE_DIR = Path(__file__).resolve().parent

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "demo-only-insecure-key-do-not-deploy")
DEBUG = True
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]"]
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
    "demo_site.gallery",
    "demo_site.accounts",
]
# The REST API (demo_site/gallery/api.py), where Django REST framework is installed.
if importlib.util.find_spec("rest_framework"):
    INSTALLED_APPS += ["rest_framework", "nsfw_moderation.contrib.rest_framework"]
    REST_FRAMEWORK = {
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
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "demo_site.urls"
WSGI_APPLICATION = "demo_site.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # The site's own templates come first: its layout for nsfw_moderation's
        # owner pages (templates/nsfw_moderation/layouts/base.html).
        "DIRS": [BASE_DIR / "templates"],
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
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("DEMO_DB_PATH", str(BASE_DIR / "db.sqlite3")),
        # The web server and the worker write to the same file: wait for locks
        # rather than fail, and take the write lock up front.
        "OPTIONS": {
            "timeout": 30,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        },
    }
}

STATIC_URL = "/static/"
MEDIA_URL = "/media/"
MEDIA_ROOT = os.environ.get("DEMO_MEDIA_ROOT", str(BASE_DIR / "media"))
# Uploads are read back by the worker; keep them modest for a demo. The upload
# form refuses larger files (MaxFileSizeValidator reads MAX_FILE_SIZE below).
MAX_UPLOAD_SIZE = 10 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = MAX_UPLOAD_SIZE
FILE_UPLOAD_MAX_MEMORY_SIZE = MAX_UPLOAD_SIZE

# Site users (not staff) log in here; the admin has its own login page.
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/"

NSFW_DEMO_CHOICE = choose_backend()

NSFW_MODERATION = {
    # gallery.Photo is registered here; accounts.Profile in code, with
    # nsfw_moderation.register() in its AppConfig.ready().
    "MODELS": {"gallery.Photo": ["image"]},
    "BACKEND": NSFW_DEMO_CHOICE.backend,
    # The commit of the model in the local cache: what the worker loads offline.
    "MODEL_REVISION": cached_revision(),
    "MAX_FILE_SIZE": MAX_UPLOAD_SIZE,
    "DEVICE": "cpu",
    "QUEUE": os.environ.get("NSFW_DEMO_QUEUE", "django_q"),
    "FLAG_THRESHOLD": 0.5,
    "BLOCK_THRESHOLD": 0.9,
    "BATCH_SIZE": 8,
    # Statements of reasons name the uploader, who may read them and appeal at
    # /moderation/decisions/; the e-mails to them are printed on the console.
    "OWNER": "demo_site.gallery.moderation.owner_of",
}
EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"

# One worker: torch/onnxruntime threads per worker are cores // workers, and
# more workers than that only makes each of them slower on a small machine.
# A task must finish (model load included) before it is retried: timeout < retry.
Q_CLUSTER = {
    "name": "nsfw-demo",
    "workers": 1,
    "timeout": 120,
    "retry": 180,
    "max_attempts": 1,
    "ack_failures": True,
    "poll": 0.5,
    "orm": "default",
    "catch_up": False,
    "label": "Django Q",
    "log_level": "INFO",
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"nsfw_moderation": {"handlers": ["console"], "level": "INFO"}},
}
