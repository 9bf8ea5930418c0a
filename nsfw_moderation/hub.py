"""How models are named (on rows, on the Hugging Face Hub) and fetched; imports nothing heavy.

System checks and management commands read these in the web process, which
must not import torch, transformers or timm.
"""

from __future__ import annotations

#: Prefixes of a Hub model in timm's model names (the second is timm's older spelling).
HUB_PREFIXES = ("hf-hub:", "hf_hub:")
#: timm's prefix of a model in a local folder.
LOCAL_PREFIX = "local-dir:"
#: What is fetched from the Hub (``nsfw_model download``, the timm backend): never pickled weights.
HUB_FILES = ["*.json", "*.safetensors"]


def hub_repository(model: str) -> str | None:
    """``"org/name"`` for a timm ``MODEL`` ``"hf-hub:org/name"``; ``None`` for anything else."""
    for prefix in HUB_PREFIXES:
        if model.startswith(prefix):
            return model[len(prefix) :]
    return None


def model_name(model: str, revision: str | None) -> str:
    """The name rows record: the model, and the revision when one is pinned."""
    return f"{model}@{revision}" if revision else model
