"""Settings for nsfw_moderation, read on access from ``settings.NSFW_MODERATION``.

Nothing is read at import time, so ``override_settings`` works everywhere.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from django.conf import settings

DEFAULTS: dict[str, Any] = {
    "MODELS": {},
    "BACKEND": "transformers",
    "MODEL": "Falconsai/nsfw_image_detection",
    "MODEL_REVISION": None,
    "DEVICE": "auto",
    "PRECISION": "fp32",
    "TORCH_THREADS": None,
    "BATCH_SIZE": 16,
    "UNSAFE_LABELS": ["nsfw"],
    "FLAG_THRESHOLD": 0.5,
    "BLOCK_THRESHOLD": None,
    "QUEUE": "django_q",
    "CLUSTER": None,
    "TASKS_BACKEND": "default",
    "TASKS_QUEUE": "default",
    "CELERY_APP": None,
    "CELERY_QUEUE": None,
    "MAX_ATTEMPTS": 3,
    "RETRY_DELAY": 30,
    "RETRY_MAX_DELAY": 3600,
    "MAX_IMAGE_PIXELS": 64_000_000,
    "MAX_FILE_SIZE": 50 * 1024 * 1024,
    "MAX_FRAMES": 8,
    "ON_ERROR": "flag",
    "VIDEO_FRAME_INTERVAL": 2.0,
    "VIDEO_MAX_FRAMES": 32,
    "VIDEO_MAX_DURATION": 4 * 3600,
    "VIDEO_MAX_PIXELS": 3840 * 2160,
    "VIDEO_MAX_STREAMS": 16,
    "VIDEO_MAX_FILE_SIZE": 4 * 1024**3,
    "VIDEO_DECODE_TIMEOUT": 60,
    "STALE_AFTER": 600,
    "RECONCILE_BATCH": 1000,
    "DEDUPLICATE": True,
    "BLOCKLIST_DISTANCE": None,
    "PDQ_DISTANCE": 31,
    "ON_REJECT": None,
    "QUARANTINE_STORAGE": None,
    "SHOW_PENDING": False,
    # nsfw_moderation.contrib.wagtail: withheld images in the image chooser.
    "WAGTAIL_CHOOSER": "hide",
    "OWNER": None,
    "NOTIFY_FLAGGED": False,
    "APPEAL_SAME_REVIEWER": False,
    "APPEALS_PER_HOUR": 10,
    "STATEMENT_GROUND": "Sexual or nude content, against the terms of service",
    # The Transparency Database's API v2 (since July 2025): nudity against a site's terms.
    "STATEMENT_CATEGORY": "STATEMENT_CATEGORY_OTHER_VIOLATION_TC",
    "STATEMENT_KEYWORDS": ["KEYWORD_ADULT_SEXUAL_MATERIAL", "KEYWORD_NUDITY"],
    "STATEMENT_KEYWORD_OTHER": "",
    "STATEMENT_TERRITORIAL_SCOPE": None,
    "TRANSPARENCY_API_URL": "https://transparency.dsa.ec.europa.eu/api/v1",
    "TRANSPARENCY_API_TOKEN": None,
    "TRANSPARENCY_TIMEOUT": 60,
    "OPENVINO_CACHE": None,
    "CALIBRATION_IMAGES": 300,
    "MAX_SCORE_DIFFERENCE": 0.02,
    "MAX_VERDICT_FLIPS": 0,
    "AUDIT_SAMPLE_RATE": 0.0,
    "SHADOW_MODEL": None,
}

#: Automatic verdicts that audit sampling draws from.
AUDITED_VERDICTS = ("allowed", "blocked")
#: Keys a ``SHADOW_MODEL`` mapping may have: the live model's settings of the same names.
SHADOW_KEYS = ("BACKEND", "MODEL", "MODEL_REVISION", "PRECISION", "UNSAFE_LABELS", "FLAG_THRESHOLD")

QUEUES = ("django_q", "tasks", "celery", "sync")
PRECISIONS = ("fp32", "bf16", "fp16", "int8")
DEVICES = ("auto", "cpu", "cuda", "mps")
ON_ERROR_CHOICES = ("flag", "allow")
#: What the Wagtail image chooser does with withheld images (nsfw_moderation.contrib.wagtail).
WAGTAIL_CHOOSER_CHOICES = ("hide", "mark")
#: Where the Transparency Database's API token is read when ``TRANSPARENCY_API_TOKEN`` is unset.
TOKEN_ENVIRONMENT_VARIABLE = "DSA_TRANSPARENCY_API_TOKEN"


class Settings:
    """Typed, read-on-access view of ``settings.NSFW_MODERATION``."""

    def _get(self, name: str) -> Any:
        user = getattr(settings, "NSFW_MODERATION", None)
        # A malformed setting is reported by check nsfw_moderation.E014.
        if not isinstance(user, Mapping):
            return DEFAULTS[name]
        return user.get(name, DEFAULTS[name])

    @property
    def MODELS(self) -> Mapping[str, Sequence[str]]:
        return self._get("MODELS")

    @property
    def BACKEND(self) -> str:
        return self._get("BACKEND")

    @property
    def MODEL(self) -> str:
        return str(self._get("MODEL"))

    @property
    def MODEL_REVISION(self) -> str | None:
        return self._get("MODEL_REVISION")

    @property
    def DEVICE(self) -> str:
        return self._get("DEVICE")

    @property
    def PRECISION(self) -> str:
        return self._get("PRECISION")

    @property
    def TORCH_THREADS(self) -> int | None:
        return self._get("TORCH_THREADS")

    @property
    def BATCH_SIZE(self) -> int:
        return self._get("BATCH_SIZE")

    @property
    def UNSAFE_LABELS(self) -> Sequence[str]:
        return self._get("UNSAFE_LABELS")

    @property
    def FLAG_THRESHOLD(self) -> float:
        return self._get("FLAG_THRESHOLD")

    @property
    def BLOCK_THRESHOLD(self) -> float | None:
        return self._get("BLOCK_THRESHOLD")

    @property
    def QUEUE(self) -> str:
        return self._get("QUEUE")

    @property
    def CLUSTER(self) -> str | None:
        return self._get("CLUSTER")

    @property
    def TASKS_BACKEND(self) -> str:
        return self._get("TASKS_BACKEND")

    @property
    def TASKS_QUEUE(self) -> str:
        return self._get("TASKS_QUEUE")

    @property
    def CELERY_APP(self) -> str | None:
        return self._get("CELERY_APP")

    @property
    def CELERY_QUEUE(self) -> str | None:
        return self._get("CELERY_QUEUE")

    @property
    def MAX_ATTEMPTS(self) -> int:
        return self._get("MAX_ATTEMPTS")

    @property
    def RETRY_DELAY(self) -> float:
        return self._get("RETRY_DELAY")

    @property
    def RETRY_MAX_DELAY(self) -> float:
        return self._get("RETRY_MAX_DELAY")

    @property
    def RECONCILE_BATCH(self) -> int:
        return self._get("RECONCILE_BATCH")

    @property
    def MAX_IMAGE_PIXELS(self) -> int:
        return self._get("MAX_IMAGE_PIXELS")

    @property
    def MAX_FILE_SIZE(self) -> int:
        return self._get("MAX_FILE_SIZE")

    @property
    def MAX_FRAMES(self) -> int:
        return self._get("MAX_FRAMES")

    @property
    def VIDEO_FRAME_INTERVAL(self) -> float:
        return self._get("VIDEO_FRAME_INTERVAL")

    @property
    def VIDEO_MAX_FRAMES(self) -> int:
        return self._get("VIDEO_MAX_FRAMES")

    @property
    def VIDEO_MAX_DURATION(self) -> float:
        return self._get("VIDEO_MAX_DURATION")

    @property
    def VIDEO_MAX_PIXELS(self) -> int:
        return self._get("VIDEO_MAX_PIXELS")

    @property
    def VIDEO_MAX_STREAMS(self) -> int:
        return self._get("VIDEO_MAX_STREAMS")

    @property
    def VIDEO_MAX_FILE_SIZE(self) -> int:
        return self._get("VIDEO_MAX_FILE_SIZE")

    @property
    def VIDEO_DECODE_TIMEOUT(self) -> float:
        return self._get("VIDEO_DECODE_TIMEOUT")

    @property
    def ON_ERROR(self) -> str:
        return self._get("ON_ERROR")

    @property
    def STALE_AFTER(self) -> float:
        return self._get("STALE_AFTER")

    @property
    def DEDUPLICATE(self) -> bool:
        return bool(self._get("DEDUPLICATE"))

    @property
    def BLOCKLIST_DISTANCE(self) -> int | None:
        # Deprecated: pHash distances mean nothing for PDQ (check nsfw_moderation.W017).
        return self._get("BLOCKLIST_DISTANCE")

    @property
    def PDQ_DISTANCE(self) -> int:
        return self._get("PDQ_DISTANCE")

    @property
    def ON_REJECT(self) -> str | None:
        return self._get("ON_REJECT")

    @property
    def QUARANTINE_STORAGE(self) -> str | None:
        return self._get("QUARANTINE_STORAGE")

    @property
    def SHOW_PENDING(self) -> bool:
        return bool(self._get("SHOW_PENDING"))

    @property
    def WAGTAIL_CHOOSER(self) -> str:
        return self._get("WAGTAIL_CHOOSER")

    @property
    def OWNER(self) -> str | None:
        return self._get("OWNER")

    @property
    def NOTIFY_FLAGGED(self) -> bool:
        return bool(self._get("NOTIFY_FLAGGED"))

    @property
    def APPEAL_SAME_REVIEWER(self) -> bool:
        return bool(self._get("APPEAL_SAME_REVIEWER"))

    @property
    def APPEALS_PER_HOUR(self) -> int:
        return self._get("APPEALS_PER_HOUR")

    @property
    def STATEMENT_GROUND(self) -> str:
        return str(self._get("STATEMENT_GROUND"))

    @property
    def STATEMENT_CATEGORY(self) -> str:
        return str(self._get("STATEMENT_CATEGORY"))

    @property
    def STATEMENT_KEYWORDS(self) -> Sequence[str]:
        return self._get("STATEMENT_KEYWORDS") or ()

    @property
    def STATEMENT_KEYWORD_OTHER(self) -> str:
        return str(self._get("STATEMENT_KEYWORD_OTHER") or "")

    @property
    def STATEMENT_TERRITORIAL_SCOPE(self) -> Sequence[str] | None:
        # None: every EU and EEA country (a restricted image is hidden everywhere).
        return self._get("STATEMENT_TERRITORIAL_SCOPE")

    @property
    def TRANSPARENCY_API_URL(self) -> str:
        return str(self._get("TRANSPARENCY_API_URL")).rstrip("/")

    @property
    def TRANSPARENCY_API_TOKEN(self) -> str | None:
        # Unset: the environment variable DSA_TRANSPARENCY_API_TOKEN (kept out of settings files).
        return self._get("TRANSPARENCY_API_TOKEN") or os.environ.get(TOKEN_ENVIRONMENT_VARIABLE)

    @property
    def TRANSPARENCY_TIMEOUT(self) -> float:
        return self._get("TRANSPARENCY_TIMEOUT")

    @property
    def OPENVINO_CACHE(self) -> str | None:
        return self._get("OPENVINO_CACHE")

    @property
    def CALIBRATION_IMAGES(self) -> int:
        return self._get("CALIBRATION_IMAGES")

    @property
    def MAX_SCORE_DIFFERENCE(self) -> float:
        return self._get("MAX_SCORE_DIFFERENCE")

    @property
    def MAX_VERDICT_FLIPS(self) -> int:
        return self._get("MAX_VERDICT_FLIPS")

    @property
    def AUDIT_SAMPLE_RATE(self) -> float | Mapping[str, float]:
        return self._get("AUDIT_SAMPLE_RATE")

    def audit_rate(self, verdict: str) -> float:
        """The share of automatic ``verdict`` (allowed, blocked) verdicts drawn for an audit.

        ``AUDIT_SAMPLE_RATE`` is one rate for both, or a mapping per verdict
        (``{"allowed": 0.01, "blocked": 0.05}``); a verdict it does not name is
        not sampled.
        """
        rate = self.AUDIT_SAMPLE_RATE
        if isinstance(rate, Mapping):
            rate = rate.get(verdict, 0.0)
        return float(rate or 0.0) if verdict in AUDITED_VERDICTS else 0.0

    @property
    def SHADOW_MODEL(self) -> Mapping[str, Any] | None:
        return self._get("SHADOW_MODEL")

    def shadow(self, name: str) -> Any:
        """A setting of the shadow model: its own if ``SHADOW_MODEL`` names it, else the live one's.

        ``MODEL`` has no fallback (the shadow model is a different one), nor
        does ``MODEL_REVISION``.
        """
        shadow = self.SHADOW_MODEL or {}
        if name in shadow or name in ("MODEL", "MODEL_REVISION"):
            return shadow.get(name)
        return self._get(name)


conf = Settings()
