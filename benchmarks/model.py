"""A random-weight ViT-B/16 shaped exactly like Falconsai/nsfw_image_detection.

The Hub is not reachable from every benchmark machine, and the weights do not
change the cost of a forward pass: this model has the same layers, sizes and
preprocessor configuration, so it takes the same time as the real one.

A random classifier head gives every image nearly the same probabilities, so
no precision could ever flip a verdict on it. :func:`spread_head` rescales the
head so that the scores of typical images spread over (0, 1), like a trained
model's: differences between precisions then show in the agreement figures
as they would on real verdicts. Its probabilities still mean nothing.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PIL import Image

#: Falconsai/nsfw_image_detection's preprocessor_config.json.
FALCONSAI_PROCESSOR: dict[str, Any] = {
    "do_resize": True,
    "size": {"height": 224, "width": 224},
    "resample": 2,
    "do_rescale": True,
    "rescale_factor": 1 / 255,
    "do_normalize": True,
    "image_mean": [0.5, 0.5, 0.5],
    "image_std": [0.5, 0.5, 0.5],
}

#: The architecture fields of Falconsai/nsfw_image_detection's config.json (ViT-B/16).
FALCONSAI_CONFIG: dict[str, Any] = {
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
    "hidden_act": "gelu",
    "image_size": 224,
    "patch_size": 16,
    "num_channels": 3,
    "qkv_bias": True,
    "layer_norm_eps": 1e-12,
    "id2label": {0: "normal", 1: "nsfw"},
    "label2id": {"normal": 0, "nsfw": 1},
}

TINY = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 37,
}

#: Standard deviation of the logit gap (nsfw − normal) over the images the head is spread
#: on: about two thirds of them score between 0.12 and 0.88.
SPREAD = 2.0
SPREAD_FILE = "spread_head.json"


def build(
    directory: Path,
    *,
    tiny: bool = False,
    spread_on: Sequence[Image.Image] = (),
    principal: bool = False,
    config: dict[str, Any] | None = None,
) -> Path:
    """Save the model and its processor into ``directory`` (once) and return it.

    With ``spread_on`` images, the classifier head is spread over them
    (:func:`spread_head`). ``config`` changes fields of the ViT's configuration.
    """
    built = (directory / "config.json").exists() and (directory / "model.safetensors").exists()
    if built and (not spread_on or (directory / SPREAD_FILE).exists()):
        return directory
    import torch
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    torch.manual_seed(0)
    fields = {**FALCONSAI_CONFIG, **(TINY if tiny else {}), **(config or {})}
    directory.mkdir(parents=True, exist_ok=True)
    network = ViTForImageClassification(ViTConfig(**fields)).eval()
    processor = ViTImageProcessor(**FALCONSAI_PROCESSOR)
    if spread_on:
        figures = spread_head(network, processor, spread_on, principal=principal)
        (directory / SPREAD_FILE).write_text(json.dumps(figures, indent=1))
    network.save_pretrained(directory)
    processor.save_pretrained(directory)
    return directory


def spread_head(
    network: Any, processor: Any, images: Sequence[Image.Image], *, principal: bool = False
) -> dict[str, Any]:
    """Rescale a two-label classifier head so its scores on ``images`` spread over (0, 1).

    The head's own direction is kept (or, with ``principal``, replaced by the
    direction in which the features vary most over ``images``); its logit gap
    is centred on these images and scaled to a standard deviation of :data:`SPREAD`.
    """
    import torch

    from nsfw_moderation.preprocess import FastPreprocessor

    preprocess = FastPreprocessor.from_processor(processor)
    assert preprocess is not None
    head = network.classifier
    with torch.inference_mode():
        features = network.vit(pixel_values=preprocess(images)).last_hidden_state[:, 0]
        direction = head.weight[1] - head.weight[0]
        if principal:
            centred = features - features.mean(dim=0)
            direction = torch.linalg.svd(centred, full_matrices=False).Vh[0]
        gap = features @ direction + (head.bias[1] - head.bias[0])
        scale = SPREAD / float(gap.std())
        offset = float(head.bias[1] - head.bias[0] - gap.mean())
        head.weight.copy_(torch.stack([-direction, direction]) * scale / 2)
        head.bias.copy_(torch.tensor([-offset, offset]) * scale / 2)
    scores = torch.sigmoid((gap - gap.mean()) * scale)
    return {
        "images": len(images),
        "direction": "principal" if principal else "the head's own",
        "scale": scale,
        "score p10": float(scores.quantile(0.1)),
        "score p90": float(scores.quantile(0.9)),
    }


def spread_figures(directory: Path) -> dict[str, Any]:
    """What :func:`spread_head` recorded for the model in ``directory`` (empty if not spread)."""
    try:
        figures: dict[str, Any] = json.loads((directory / SPREAD_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return figures
