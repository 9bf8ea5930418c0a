"""Converting ``MODEL`` for the OpenVINO backend, checked against the original at fp32.

``manage.py nsfw_model optimize`` runs this once per precision, ahead of the
workers. :class:`Converter` loads the Hugging Face model with torch (through
the transformers backend, fp32, on the CPU), converts it with OpenVINO with
the image normalisation built in, and for int8 quantises it with NNCF's
post-training quantisation, calibrated on real images. Then the accuracy
guard runs: the converted model, loaded exactly as a worker loads it, scores
the calibration images next to the original, and only a conversion within
``MAX_SCORE_DIFFERENCE`` and ``MAX_VERDICT_FLIPS`` is activated
(:mod:`nsfw_moderation.model_cache`).

Calibration images are by default the site's most recently classified
uploads (:func:`site_images`), read through the same storage and safe decoder
as the worker; the command can give the images of a folder instead.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from PIL import Image

from nsfw_moderation import imaging, model_cache, storage
from nsfw_moderation.accuracy import Agreement
from nsfw_moderation.backends import ModelUnavailable, available_cores
from nsfw_moderation.backends.openvino import INFERENCE_PRECISION, OpenVINOBackend
from nsfw_moderation.conf import conf
from nsfw_moderation.models import ModeratedImage, Status

PRECISIONS = ("fp32", "bf16", "int8")


class ConversionError(Exception):
    """The model cannot be converted here. The message says why and what to do."""


@dataclass
class Outcome:
    """One precision's conversion: active, or refused by the guard (``problems``)."""

    precision: str
    key: model_cache.Key
    agreement: Agreement
    problems: list[str]
    seconds: float
    entry: model_cache.Entry | None


def site_images(limit: int) -> Iterator[Image.Image]:
    """The site's most recently classified images, newest first, each once.

    Read and decoded as the worker reads them; of an animation, the frame that
    decided its verdict. Files that are gone or no longer decode are skipped.
    """
    rows = ModeratedImage.objects.filter(status=Status.DONE).exclude(sha256="")
    seen: set[str] = set()
    for row in rows.select_related("content_type").order_by("-classified_at", "-pk").iterator():
        if len(seen) >= limit:
            return
        if row.sha256 in seen:
            continue
        try:
            frames = imaging.load_frames(storage.open_file(row), storage.decode_limits())
        except (storage.InputMissing, imaging.ImageDecodeError, OSError):
            continue
        seen.add(row.sha256)
        yield frames[min(row.frame or 0, len(frames) - 1)]


