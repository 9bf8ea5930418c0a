"""``manage.py nsfw_model download|verify|info|optimize``: get the model ready for workers."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from PIL import Image

from nsfw_moderation import imaging, model_cache, policy
from nsfw_moderation.accuracy import Agreement
from nsfw_moderation.backends import (
    ALIASES,
    Classifier,
    ModelUnavailable,
    load_backend,
    load_shadow_backend,
)
from nsfw_moderation.conf import conf
from nsfw_moderation.hub import HUB_FILES, hub_repository
from nsfw_moderation.management.commands import _files
from nsfw_moderation.worker import shadow

# Configuration (JSON) and safetensors weights: what the backends load. Pickled
# PyTorch weights (.bin) are never fetched, since loading them can run code.
ALLOW_PATTERNS = HUB_FILES


ACTIONS = ("download", "verify", "info", "optimize")
OPENVINO_PRECISIONS = ("fp32", "bf16", "int8")


class Command(BaseCommand):
    help = (
        "Manage the classifier model. 'download' fetches MODEL at MODEL_REVISION (its "
        "configuration and safetensors weights) into the Hugging Face cache so that workers "
        "can run offline (HF_HUB_OFFLINE=1); 'verify' loads the configured backend "
        "and classifies a test image; 'info' shows labels, parameter count and size on disk; "
        "'optimize' converts MODEL for the openvino backend and checks it against fp32. "
        "Exit status 1 when the model cannot be downloaded, loaded or converted, or when a "
        "conversion is refused by the accuracy guard."
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
            "info: labels, parameter count and size on disk; "
            "optimize: convert MODEL for the openvino backend (needs torch and openvino).",
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
        parser.add_argument(
            "--precision",
            action="append",
            choices=OPENVINO_PRECISIONS,
            help="optimize: a precision to convert to (repeatable; default: PRECISION).",
        )
        parser.add_argument(
            "--calibration-dir",
            help="optimize: image files to calibrate and check with (default: the site's most "
            "recently classified images).",
        )
        parser.add_argument(
            "--images",
            type=int,
            help="optimize: how many calibration images (default: CALIBRATION_IMAGES).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        if action == "download":
            self._download(options["revision"], options["cache_dir"])
        elif action == "verify":
            self._verify()
        elif action == "optimize":
            self._optimize(
                options["precision"] or [conf.PRECISION],
                options["calibration_dir"],
                conf.CALIBRATION_IMAGES if options["images"] is None else options["images"],
            )
        else:
            self._info(options["cache_dir"])

    # -- download -------------------------------------------------------------

    def _download(self, revision: str | None, cache_dir: str | None) -> None:
        self._fetch(conf.MODEL, conf.MODEL_REVISION, _revision_to_fetch(revision), cache_dir)
        if conf.SHADOW_MODEL is not None:
            self.stdout.write("Shadow model (SHADOW_MODEL):")
            pinned = conf.shadow("MODEL_REVISION")
            setting = "SHADOW_MODEL['MODEL_REVISION']"
            self._fetch(conf.shadow("MODEL"), pinned, pinned, cache_dir, setting=setting)
        self.stdout.write("Workers can now run with HF_HUB_OFFLINE=1 and the same cache.")

    def _fetch(
        self,
        model: str,
        pinned: str | None,
        revision: str | None,
        cache_dir: str | None,
        *,
        setting: str = "MODEL_REVISION",
    ) -> None:
        """Put ``model`` at ``revision`` in the cache (workers load it at ``pinned``)."""
        if Path(model).is_dir():
            self.stdout.write(f"MODEL is already local: {Path(model).resolve()}")
            return
        self.stdout.write(f"Downloading {model} at {revision or 'main'} …")
        path = Path(_snapshot_download(_repository(model), revision, cache_dir))
        if not any(path.glob("*.safetensors")):
            raise CommandError(
                f"{model} at {revision or 'main'} has no safetensors weights, and no "
                "other kind is loaded. Choose a revision or a model that has them."
            )
        self.stdout.write(
            self.style.SUCCESS(f"Ready in {path} ({_human_size(_folder_size(path))}).")
        )
        if not pinned:
            # Snapshots live in a folder named after the commit they hold.
            self.stdout.write(f"Pin this commit in settings: {setting} = {path.name!r}")

    # -- verify ---------------------------------------------------------------

    def _verify(self) -> None:
        self._verify_backend(conf.BACKEND, lambda: _load(conf.BACKEND), conf.UNSAFE_LABELS)
        if conf.SHADOW_MODEL is not None:
            self.stdout.write("Shadow model (SHADOW_MODEL, never acted on):")
            self._verify_backend(
                conf.shadow("BACKEND"),
                _load_shadow,
                conf.shadow("UNSAFE_LABELS"),
                setting=shadow.UNSAFE_LABELS_SETTING,
            )
        self.stdout.write(self.style.SUCCESS("OK: the model loads and classifies."))

    def _verify_backend(
        self,
        path: str,
        load: Callable[[], Classifier],
        unsafe: Sequence[str],
        setting: str = "NSFW_MODERATION['UNSAFE_LABELS']",
    ) -> None:
        """Load a backend, classify a test image, print what it is; fail on a label mismatch."""
        started = time.perf_counter()
        backend = load()
        loaded = time.perf_counter()
        try:
            (scores,) = backend.classify([_test_image()])
        except Exception as exc:
            raise CommandError(f"The model loaded but failed to classify: {exc!r}") from exc
        done = time.perf_counter()
        for name, value in (
            ("backend", path),
            ("model", backend.name),
            ("device", getattr(backend, "device", "n/a")),
            ("precision", getattr(backend, "precision", "n/a")),
            ("labels", ", ".join(backend.labels)),
            ("unsafe", ", ".join(unsafe)),
            ("load time", f"{loaded - started:.2f} s"),
            ("first image", f"{done - loaded:.3f} s"),
            ("test scores", ", ".join(f"{k}={v:.3f}" for k, v in scores.items())),
            *_details(backend).items(),
        ):
            self.stdout.write(f"{name + ':':<13}{value}")
        misconfigured = policy.label_mismatch(backend.labels, unsafe, setting=setting)
        if misconfigured:
            raise CommandError(misconfigured)

    # -- info -----------------------------------------------------------------

    def _info(self, cache_dir: str | None) -> None:
        self._info_model(conf.MODEL, conf.MODEL_REVISION, conf.BACKEND, conf.PRECISION, cache_dir)
        backend = _load(conf.BACKEND)
        self._info_backend(conf.BACKEND, backend, conf.UNSAFE_LABELS)
        if conf.SHADOW_MODEL is None:
            return
        self.stdout.write("Shadow model (SHADOW_MODEL, never acted on):")
        self._info_model(
            conf.shadow("MODEL"),
            conf.shadow("MODEL_REVISION"),
            conf.shadow("BACKEND"),
            conf.shadow("PRECISION"),
            cache_dir,
        )
        self._info_backend(conf.shadow("BACKEND"), _load_shadow(), conf.shadow("UNSAFE_LABELS"))

    def _info_model(
        self, model: str, revision: str | None, path: str, precision: str, cache_dir: str | None
    ) -> None:
        self.stdout.write(f"{'model:':<13}{model}")
        self.stdout.write(f"{'revision:':<13}{revision or 'main (not pinned)'}")
        self.stdout.write(f"{'on disk:':<13}{_location(model, cache_dir)}")
        if ALIASES.get(path, path) == ALIASES["openvino"]:
            for name, value in _converted_model(model, precision, revision):
                self.stdout.write(f"{name + ':':<13}{value}")

    def _info_backend(self, path: str, backend: Classifier, unsafe: Sequence[str]) -> None:
        self.stdout.write(f"{'backend:':<13}{path} ({backend.name})")
        self.stdout.write(f"{'labels:':<13}{', '.join(backend.labels)}")
        self.stdout.write(f"{'unsafe:':<13}{', '.join(unsafe)}")
        self.stdout.write(f"{'parameters:':<13}{_parameter_count(backend)}")

    # -- optimize -------------------------------------------------------------

    def _optimize(self, precisions: list[str], folder: str | None, limit: int) -> None:
        from nsfw_moderation import optimize

        if limit < 1:
            raise CommandError("--images must be at least 1.", returncode=2)
        try:
            converter = optimize.Converter()
        except optimize.ConversionError as exc:
            raise CommandError(str(exc)) from exc
        source = f"the folder {folder}" if folder else "the site's most recently classified images"
        images = _folder_images(folder) if folder else optimize.site_images(limit)
        self.stdout.write(
            f"Converting {converter.original.name} ({converter.revision}) with OpenVINO "
            f"{converter.version} into {model_cache.cache_root()} …"
        )
        try:
            pixels = converter.pixels(images, limit)
        except optimize.ConversionError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"{'calibration:':<13}{len(pixels)} images from {source}")
        if len(pixels) < 100:
            self.stdout.write(
                self.style.WARNING(f"Only {len(pixels)} images: a few hundred are better.")
            )
        reference = converter.reference(pixels)
        refused = [
            outcome.precision
            for precision in dict.fromkeys(precisions)
            if (outcome := self._convert(converter, precision, pixels, reference, source)).problems
        ]
        if refused:
            raise CommandError(f"The accuracy guard refused {', '.join(refused)}.")

    def _convert(
        self, converter: Any, precision: str, pixels: Any, reference: Any, source: str
    ) -> Any:
        from nsfw_moderation import optimize

        try:
            outcome = converter.convert(precision, pixels, reference, source=source)
        except optimize.ConversionError as exc:
            raise CommandError(str(exc)) from exc
        figures = f"{outcome.agreement.summary()} (in {outcome.seconds:.1f} s)"
        if outcome.entry is None:
            self.stdout.write(self.style.ERROR(f"{precision}: refused: {figures}."))
            for problem in outcome.problems:
                self.stdout.write(f"  - {problem}")
            self.stdout.write(f"  Nothing changed in {outcome.key.folder.parent}.")
        else:
            size = _human_size(outcome.entry.size())
            self.stdout.write(self.style.SUCCESS(f"{precision}: active: {figures}."))
            self.stdout.write(f"  {outcome.entry.folder} ({size})")
        return outcome


def _folder_images(folder: str) -> Iterator[Image.Image]:
    """The first frame of each readable image file under ``folder``."""
    for path in _files.find_files([folder]):
        try:
            yield _files.load_file(path)[0]
        except (OSError, imaging.ImageDecodeError):
            continue


def _details(backend: Classifier) -> dict[str, str]:
    details = getattr(backend, "details", None)
    return details() if callable(details) else {}


def _converted_model(model: str, precision: str, revision: str | None) -> list[tuple[str, str]]:
    """What ``info`` says about the converted model that the openvino backend would load."""
    version = model_cache.runtime_version()
    if version is None:
        return [("runtime", "OpenVINO is not installed (pip install 'nsfw-moderation[openvino]')")]
    lines = [("runtime", f"OpenVINO {version}"), ("precision", precision)]
    try:
        key = model_cache.key_for(model, precision, version, revision)
    except model_cache.CacheError as exc:
        return [*lines, ("converted", f"refused: {exc}")]
    entry = model_cache.load(key) if key else None
    if key is None or entry is None:
        lines.append(("converted", "none (run: manage.py nsfw_model optimize)"))
        refusal = model_cache.refusal(key) if key else None
        if refusal and "agreement" in refusal:
            lines += _guard_lines(refusal, "refused")
        return lines
    lines.append(("converted", f"{entry.folder} ({_human_size(entry.size())})"))
    lines.append(("created", str(entry.meta.get("created", "?"))))
    problems = entry.agreement.problems()
    lines += _guard_lines(entry.meta, "; ".join(problems) if problems else "within the limits")
    return lines


def _guard_lines(record: dict[str, Any], verdict: str) -> list[tuple[str, str]]:
    agreement = Agreement.from_json(record["agreement"])
    calibration = record.get("calibration", {})
    return [
        (
            "calibration",
            f"{calibration.get('images', '?')} images from {calibration.get('source')}",
        ),
        ("agreement", agreement.summary()),
        ("limits", f"max |Δp| {conf.MAX_SCORE_DIFFERENCE}, {conf.MAX_VERDICT_FLIPS} flip(s)"),
        ("guard", verdict),
    ]


def _revision_to_fetch(asked: str | None) -> str | None:
    pinned = conf.MODEL_REVISION
    if asked and pinned and asked != pinned:
        raise CommandError(
            f"Workers load MODEL_REVISION {pinned!r}; downloading {asked!r} would leave them "
            "without it. Change MODEL_REVISION first, or leave out --revision."
        )
    return asked or pinned


def _repository(model: str) -> str:
    """The Hub repository ``MODEL`` names: ``org/name``, also as timm's ``hf-hub:org/name``."""
    return hub_repository(model) or model


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


def _load_shadow() -> Classifier:
    try:
        return load_shadow_backend()
    except ModelUnavailable as exc:
        raise CommandError(f"Cannot load the shadow model: {exc}") from exc


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
        if repo.repo_id == _repository(model) and repo.repo_type == "model":
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
