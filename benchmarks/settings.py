"""Settings for ``benchmarks/run.py`` and the ``qcluster`` it starts.

Everything that differs between runs comes from ``NSFW_BENCH_*`` environment
variables set by the script: a file SQLite database, the media root, the
model directory and the precision.
"""

from __future__ import annotations

import os

SECRET_KEY = "benchmarks-only-not-secret"
DEBUG = False
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django_q",
    "nsfw_moderation",
    "benchmarks.benchapp",
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("NSFW_BENCH_DB", "benchmarks.sqlite3"),
        "OPTIONS": {
            "timeout": 30,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        },
    }
}

MEDIA_ROOT = os.environ.get("NSFW_BENCH_MEDIA", "media")

NSFW_MODERATION = {
    "MODELS": {"benchapp.ModeratedPhoto": ["image"]},
    "BACKEND": os.environ.get("NSFW_BENCH_BACKEND", "transformers"),
    "MODEL": os.environ.get("NSFW_BENCH_MODEL", ""),
    "DEVICE": os.environ.get("NSFW_BENCH_DEVICE", "auto"),
    "PRECISION": os.environ.get("NSFW_BENCH_PRECISION", "fp32"),
    "BATCH_SIZE": int(os.environ.get("NSFW_BENCH_BATCH_SIZE", "16")),
    "QUEUE": "django_q",
    # Rounds repeat the same files: every one must go through the model.
    "DEDUPLICATE": False,
    "OPENVINO_CACHE": os.environ.get("NSFW_BENCH_OPENVINO_CACHE") or None,
    # The benchmark measures every precision, whatever the accuracy guard says
    # of it on a random-weight model; the report says what the guard decided.
    "MAX_SCORE_DIFFERENCE": float(os.environ.get("NSFW_BENCH_MAX_SCORE_DIFFERENCE", "0.02")),
    "MAX_VERDICT_FLIPS": int(os.environ.get("NSFW_BENCH_MAX_VERDICT_FLIPS", "0")),
}

# The recommended CPU settings from docs/benchmarks.md ("Tuning workers").
Q_CLUSTER = {
    "name": "nsfw-bench",
    "workers": int(os.environ.get("NSFW_BENCH_WORKERS", "1")),
    "timeout": 120,
    "retry": 180,
    "recycle": 500,
    "max_rss": 2_000_000,
    "poll": 0.1,
    "orm": "default",
    "catch_up": False,
    "ack_failures": True,
    "max_attempts": 1,
    "log_level": "WARNING",
}