class Converter:
    """``MODEL`` loaded once at fp32 with torch, converted to as many precisions as asked."""

    def __init__(self, model: str | None = None) -> None:
        try:
            import openvino  # noqa: F401
            import torch
        except ImportError as exc:
            raise ConversionError(
                f"Converting needs torch, transformers and OpenVINO ({exc}): pip install "
                "'nsfw-moderation[transformers,openvino]'."
            ) from exc
        from nsfw_moderation.backends.transformers import TransformersBackend

        self.source = model or conf.MODEL
        pinned = conf.MODEL_REVISION if model is None else None
        try:
            # As torch defines it: the converter traces it.
            self.original = TransformersBackend(
                model, device="cpu", precision="fp32", traceable=True
            )
        except ModelUnavailable as exc:
            raise ConversionError(str(exc)) from exc
        torch.set_num_threads(available_cores())
        if self.original.fast_preprocessor is None:
            raise ConversionError(
                f"The image processor of {self.original.name!r} is not ViT-style (fixed-size "
                "resize, rescale, normalise): the openvino backend cannot prepare its input."
            )
        self.preprocessor = self.original.fast_preprocessor
        self.version = model_cache.runtime_version() or "?"
        try:
            revision = model_cache.source_revision(self.source, pinned)
        except model_cache.CacheError as exc:
            raise ConversionError(str(exc)) from exc
        if revision is None:
            raise ConversionError(f"Cannot tell the revision of {self.original.name!r}.")
        self.revision = revision
        self._base: Any = None

    def pixels(self, images: Iterable[Image.Image], limit: int) -> Any:
        """Up to ``limit`` images resized to the model's input, as one uint8 batch.

        Each image is resized as soon as it is decoded: a few hundred uploads
        at full size would not fit in memory.
        """
        import numpy as np

        resized = [self.preprocessor.resize(image) for image in itertools.islice(images, limit)]
        if not resized:
            raise ConversionError(
                "There are no images to calibrate and check the converted model with: "
                "classify some uploads first, or give a folder of typical images."
            )
        return np.stack(resized)

    def reference(self, pixels: Any) -> list[dict[str, float]]:
        """The original model's scores at fp32, ``BATCH_SIZE`` images at a time."""
        results: list[dict[str, float]] = []
        for start in range(0, len(pixels), conf.BATCH_SIZE):
            batch = [Image.fromarray(array) for array in pixels[start : start + conf.BATCH_SIZE]]
            results.extend(self.original.classify(batch))
        return results

    def convert(
        self, precision: str, pixels: Any, reference: list[dict[str, float]], *, source: str
    ) -> Outcome:
        """Convert, check against ``reference`` and activate, or refuse and say why."""
        if precision not in PRECISIONS:
            raise ConversionError(f"OpenVINO models are {', '.join(PRECISIONS)}, not {precision}.")
        started = time.perf_counter()
        key = model_cache.Key(self.source, self.revision, precision, self.version)
        staging = model_cache.staging_folder(key)
        try:
            entry = self._write(key, staging, precision, pixels, source)
            backend = OpenVINOBackend(entry=entry, threads=available_cores())
            agreement = Agreement(reference, _in_batches(backend, pixels))
            del backend
        except BaseException:
            model_cache.discard(staging)
            raise
        seconds = time.perf_counter() - started
        problems = agreement.problems()
        record = {**entry.meta, "agreement": agreement.to_json(), "conversion_seconds": seconds}
        if problems:
            model_cache.refuse(staging, key, {**record, "problems": problems})
            return Outcome(precision, key, agreement, problems, seconds, None)
        model_cache.write_meta(staging, record)
        entry = model_cache.activate(staging, key)
        # Compiled once more as a worker here will compile it, so that workers
        # find it in the runtime's cache and start in about a second.
        OpenVINOBackend(entry=entry)
        return Outcome(precision, key, agreement, [], seconds, entry)

    def _write(
        self, key: model_cache.Key, staging: Any, precision: str, pixels: Any, source: str
    ) -> model_cache.Entry:
        import openvino

        model = quantize(self.base_model(), pixels) if precision == "int8" else self.base_model()
        path = staging / model_cache.MODEL_FILE
        openvino.save_model(model, str(path), compress_to_fp16=precision != "fp32")
        meta = {
            # Checked before every load (model_cache.Entry.verify).
            "files": model_cache.digests(staging),
            "model": key.model,
            "revision": key.revision,
            "precision": precision,
            "runtime": model_cache.RUNTIME,
            "runtime_version": key.runtime_version,
            "labels": list(self.original.labels),
            "preprocess": dataclasses.asdict(self.preprocessor),
            "inference_precision": INFERENCE_PRECISION[precision],
            "calibration": {"source": source, "images": len(pixels)},
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        model_cache.write_meta(staging, meta)
        return model_cache.Entry(key, staging, meta)

    def base_model(self) -> Any:
        """The fp32 OpenVINO model, taking a ``(N, height, width, 3)`` uint8 batch."""
        if self._base is None:
            self._base = self._convert_fp32()
        return self._base.clone()

    def _convert_fp32(self) -> Any:
        import openvino
        import torch
        from openvino.preprocess import PrePostProcessor

        p = self.preprocessor
        with torch.inference_mode():
            model = openvino.convert_model(
                self.original.model,
                example_input=torch.zeros(1, 3, p.height, p.width),
                input=[(-1, 3, p.height, p.width)],
            )
        # pixel * scale + shift, written as (pixel - mean) / std.
        ppp = PrePostProcessor(model)
        ppp.input().tensor().set_element_type(openvino.Type.u8).set_layout(openvino.Layout("NHWC"))
        ppp.input().model().set_layout(openvino.Layout("NCHW"))
        steps = ppp.input().preprocess().convert_element_type(openvino.Type.f32)
        steps.mean([-shift / scale for scale, shift in zip(p.scale, p.shift, strict=True)])
        steps.scale([1 / scale for scale in p.scale])
        return ppp.build()


def quantize(model: Any, pixels: Any) -> Any:
    """NNCF post-training int8 quantisation, calibrated on ``pixels`` (one image per sample).

    The first and the last layer (the patch embedding, the classifier) stay in
    floating point, and SmoothQuant is off: on the benchmark's ViT-B/16 each
    roughly halved the largest probability difference from fp32. Weights are
    kept to 7 bits (NNCF's overflow fix, on every layer): a CPU without VNNI
    adds pairs of int8 products in 16 bits, which 8-bit weights overflow, and
    the converted file may run on other CPUs than the one that converted it.
    """
    import nncf

    layers = [op for op in model.get_ordered_ops() if op.get_type_name() in _WEIGHTED_LAYERS]
    return nncf.quantize(
        model,
        nncf.Dataset([pixels[index : index + 1] for index in range(len(pixels))]),
        model_type=nncf.ModelType.TRANSFORMER,
        subset_size=len(pixels),
        ignored_scope=nncf.IgnoredScope(
            names=[layers[0].get_friendly_name(), layers[-1].get_friendly_name()]
        ),
        advanced_parameters=nncf.AdvancedQuantizationParameters(
            overflow_fix=nncf.OverflowFix.ENABLE,
            smooth_quant_alphas=nncf.AdvancedSmoothQuantParameters(matmul=-1),
        ),
    )


_WEIGHTED_LAYERS = ("Convolution", "MatMul")


def _in_batches(backend: OpenVINOBackend, pixels: Any) -> list[dict[str, float]]:
    results: list[dict[str, float]] = []
    for start in range(0, len(pixels), conf.BATCH_SIZE):
        results.extend(backend.classify_pixels(pixels[start : start + conf.BATCH_SIZE]))
    return results
