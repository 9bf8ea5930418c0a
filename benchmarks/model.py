"""A random-weight ViT-B/16 shaped exactly like Falconsai/nsfw_image_detection.

The Hub is not reachable from every benchmark machine, and the weights do not
change the cost of a forward pass: this model has the same layers, sizes and
preprocessor configuration, so it takes the same time as the real one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

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


def build(directory: Path, *, tiny: bool = False) -> Path:
    """Save the model and its processor into ``directory`` (once) and return it."""
    if (directory / "config.json").exists() and (directory / "model.safetensors").exists():
        return directory
    import torch
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    torch.manual_seed(0)
    fields = dict(FALCONSAI_CONFIG)
    if tiny:
        fields.update(hidden_size=32, num_hidden_layers=2, num_attention_heads=2)
        fields.update(intermediate_size=37)
    directory.mkdir(parents=True, exist_ok=True)
    ViTForImageClassification(ViTConfig(**fields)).save_pretrained(directory)
    ViTImageProcessor(**FALCONSAI_PROCESSOR).save_pretrained(directory)
    return directory
