"""Models made with timm, such as Marqo's and Freepik's NSFW detectors.

``MODEL`` is ``"hf-hub:org/name"`` (e.g. ``"hf-hub:Marqo/nsfw-image-detection-384"``)
or a local folder holding what such a Hub repository holds: ``config.json``
(the architecture, ``label_names`` and the preprocessing in ``pretrained_cfg``)
and ``model.safetensors``. From the Hub only the JSON files and safetensors
weights are fetched, at ``MODEL_REVISION``, into the Hugging Face cache (what
``manage.py nsfw_model download`` fills for offline workers); a folder without
``model.safetensors`` is refused, since pickled weights (``pytorch_model.bin``)
can run code when they are loaded. The network is then built as the model
card does, ``timm.create_model(..., pretrained=True)``, from that folder
(timm's ``local-dir:`` source). Its labels are the config's ``label_names``.

Pixels are prepared as timm's own evaluation transform
(``create_transform(**resolve_model_data_config(model))``) prepares them, by
:class:`~nsfw_moderation.preprocess.CentreCropPreprocessor` into one batch
tensor, equal to the transform's to the bit; a transform it does not cover
(border crop mode, non-square inputs) is timm's own, image by image.
``PRECISION`` follows :mod:`~nsfw_moderation.backends.torch_precision`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from nsfw_moderation.backends import ModelUnavailable
from nsfw_moderation.backends.torch_precision import TorchPrecision
from nsfw_moderation.backends.transformers import resolve_device
from nsfw_moderation.conf import conf
from nsfw_moderation.hub import (
    HUB_FILES,
    LOCAL_PREFIX,
    WAYS_OUT,
    HubUnreachable,
    cache_only,
    hub_repository,
)
from nsfw_moderation.preprocess import CentreCropPreprocessor

#: The weights file timm's ``local-dir:`` loader looks for first; nothing else is loaded.
WEIGHTS = "model.safetensors"

INSTALL = (
    "Install torch and torchvision for your machine first, then: "
    "pip install 'nsfw-moderation[timm]'."
)


class TimmBackend(TorchPrecision):
    def __init__(
        self,
        model: str | None = None,
        *,
        revision: str | None = None,
        device: str | None = None,
        precision: str | None = None,
    ) -> None:
        try:
            import timm
            import timm.data
            import torch
        except ImportError as exc:
            raise ModelUnavailable(
                f"The timm backend needs torch, torchvision and timm ({exc}). {INSTALL}"
            ) from exc
        source, revision = self._configure(torch, model, revision, precision)
        folder = model_folder(source, revision)
        try:
            network = timm.create_model(f"{LOCAL_PREFIX}{folder}", pretrained=True)
        except (OSError, RuntimeError, ValueError, KeyError) as exc:
            raise ModelUnavailable(f"timm cannot build the model {self.name!r}: {exc}") from exc
        self.labels = label_names(network.pretrained_cfg, network.num_classes, self.name)
        self.device = torch.device(resolve_device(conf.DEVICE if device is None else device))
        self.model = self._prepare(network.eval())
        self.data_config = timm.data.resolve_model_data_config(network)
        self.preprocessor = CentreCropPreprocessor.from_data_config(self.data_config)
        self.transform = None
        if self.preprocessor is None:
            self.transform = timm.data.create_transform(**self.data_config, is_training=False)
        self._pack_for_onednn()

    def classify(self, images: Sequence[Image.Image]) -> list[dict[str, float]]:
        if not images:
            return []
        pixels = self.preprocess(images).to(self.device, dtype=self._input_dtype())
        with self._torch.inference_mode(), self._autocast():
            logits = self._logits(pixels)
        probabilities = logits.float().softmax(dim=-1).cpu().tolist()
        return [dict(zip(self.labels, row, strict=True)) for row in probabilities]

    def _logits(self, pixels: Any) -> Any:
        return self.model(pixels)

    def preprocess(self, images: Sequence[Image.Image]) -> Any:
        """The network's input for ``images``, as a float32 CPU tensor."""
        if self.preprocessor is not None:
            return self.preprocessor(images)
        assert self.transform is not None
        return self._torch.stack([self.transform(image.convert("RGB")) for image in images])


def model_folder(model: str, revision: str | None) -> Path:
    """The local folder of ``model``: fetched from the Hub (cached), or as given."""
    repository = hub_repository(model)
    if repository is not None:
        folder = _snapshot(repository, revision)
    else:
        folder = Path(model.removeprefix(LOCAL_PREFIX))
        if not folder.is_dir():
            raise ModelUnavailable(
                f"MODEL {model!r} is neither a folder nor a Hub model. The timm backend loads "
                "'hf-hub:org/name' (e.g. 'hf-hub:Marqo/nsfw-image-detection-384') or a local "
                "folder with config.json and model.safetensors."
            )
    if not (folder / "config.json").is_file():
        raise ModelUnavailable(f"{folder} has no config.json: it is not a timm model.")
    if not (folder / WEIGHTS).is_file():
        raise ModelUnavailable(
            f"{folder} has no {WEIGHTS}. Only safetensors weights are loaded: pickled "
            "weights (pytorch_model.bin, *.pth) can run code when they are loaded."
        )
    return folder


def _snapshot(repository: str, revision: str | None) -> Path:
    if "@" in repository:
        raise ModelUnavailable(
            f"Pin the revision of {repository!r} with MODEL_REVISION, not '@' in MODEL."
        )
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import HfHubHTTPError, HFValidationError
    except ImportError as exc:
        raise ModelUnavailable(
            f"The timm backend needs huggingface_hub ({exc}). {INSTALL}"
        ) from exc
    try:
        # One short probe: huggingface_hub alone retries an unreachable Hub for minutes.
        cached_only = cache_only(repository, revision)
        with _no_progress_bars():
            path = snapshot_download(
                repository,
                revision=revision,
                allow_patterns=HUB_FILES,
                local_files_only=cached_only,
            )
    except HubUnreachable as exc:
        raise ModelUnavailable(str(exc)) from None
    except (HfHubHTTPError, HFValidationError, OSError) as exc:
        raise ModelUnavailable(
            f"Cannot fetch {repository!r} at {revision or 'main'} from the Hugging Face Hub: "
            f"{exc}. {WAYS_OUT}"
        ) from exc
    return Path(path)


@contextlib.contextmanager
def _no_progress_bars() -> Iterator[None]:
    """A worker's log is a file: no progress bars in it."""
    from huggingface_hub.utils import (
        are_progress_bars_disabled,
        disable_progress_bars,
        enable_progress_bars,
    )

    shown = not are_progress_bars_disabled()
    disable_progress_bars()
    try:
        yield
    finally:
        if shown:
            enable_progress_bars()


def label_names(pretrained_cfg: Mapping[str, Any], count: int, model: str) -> list[str]:
    """The model's class names in output order, from its config's ``label_names``.

    timm writes them as a list, or as ``{index: name}`` where indices have gaps.
    """
    names: Any = pretrained_cfg.get("label_names")
    if isinstance(names, Mapping):
        names = [names.get(str(index), names.get(index)) for index in range(count)]
    named = isinstance(names, (list, tuple)) and all(isinstance(n, str) and n for n in names)
    if not named or len(names) != count or len(set(names)) != count:
        raise ModelUnavailable(
            f"The model {model!r} does not name its {count} classes (label_names in its "
            f"config.json is {names!r}): verdicts need distinct, named labels for "
            "UNSAFE_LABELS to choose from."
        )
    return list(names)
