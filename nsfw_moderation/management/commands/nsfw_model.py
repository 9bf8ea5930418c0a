"""``manage.py nsfw_model download|verify|info``: get the model ready for offline workers."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from PIL import Image

from nsfw_moderation import policy
from nsfw_moderation.backends import Classifier, ModelUnavailable, load_backend
from nsfw_moderation.conf import conf

# Configuration (JSON) and safetensors weights: what the backend loads. Pickled
# PyTorch weights (.bin) are never fetched, since loading them can run code.
ALLOW_PATTERNS = ["*.json", "*.safetensors"]


ACTIONS = ("download", "verify", "info")


class Command(BaseCommand):
    help = (
        "Manage the classifier model. 'download' fetches MODEL at MODEL_REVISION (its "
        "configuration and safetensors weights) into the Hugging Face cache so that workers "
        "can run offline (HF_HUB_OFFLINE=1); 'verify' loads the configured backend "
        "and classifies a test image; 'info' shows labels, parameter count and size on disk. "
        "Exit status 1 when the model cannot be downloaded or loaded."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        # A positional choice rather than sub-commands, so that Django's own
        # options (--settings, --verbosity) may come after the action too.
        parser.add_argument(
            "action",
            metavar="ACTION",
            choices=ACTIONS,
            help="download: put MODEL in the Hugging Face cache (needs internet); "
            "verify: load the backend and classify a generated image; "
            "info: labels, parameter count and size on disk.",
        )
        parser.add_argument(
            "--revision",
            help="download: a branch, tag or commit (default: MODEL_REVISION, else main). "
            "Workers load MODEL_REVISION, so a different one is refused while it is set.",
        )
        parser.add_argument(
            "--cache-dir",
            help="download, info: the cache folder (default: HF_HUB_CACHE, "
            "~/.cache/huggingface/hub).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        if action == "download":
            self._download(options["revision"], options["cache_dir"])
        elif action == "verify":
            self._verify()
        else:
            self._info(options["cache_dir"])

    # -- download -------------------------------------------------------------

    def _download(self, revision: str | None, cache_dir: str | None) -> None:
        if Path(conf.MODEL).is_dir():
            self.stdout.write(f"MODEL is already local: {Path(conf.MODEL).resolve()}")
            return
        revision = _revision_to_fetch(revision)
        self.stdout.write(f"Downloading {conf.MODEL} at {revision or 'main'} …")
        path = Path(_snapshot_download(conf.MODEL, revision, cache_dir))
        if not any(path.glob("*.safetensors")):
            raise CommandError(
                f"{conf.MODEL} at {revision or 'main'} has no safetensors weights, and no "
                "other kind is loaded. Choose a revision or a model that has them."
            )
        self.stdout.write(
            self.style.SUCCESS(f"Ready in {path} ({_human_size(_folder_size(path))}).")
        )
        if not conf.MODEL_REVISION:
            # Snapshots live in a folder named after the commit they hold.
            self.stdout.write(f"Pin this commit in settings: MODEL_REVISION = {path.name!r}")
        self.stdout.write("Workers can now run with HF_HUB_OFFLINE=1 and the same cache.")

    # -- verify ---------------------------------------------------------------

    def _verify(self) -> None:
        started = time.perf_counter()
        backend = _load(conf.BACKEND)
        loaded = time.perf_counter()
        try:
            (scores,) = backend.classify([_test_image()])
        except Exception as exc:
            raise CommandError(f"The model loaded but failed to classify: {exc!r}") from exc
        done = time.perf_counter()
        for name, value in (
            ("backend", conf.BACKEND),
            ("model", backend.name),
            ("device", getattr(backend, "device", "n/a")),
            ("precision", getattr(backend, "precision", "n/a")),
            ("labels", ", ".join(backend.labels)),
            ("load time", f"{loaded - started:.2f} s"),
            ("first image", f"{done - loaded:.3f} s"),
            ("test scores", ", ".join(f"{k}={v:.3f}" for k, v in scores.items())),
        ):
            self.stdout.write(f"{name + ':':<13}{value}")
        misconfigured = policy.label_mismatch(backend.labels)
        if misconfigured:
            raise CommandError(misconfigured)
        self.stdout.write(self.style.SUCCESS("OK: the model loads and classifies."))

    # -- info -----------------------------------------------------------------

    def _info(self, cache_dir: str | None) -> None:
        self.stdout.write(f"{'model:':<13}{conf.MODEL}")
        self.stdout.write(f"{'revision:':<13}{conf.MODEL_REVISION or 'main (not pinned)'}")
        self.stdout.write(f"{'on disk:':<13}{_location(conf.MODEL, cache_dir)}")
        backend = _load(conf.BACKEND)
        self.stdout.write(f"{'backend:':<13}{conf.BACKEND} ({backend.name})")
        self.stdout.write(f"{'labels:':<13}{', '.join(backend.labels)}")
        self.stdout.write(f"{'unsafe:':<13}{', '.join(conf.UNSAFE_LABELS)}")
        self.stdout.write(f"{'parameters:':<13}{_parameter_count(backend)}")


def _revision_to_fetch(asked: str | None) -> str | None:
    pinned = conf.MODEL_REVISION
    if asked and pinned and asked != pinned:
        raise CommandError(
            f"Workers load MODEL_REVISION {pinned!r}; downloading {asked!r} would leave them "
            "without it. Change MODEL_REVISION first, or leave out --revision."
        )
    return asked or pinned


def _snapshot_download(repo_id: str, revision: str | None, cache_dir: str | None) -> str:
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import (
            HfHubHTTPError,
            HFValidationError,
            LocalEntryNotFoundError,
            RepositoryNotFoundError,
        )
    except ImportError as exc:
        raise CommandError(
            "Downloading needs huggingface_hub: pip install 'nsfw-moderation[transformers]'."
        ) from exc
    try:
        return str(
            snapshot_download(
                repo_id, revision=revision, cache_dir=cache_dir, allow_patterns=ALLOW_PATTERNS
            )
        )
    except LocalEntryNotFoundError as exc:
        raise CommandError(
            f"Cannot download {repo_id!r}: the Hugging Face Hub is not reachable (offline, "
            "or HF_HUB_OFFLINE=1 is set) and the model is not in the cache. Run this command "
            "on a machine with internet access and the same cache folder, or set MODEL to a "
            f"local directory. ({exc})"
        ) from exc
    except (RepositoryNotFoundError, HFValidationError) as exc:
        raise CommandError(
            f"There is no model {repo_id!r} on the Hugging Face Hub (or it is private): check "
            f"MODEL. ({exc})"
        ) from exc
    except (HfHubHTTPError, OSError) as exc:
        raise CommandError(f"Cannot download {repo_id!r}: {exc}") from exc


def _load(path: str) -> Classifier:
    try:
        return load_backend(path)
    except ModelUnavailable as exc:
        raise CommandError(f"Cannot load the model: {exc}") from exc


def _test_image() -> Image.Image:
    # A smooth gradient: any model can classify it, and it shows nothing.
    return Image.linear_gradient("L").resize((224, 224)).convert("RGB")


def _location(model: str, cache_dir: str | None) -> str:
    path = Path(model)
    if path.is_dir():
        return f"{path.resolve()} ({_human_size(_folder_size(path))})"
    try:
        from huggingface_hub import scan_cache_dir
        from huggingface_hub.errors import CacheNotFound
    except ImportError:
        return "not in the Hugging Face cache (huggingface_hub is not installed)"
    try:
        cache = scan_cache_dir(cache_dir)
    except CacheNotFound:
        return "not in the Hugging Face cache"
    for repo in cache.repos:
        if repo.repo_id == model and repo.repo_type == "model":
            return f"{repo.repo_path} ({_human_size(repo.size_on_disk)})"
    return "not in the Hugging Face cache (run: manage.py nsfw_model download)"


def _parameter_count(backend: Classifier) -> str:
    network = getattr(backend, "model", None)
    parameters = getattr(network, "parameters", None)
    if parameters is None:
        return "n/a for this backend"
    return f"{sum(p.numel() for p in parameters()):,}"


def _folder_size(path: Path) -> int:
    # Cache snapshots are symlinks to blobs: count what they point to.
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _human_size(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"
