"""A deterministic classifier for tests of policy, signals and the pipeline.

The real code path (transformers) is tested with a tiny random-weight ViT,
whose scores hover around 0.5; this backend makes verdicts predictable:
an image's "nsfw" probability is the share of red in its pixels.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence

from PIL import Image, ImageStat

calls: list[int] = []


class ColourBackend:
    name = "tests/colour"
    labels = ("normal", "nsfw")

    def classify(self, images: Sequence[Image.Image]) -> list[dict[str, float]]:
        calls.append(len(images))
        results = []
        for image in images:
            r, g, b = ImageStat.Stat(image.convert("RGB")).mean
            nsfw = r / (r + g + b) if r + g + b else 0.0
            results.append({"normal": 1 - nsfw, "nsfw": nsfw})
        return results


class SlowColourBackend(ColourBackend):
    """ColourBackend that takes ``NSFW_TEST_SLOW`` seconds per call: room to kill a worker."""

    def classify(self, images: Sequence[Image.Image]) -> list[dict[str, float]]:
        time.sleep(float(os.environ.get("NSFW_TEST_SLOW", "0.5")))
        return super().classify(images)


class CountingColourBackend(ColourBackend):
    """ColourBackend that notes, in the file ``NSFW_TEST_CALLS_LOG``, each load and each call.

    Lines are ``load PID THREADS`` and ``call PID BATCH``: how many times each
    worker process loaded the model and with how many threads it would run it,
    and how many images each model call had.
    """

    def __init__(self) -> None:
        from nsfw_moderation.backends import default_threads

        _note(f"load {os.getpid()} {default_threads()}")

    def classify(self, images: Sequence[Image.Image]) -> list[dict[str, float]]:
        _note(f"call {os.getpid()} {len(images)}")
        return super().classify(images)


def _note(line: str) -> None:
    with open(os.environ["NSFW_TEST_CALLS_LOG"], "a") as log:
        log.write(line + "\n")


class BrokenBackend:
    """A backend whose model cannot be loaded."""

    name = "tests/broken"
    labels = ("normal", "nsfw")

    def __init__(self) -> None:
        from nsfw_moderation.backends import ModelUnavailable

        raise ModelUnavailable("No model here: the files are missing.")

    def classify(self, images: Sequence[Image.Image]) -> list[dict[str, float]]:
        raise AssertionError("unreachable")


class NaNBackend(ColourBackend):
    """A model whose numbers went wrong: NaN probabilities."""

    def classify(self, images: Sequence[Image.Image]) -> list[dict[str, float]]:
        return [{"normal": float("nan"), "nsfw": float("nan")} for _ in images]


# --- Shadow models (SHADOW_MODEL): backends that take the model they are given ---------

shadow_calls: list[int] = []
shadow_builds: list[dict[str, str | None]] = []


class BlueShadow:
    """A cheap shadow model: "explicit" is the share of blue; it is named after its ``model``."""

    labels = ("safe", "explicit")

    def __init__(
        self, model: str, *, revision: str | None = None, precision: str | None = None
    ) -> None:
        shadow_builds.append({"model": model, "revision": revision, "precision": precision})
        self.name = model

    def classify(self, images: Sequence[Image.Image]) -> list[dict[str, float]]:
        shadow_calls.append(len(images))
        results = []
        for image in images:
            r, g, b = ImageStat.Stat(image.convert("RGB")).mean
            explicit = b / (r + g + b) if r + g + b else 0.0
            results.append({"safe": 1 - explicit, "explicit": explicit})
        return results


class UnloadableShadow(BlueShadow):
    """A shadow model whose files are missing."""

    def __init__(self, model: str, **options: str | None) -> None:
        shadow_builds.append({"model": model, **options})
        from nsfw_moderation.backends import ModelUnavailable

        raise ModelUnavailable("No shadow model here: the files are missing.")


class FailingShadow(BlueShadow):
    """A shadow model that raises on every batch."""

    def classify(self, images: Sequence[Image.Image]) -> list[dict[str, float]]:
        raise RuntimeError("The shadow model ran out of memory.")


class NaNShadow(BlueShadow):
    """A shadow model whose numbers went wrong."""

    def classify(self, images: Sequence[Image.Image]) -> list[dict[str, float]]:
        return [{"safe": float("nan"), "explicit": float("nan")} for _ in images]


class ModelOnlyShadow(BlueShadow):
    """A backend that takes a model, but neither a revision nor a precision."""

    def __init__(self, model: str) -> None:
        super().__init__(model)


class CrashingShadow(BlueShadow):
    """A shadow model whose loader fails with something other than ModelUnavailable."""

    def __init__(self, model: str, **options: str | None) -> None:
        shadow_builds.append({"model": model, **options})
        raise RuntimeError("CUDA error: out of memory")


shadow_saw: list[tuple[str, str]] = []


class ObservingShadow(BlueShadow):
    """A shadow model that notes the stored status and verdict of every row while it runs."""

    def classify(self, images: Sequence[Image.Image]) -> list[dict[str, float]]:
        from nsfw_moderation.models import ModeratedImage

        shadow_saw.extend(ModeratedImage.objects.values_list("status", "verdict"))
        return super().classify(images)


class ReplacingShadow(BlueShadow):
    """A shadow model during whose pass every file is replaced (a re-upload resets the rows)."""

    def classify(self, images: Sequence[Image.Image]) -> list[dict[str, float]]:
        from nsfw_moderation import enqueue
        from nsfw_moderation.models import ModeratedImage

        ModeratedImage.objects.update(**enqueue.FRESH)
        return super().classify(images)
