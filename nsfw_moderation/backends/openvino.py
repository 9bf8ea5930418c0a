"""``MODEL`` converted to OpenVINO, run on the CPU without torch.

``manage.py nsfw_model optimize`` converts the Hugging Face model once per
precision (:mod:`nsfw_moderation.optimize`) into :mod:`nsfw_moderation.model_cache`;
this backend only loads the converted model, so a worker needs ``openvino``
and NumPy, starts in a second or two, and never imports torch.

The converted model takes the resized RGB pixels as ``uint8`` and rescales
and normalises them itself. A batch is split over the runtime's streams and
run as asynchronous requests, all at once.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from nsfw_moderation import model_cache
from nsfw_moderation.backends import ModelUnavailable, available_cores, default_threads
from nsfw_moderation.conf import conf
from nsfw_moderation.hub import model_name
from nsfw_moderation.preprocess import FastPreprocessor

COMPILED_FOLDER = "compiled"

#: PRECISION → the runtime's inference precision for the layers left in floating point.
INFERENCE_PRECISION = {"fp32": "f32", "bf16": "bf16", "int8": "f32"}


class OpenVINOBackend:
    device = "cpu"

    def __init__(
        self,
        model: str | None = None,
        *,
        revision: str | None = None,
        precision: str | None = None,
        threads: int | None = None,
        entry: model_cache.Entry | None = None,
        performance_hint: str = "THROUGHPUT",
    ) -> None:
        try:
            import openvino
        except ImportError as exc:
            raise ModelUnavailable(
                f"The openvino backend needs OpenVINO ({exc}): pip install "
                "'nsfw-moderation[openvino]'."
            ) from exc
        source = model or conf.MODEL
        pinned = conf.MODEL_REVISION if model is None else revision
        # The same name as the transformers backend's: rows, deduplication and
        # `nsfw_scan --rescan=other-model` see one model, whichever runs it.
        self.name = model_name(source, pinned)
        self.precision = precision or conf.PRECISION
        self.entry = entry or find_entry(source, self.precision, pinned)
        try:
            # Hashed before the runtime reads a byte of them.
            self.entry.verify()
        except model_cache.CacheError as exc:
            raise ModelUnavailable(str(exc)) from exc
        self.labels = self.entry.labels
        self.preprocessor = FastPreprocessor(**self.entry.meta["preprocess"])
        self.threads = threads or default_threads()
        core = openvino.Core()
        blobs = compiled_cache(self.entry)
        if blobs is not None:
            core.set_property({"CACHE_DIR": str(blobs)})
        self.compiled = core.compile_model(
            str(self.entry.model_file),
            "CPU",
            compile_config(self.entry.meta, self.threads, performance_hint),
        )
        count = int(self.compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
        self._requests = [self.compiled.create_infer_request() for _ in range(max(1, count))]

    @property
    def runtime(self) -> str:
        return f"OpenVINO {self.entry.key.runtime_version}"

    def details(self) -> dict[str, str]:
        """What ``nsfw_model verify`` prints about the runtime and the converted model."""
        agreement = self.entry.agreement
        return {
            "runtime": self.runtime,
            "runs as": (
                f"{self.compiled.get_property('INFERENCE_PRECISION_HINT').to_string()}, "
                f"{self.compiled.get_property('NUM_STREAMS')} stream(s), "
                f"{self.compiled.get_property('INFERENCE_NUM_THREADS')} thread(s)"
            ),
            "converted": f"{self.entry.folder} ({self.entry.size() / 1024 / 1024:.1f} MB)",
            "agreement": agreement.summary(),
        }

    def classify(self, images: Sequence[Image.Image]) -> list[dict[str, float]]:
        if not images:
            return []
        return self.classify_pixels(self.preprocessor.uint8_batch(images))

    def classify_pixels(self, pixels: Any) -> list[dict[str, float]]:
        """:meth:`classify` for images already resized into a uint8 batch."""
        logits = self.infer(pixels)
        return [dict(zip(self.labels, row, strict=True)) for row in softmax(logits).tolist()]

    def infer(self, pixels: Any) -> Any:
        """Logits for a ``(N, height, width, 3)`` uint8 batch: one request per stream."""
        import numpy as np

        chunks = [c for c in np.array_split(pixels, len(self._requests)) if len(c)]
        requests = self._requests[: len(chunks)]
        for request, chunk in zip(requests, chunks, strict=True):
            request.start_async({0: chunk})
        outputs = []
        for request in requests:
            request.wait()
            outputs.append(request.get_output_tensor(0).data.copy())
        return np.concatenate(outputs)


def find_entry(model: str, precision: str, pinned: str | None = None) -> model_cache.Entry:
    """The active converted model for ``model`` at ``precision``, usable at the current limits."""
    version = model_cache.runtime_version() or "?"
    try:
        key = model_cache.key_for(model, precision, version, pinned)
    except model_cache.CacheError as exc:
        # Never a guess at another revision: the worker's rows wait (DESIGN invariant 4).
        raise ModelUnavailable(str(exc)) from exc
    entry = model_cache.load(key) if key else None
    if entry is None:
        raise ModelUnavailable(_not_converted(model, precision, version, key))
    problems = entry.agreement.problems()
    if problems:
        raise ModelUnavailable(
            f"The converted model in {entry.folder} is outside the accuracy limits at the "
            f"current settings: {'; '.join(problems)}. Run `manage.py nsfw_model optimize` "
            "again, or change the thresholds or limits."
        )
    return entry


def _not_converted(model: str, precision: str, version: str, key: model_cache.Key | None) -> str:
    message = (
        f"No converted model for {model!r} at {precision} with OpenVINO {version} in "
        f"{model_cache.cache_root()}: run `manage.py nsfw_model optimize` on this machine (or "
        "on one with torch, then copy OPENVINO_CACHE here)."
    )
    refusal = model_cache.refusal(key) if key else None
    if refusal:
        message += f" The last conversion was refused: {'; '.join(refusal['problems'])}."
    return message


def compiled_cache(entry: model_cache.Entry) -> Path | None:
    """Where the runtime keeps this model compiled for this CPU, if it may write there.

    Compiling int8 ViT-B/16 takes seconds; loading the compiled blob, under
    one. Only an active entry keeps blobs (a staged one is about to move).
    """
    if entry.folder != entry.key.folder:
        return None
    blobs = entry.folder / COMPILED_FOLDER
    return blobs if os.access(blobs if blobs.exists() else entry.folder, os.W_OK) else None


def compile_config(meta: dict[str, Any], threads: int, hint: str = "THROUGHPUT") -> dict[str, Any]:
    """Runtime settings: the precision the guard checked, the worker's share of the cores.

    ``THROUGHPUT`` runs a batch as one request per stream, all at once
    (``docs/benchmarks.md`` compares it with ``LATENCY``, one request).
    """
    return {
        "PERFORMANCE_HINT": hint,
        "INFERENCE_NUM_THREADS": threads,
        "INFERENCE_PRECISION_HINT": meta["inference_precision"],
        # Several workers on one machine would each pin their threads to the
        # same first cores; pinning only helps a worker that has them all.
        "ENABLE_CPU_PINNING": threads >= available_cores(),
    }


def softmax(logits: Any) -> Any:
    import numpy as np

    shifted = logits.astype(np.float64) - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)
