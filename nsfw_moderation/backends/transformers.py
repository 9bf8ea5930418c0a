"""The default backend: a Hugging Face image-classification model.

It loads ``MODEL`` (``Falconsai/nsfw_image_detection`` by default, or a local
directory) at ``MODEL_REVISION`` exactly as the model card does, with
``AutoModelForImageClassification`` and the model's own image processor, in its
PIL flavour. Weights load from safetensors files only: a pickled ``.bin``
checkpoint can run code when it is loaded, so one is refused rather than
trusted. For ViT-style processors (fixed-size resize, rescale, normalise) the
pixels are prepared by
:class:`~nsfw_moderation.preprocess.FastPreprocessor` from the processor's own
settings, into one batch tensor; any other processor is called as it is.
torchvision is not needed.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from typing import Any

from PIL import Image

from nsfw_moderation.backends import ModelUnavailable
from nsfw_moderation.backends.torch_precision import TorchPrecision
from nsfw_moderation.conf import conf
from nsfw_moderation.hub import WAYS_OUT, HubUnreachable, cache_only
from nsfw_moderation.preprocess import FastPreprocessor


class TransformersBackend(TorchPrecision):
    def __init__(
        self,
        model: str | None = None,
        *,
        revision: str | None = None,
        device: str | None = None,
        precision: str | None = None,
        fast_preprocessing: bool = True,
        traceable: bool = False,
    ) -> None:
        try:
            import torch
            from transformers import AutoImageProcessor, AutoModelForImageClassification
        except ImportError as exc:
            raise ModelUnavailable(
                f"The transformers backend needs torch and transformers ({exc}). Install torch "
                "for your machine first, then: pip install 'nsfw-moderation[transformers]'."
            ) from exc
        self.traceable = traceable
        source, revision = self._configure(torch, model, revision, precision)
        try:
            # One short probe: huggingface_hub alone retries an unreachable Hub for minutes.
            cached_only = cache_only(source, revision)
        except HubUnreachable as exc:
            raise ModelUnavailable(str(exc)) from None
        try:
            with _quiet_loading():
                self.processor = AutoImageProcessor.from_pretrained(
                    source,
                    revision=revision,
                    local_files_only=cached_only,
                    **pil_processor_option(),
                )
                network = AutoModelForImageClassification.from_pretrained(
                    source, revision=revision, use_safetensors=True, local_files_only=cached_only
                )
        except (OSError, ValueError) as exc:
            raise ModelUnavailable(
                f"Cannot load the model {self.name!r}: {exc}. Only safetensors weights are "
                f"loaded. {WAYS_OUT}"
            ) from exc
        self.device = torch.device(resolve_device(conf.DEVICE if device is None else device))
        self.model = self._prepare(network.eval())
        id2label = network.config.id2label
        self.labels = [str(id2label[i]) for i in range(len(id2label))]
        self.fast_preprocessor = (
            FastPreprocessor.from_processor(self.processor) if fast_preprocessing else None
        )
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
        return self.model(pixel_values=pixels).logits

    def preprocess(self, images: Sequence[Image.Image]) -> Any:
        """The model's ``pixel_values`` for ``images``, as a float32 CPU tensor."""
        if self.fast_preprocessor is not None:
            return self.fast_preprocessor(images)
        return self.processor(images=list(images), return_tensors="pt")["pixel_values"]


def pil_processor_option() -> dict[str, Any]:
    """``from_pretrained`` option for the processor that works on PIL images.

    That is the flavour :class:`FastPreprocessor` reproduces (the same PIL
    resize). transformers 5 calls it ``backend="pil"`` and otherwise prefers its
    torchvision flavour; transformers 4 calls it the slow one.
    """
    import transformers

    if int(transformers.__version__.split(".")[0]) >= 5:
        return {"backend": "pil"}
    return {"use_fast": False}


class _PilFallbackNotice(logging.Filter):
    # Asked for the PIL flavour of a processor whose config does not name its
    # class (as older Hub models' do not), transformers 5 still resolves the
    # torchvision flavour's name by the way and, torchvision missing, warns that
    # it falls back to the PIL flavour: the one asked for.
    def filter(self, record: logging.LogRecord) -> bool:
        return "requires torchvision (not installed)" not in record.getMessage()


@contextlib.contextmanager
def _quiet_loading() -> Iterator[None]:
    """No progress bar (a worker's log is a file) and no notice about torchvision."""
    from transformers.utils import logging as transformers_logging

    bars = transformers_logging.is_progress_bar_enabled()
    notices = logging.getLogger("transformers.utils.import_utils")
    notice_filter = _PilFallbackNotice()
    transformers_logging.disable_progress_bar()
    notices.addFilter(notice_filter)
    try:
        yield
    finally:
        notices.removeFilter(notice_filter)
        if bars:
            transformers_logging.enable_progress_bar()


def resolve_device(device: str) -> str:
    """``auto`` picks cuda, then mps, then cpu."""
    if device != "auto":
        return device
    import torch

    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return "cpu"
