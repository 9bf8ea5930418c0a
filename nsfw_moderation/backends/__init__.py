"""Classifier backends: something that turns images into ``{label: probability}``.

A backend is any class with a ``name`` (recorded on every row), ``labels``
and ``classify(images)``. :func:`get_backend` builds the configured one once
per process, on first use: in a django-q2 worker that is after the fork.
:func:`get_shadow_backend` does the same for ``SHADOW_MODEL``, the model that
is run beside the live one and never acted on.
"""

from __future__ import annotations

import inspect
import logging
import os
import threading
import time
from collections.abc import Sequence
from typing import Any, Protocol

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
        """One ``{label: probability}`` per image, probabilities summing to 1.

        The worker calls it on a thread of its own, one call at a time, while
        its main thread decodes and stores (:mod:`nsfw_moderation.worker.pipeline`):
        it must not use the database.
        """
        ...


logger = logging.getLogger(__name__)

_backend: Classifier | None = None
#: The shadow classifier once loaded, or why it could not be.
_shadow: Classifier | str | None = None
_lock = threading.Lock()


def get_backend() -> Classifier:
    """The configured classifier, loaded on first call and then reused."""
    global _backend
    with _lock:
        if _backend is None:
            _backend = load_backend(conf.BACKEND)
        return _backend


def get_shadow_backend() -> Classifier | None:
    """The ``SHADOW_MODEL`` classifier (``None`` when there is none), loaded once per process.

    A shadow that cannot be loaded raises :class:`ModelUnavailable`, now and on
    every later call, without trying again until :func:`reset_backend` (or a new
    worker process): a failed load costs time, and the shadow's results are
    never worth delaying the live ones for.
    """
    global _shadow
    if conf.SHADOW_MODEL is None:
        return None
    with _lock:
        if _shadow is None:
            try:
                _shadow = load_shadow_backend()
            except ModelUnavailable as exc:
                _shadow = str(exc)
            except Exception as exc:
                _shadow = f"The shadow model failed to load: {exc!r}"
                logger.warning("Cannot load the shadow model", exc_info=True)
        if isinstance(_shadow, str):
            raise ModelUnavailable(_shadow)
        return _shadow


def reset_backend() -> None:
    """Forget the loaded classifiers; the next :func:`get_backend` loads it again."""
    global _backend, _shadow
    with _lock:
        _backend = None
        _shadow = None


def load_backend(path: str) -> Classifier:
    cls = backend_class(path)
    started = time.perf_counter()
    backend: Classifier = cls()
    # The one line a worker logs when it starts working: what it runs, and how.
    logger.info("Classifier ready in %.1f s: %s", time.perf_counter() - started, describe(backend))
    return backend


def load_shadow_backend() -> Classifier:
    """A new classifier for ``SHADOW_MODEL``: its backend, model, revision and precision."""
    path = conf.shadow("BACKEND")
    cls = backend_class(path)
    options = shadow_options(cls, path)
    started = time.perf_counter()
    backend: Classifier = cls(**options)
    logger.info(
        "Shadow classifier ready in %.1f s: %s", time.perf_counter() - started, describe(backend)
    )
    return backend


def backend_class(path: str) -> Any:
    """The class that backend ``path`` (a short name or a dotted path) names."""
    try:
        return import_string(ALIASES.get(path, path))
    except ImportError as exc:
        raise ModelUnavailable(
            f"Cannot import the classifier backend {path!r}: {exc}. "
            "Install its extra, e.g. pip install 'nsfw-moderation[transformers]'."
        ) from exc


def shadow_options(cls: Any, path: str) -> dict[str, Any]:
    """The constructor arguments for the shadow model, as far as backend ``cls`` takes them.

    Every backend that can load another model takes ``model``; a ``revision``
    or ``precision`` that ``SHADOW_MODEL`` sets itself must be taken too, while
    the live ``PRECISION`` it would inherit is passed only where it is taken.
    """
    accepted = constructor_arguments(cls)
    if accepted is not None and "model" not in accepted:
        raise ModelUnavailable(
            f"The backend {path!r} cannot load another model (its constructor takes no "
            "`model` argument): set SHADOW_MODEL['BACKEND'] to one that can, such as "
            "'transformers'."
        )
    own = conf.SHADOW_MODEL or {}
    options = {"model": conf.shadow("MODEL")}
    for argument, setting in (("revision", "MODEL_REVISION"), ("precision", "PRECISION")):
        if accepted is None or argument in accepted:
            options[argument] = conf.shadow(setting)
        elif own.get(setting) is not None:
            raise ModelUnavailable(
                f"The backend {path!r} takes no `{argument}`: remove {setting} from SHADOW_MODEL."
            )
    return options


def constructor_arguments(cls: Any) -> set[str] | None:
    """The keyword arguments ``cls(...)`` takes (``None``: any, or it cannot be told)."""
    try:
        parameters = inspect.signature(cls).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return None
    keyword = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return {p.name for p in parameters if p.kind in keyword}


def classify_all(backend: Classifier, images: Sequence[Image.Image]) -> list[dict[str, float]]:
    """``backend.classify`` over ``images``, ``BATCH_SIZE`` at a time."""
    results: list[dict[str, float]] = []
    for start in range(0, len(images), conf.BATCH_SIZE):
        results.extend(backend.classify(images[start : start + conf.BATCH_SIZE]))
    return results


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
    """Threads per worker: the machine's cores shared among the queue's worker processes.

    More threads than cores per worker makes every worker slower, not faster.
    """
    if conf.TORCH_THREADS:
        return int(conf.TORCH_THREADS)
    return max(1, available_cores() // processes_sharing_cores())


def processes_sharing_cores() -> int:
    """Worker processes on this machine: django-q2's cluster, Celery's pool, or one."""
    if conf.QUEUE in ("tasks", "celery"):
        from nsfw_moderation.queues import worker_processes

        return worker_processes()
    return cluster_workers()


def cluster_workers() -> int:
    """How many workers this machine's django-q2 cluster runs (its default: one per core)."""
    q_cluster = getattr(settings, "Q_CLUSTER", {}) or {}
    # A cluster started with Q_CLUSTER_NAME reads its settings from ALT_CLUSTERS.
    alt = (q_cluster.get("ALT_CLUSTERS") or {}).get(os.environ.get("Q_CLUSTER_NAME", ""))
    workers = int((alt or {}).get("workers") or q_cluster.get("workers") or available_cores())
    return max(1, workers)
