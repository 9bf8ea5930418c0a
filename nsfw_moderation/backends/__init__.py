"""Classifier backends: something that turns images into ``{label: probability}``.

A backend is any class with a ``name`` (recorded on every row), ``labels``
and ``classify(images)``. :func:`get_backend` builds the configured one once
per process, on first use: in a django-q2 worker that is after the fork.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Sequence
from typing import Protocol

from django.conf import settings
from django.utils.module_loading import import_string
from PIL import Image

from nsfw_moderation.conf import conf

ALIASES = {
    "transformers": "nsfw_moderation.backends.transformers.TransformersBackend",
    "opennsfw": "nsfw_moderation.backends.opennsfw.OpenNSFWBackend",
    "openvino": "nsfw_moderation.backends.openvino.OpenVINOBackend",
    "timm": "nsfw_moderation.backends.timm.TimmBackend",
}


class ModelUnavailable(RuntimeError):
    """The classifier could not be loaded. The message says what to do."""


class Classifier(Protocol):
    name: str
    labels: Sequence[str]

    def classify(self, images: Sequence[Image.Image]) -> list[dict[str, float]]:
        """One ``{label: probability}`` per image, probabilities summing to 1."""
        ...


logger = logging.getLogger(__name__)

_backend: Classifier | None = None
_lock = threading.Lock()


def get_backend() -> Classifier:
    """The configured classifier, loaded on first call and then reused."""
    global _backend
    with _lock:
        if _backend is None:
            _backend = load_backend(conf.BACKEND)
        return _backend


def reset_backend() -> None:
    """Forget the loaded classifier; the next :func:`get_backend` loads it again."""
    global _backend
    with _lock:
        _backend = None


def load_backend(path: str) -> Classifier:
    try:
        cls = import_string(ALIASES.get(path, path))
    except ImportError as exc:
        raise ModelUnavailable(
            f"Cannot import the classifier backend {path!r}: {exc}. "
            "Install its extra, e.g. pip install 'nsfw-moderation[transformers]'."
        ) from exc
    started = time.perf_counter()
    backend: Classifier = cls()
    # The one line a worker logs when it starts working: what it runs, and how.
    logger.info("Classifier ready in %.1f s: %s", time.perf_counter() - started, describe(backend))
    return backend


def describe(backend: Classifier) -> str:
    """Model, device, precision, threads and batch size, as far as the backend says."""
    facts = [f"model {backend.name}"]
    facts += [
        f"{attribute} {getattr(backend, attribute)}"
        for attribute in ("device", "precision")
        if getattr(backend, attribute, None) is not None
    ]
    threads = getattr(backend, "threads", None)
    if threads is not None:
        facts.append(f"{threads} thread" if threads == 1 else f"{threads} threads")
    facts.append(f"batch size {conf.BATCH_SIZE}")
    return ", ".join(facts)


def available_cores() -> int:
    """The cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def default_threads() -> int:
    """Threads per worker: the machine's cores shared among django-q2 workers.

    More threads than cores per worker makes every worker slower, not faster.
    """
    if conf.TORCH_THREADS:
        return int(conf.TORCH_THREADS)
    return max(1, available_cores() // cluster_workers())


def cluster_workers() -> int:
    """How many workers this machine's django-q2 cluster runs (its default: one per core)."""
    q_cluster = getattr(settings, "Q_CLUSTER", {}) or {}
    # A cluster started with Q_CLUSTER_NAME reads its settings from ALT_CLUSTERS.
    alt = (q_cluster.get("ALT_CLUSTERS") or {}).get(os.environ.get("Q_CLUSTER_NAME", ""))
    workers = int((alt or {}).get("workers") or q_cluster.get("workers") or available_cores())
    return max(1, workers)
