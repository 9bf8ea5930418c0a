"""Random-weight timm models shaped like the Hub's timm NSFW detectors.

- ``marqo``: Marqo/nsfw-image-detection-384, a ViT-Ti/16 at 384 px
  (``vit_tiny_patch16_384``), labels NSFW and SFW.
- ``freepik``: Freepik/nsfw_image_detector, an EVA02-B/14 at 448 px
  (``eva02_base_patch14_448.mim_in22k_ft_in22k_in1k``), labels neutral, low,
  medium and high.

Each is saved as those Hub repositories are, with timm's ``save_for_hf``:
``config.json`` (architecture, ``num_classes``, ``label_names``, and the
architecture's own ``pretrained_cfg``, which holds the preprocessing) and
``model.safetensors``. ``tiny`` shrinks the network (fewer, narrower blocks,
recorded in ``model_args``) but keeps the input size and preprocessing.

A random head gives every image nearly the same probabilities.
:func:`spread_head` points each class's logit along one of the directions in
which the features vary most over some images, scaled so that the unsafe
score of those images (the first class's probability, or the other classes'
total) spreads over (0, 1). The probabilities still mean nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PIL import Image

SHAPES: dict[str, dict[str, Any]] = {
    "marqo": {
        "architecture": "vit_tiny_patch16_384.augreg_in21k_ft_in1k",
        "labels": ["NSFW", "SFW"],
        "tiny": {"depth": 2},
    },
    "freepik": {
        "architecture": "eva02_base_patch14_448.mim_in22k_ft_in22k_in1k",
        "labels": ["neutral", "low", "medium", "high"],
        "tiny": {"depth": 2, "embed_dim": 64, "num_heads": 2},
    },
}

#: Standard deviation of each class's logit over the images the head is spread on.
SPREAD = 2.0


def build(
    directory: Path,
    shape: str,
    *,
    tiny: bool = False,
    spread_on: Sequence[Image.Image] = (),
    init_std: float | None = None,
) -> Path:
    """Save a ``shape`` model into ``directory`` (once) and return it.

    ``init_std`` draws the weights of every linear and convolution layer but
    the head from a normal distribution of that deviation instead of timm's
    (0.02): larger weights make a random network's features depend more on
    the image, so that they vary, relative to their rounding, as a trained
    network's do (``tests.conftest.SPREAD_VIT`` does the same for the
    transformers ViT).
    """
    if (directory / "config.json").exists() and (directory / "model.safetensors").exists():
        return directory
    import timm
    import torch
    from timm.models import save_for_hf

    spec = SHAPES[shape]
    torch.manual_seed(0)
    model_args = spec["tiny"] if tiny else {}
    network = timm.create_model(
        spec["architecture"], pretrained=False, num_classes=len(spec["labels"]), **model_args
    ).eval()
    if init_std is not None:
        redraw(network, init_std)
    if spread_on:
        spread_head(network, spread_on)
    save_for_hf(
        network,
        str(directory),
        model_config={"label_names": list(spec["labels"])},
        model_args=model_args or None,
        safe_serialization=True,
    )
    return directory


def redraw(network: Any, std: float) -> None:
    import torch

    head = network.get_classifier()
    with torch.no_grad():
        for module in network.modules():
            if isinstance(module, (torch.nn.Linear, torch.nn.Conv2d)) and module is not head:
                torch.nn.init.normal_(module.weight, std=std)


def spread_head(network: Any, images: Sequence[Image.Image]) -> None:
    """Make the first class's probability (Marqo's NSFW, Freepik's neutral) vary over ``images``.

    Class ``k``'s logit follows the ``k``-th principal direction of the
    features over ``images``, standardised: the first with a standard
    deviation of :data:`SPREAD`, the others with half of it, and the first
    class starts level with all the others together (so that it scores about
    0.5 on a typical image, and between about 0.1 and 0.9 on most).
    """
    import math

    import torch
    from timm.data import create_transform, resolve_model_data_config

    transform = create_transform(**resolve_model_data_config(network))
    pixels = torch.stack([transform(image.convert("RGB")) for image in images])
    head = network.get_classifier()
    classes = head.weight.shape[0]
    with torch.inference_mode():
        features = network.forward_head(network.forward_features(pixels), pre_logits=True)
        mean = features.mean(dim=0)
        directions = torch.linalg.svd(features - mean, full_matrices=False).Vh[:classes]
        spread = torch.full((classes,), SPREAD / 2)
        spread[0] = SPREAD
        scale = spread / ((features - mean) @ directions.T).std(dim=0)
        bias = -(mean @ directions.T) * scale
        bias[0] += math.log(classes - 1)
        head.weight.copy_(directions * scale[:, None])
        head.bias.copy_(bias)
