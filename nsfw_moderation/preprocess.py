"""Fast preprocessing for ViT-style image processors.

A ViT-style processor (ViT, DeiT without crop, Falconsai's) does three things
to every image: resize to a fixed ``height × width`` with a PIL filter, scale
by ``rescale_factor`` and normalise with ``image_mean``/``image_std``. Its
generic implementation goes image by image through float64 NumPy arrays.
:class:`FastPreprocessor` does the same with one PIL ``resize`` per image into
one preallocated ``uint8`` batch, then a single fused multiply-add in torch.

The result matches the processor to float rounding (the resize is the same
PIL call), except that very large images are first shrunk by an integer
factor (``reducing_gap``), which changes pixels by a level or two and the
probabilities by far less than 0.01 (``tests/test_preprocess.py``).

:func:`FastPreprocessor.from_processor` returns ``None`` for any processor
it does not recognise; callers then use the processor itself.

:class:`CentreCropPreprocessor` is timm's evaluation transform (shorter side
resized, centre crop, ``ToTensor``, ``Normalize``) done the same way into one
batch tensor: the same PIL calls and the same float32 operations in the same
order, so its pixels equal the transform's exactly (``tests/test_timm.py``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from PIL import Image

if TYPE_CHECKING:
    import numpy as np

#: Shrink by an integer factor first while the image is at least this many
#: times the target size; Pillow documents 3.0 as indistinguishable from a
#: plain resize.
REDUCING_GAP = 3.0

# Processor switches that change the output in ways we do not reproduce.
_UNSUPPORTED_SWITCHES = ("do_center_crop", "do_pad", "do_reduce_labels", "do_flip_channel_order")


@dataclass(frozen=True)
class FastPreprocessor:
    height: int
    width: int
    resample: int
    #: Per channel: ``pixel * scale + shift`` = ``(pixel * rescale - mean) / std``.
    scale: tuple[float, float, float]
    shift: tuple[float, float, float]
    reducing_gap: float | None = REDUCING_GAP

    @classmethod
    def from_processor(cls, processor: Any) -> FastPreprocessor | None:
        """The fast equivalent of ``processor``, or ``None`` if it is not ViT-style."""
        size = _fixed_size(processor)
        if size is None or not getattr(processor, "do_resize", False):
            return None
        if any(getattr(processor, switch, False) for switch in _UNSUPPORTED_SWITCHES):
            return None
        affine = _affine(processor)
        resample = getattr(processor, "resample", None)
        if affine is None or not isinstance(resample, int):
            return None
        return cls(size[0], size[1], int(resample), *affine)

    def __call__(self, images: Sequence[Image.Image]) -> Any:
        """A float32 ``(N, 3, height, width)`` tensor, as the processor's ``pixel_values``."""
        import torch

        batch = torch.from_numpy(self.uint8_batch(images))
        pixels = batch.permute(0, 3, 1, 2).to(torch.float32, memory_format=torch.contiguous_format)
        scale = torch.tensor(self.scale, dtype=torch.float32).view(1, 3, 1, 1)
        shift = torch.tensor(self.shift, dtype=torch.float32).view(1, 3, 1, 1)
        return pixels.mul_(scale).add_(shift)

    def uint8_batch(self, images: Sequence[Image.Image]) -> np.ndarray:
        """The resized images as one RGB ``uint8`` array of ``(N, height, width, 3)``.

        No torch: this is all the OpenVINO backend needs (its converted model
        rescales and normalises the pixels itself).
        """
        import numpy as np

        batch = np.empty((len(images), self.height, self.width, 3), dtype=np.uint8)
        for index, image in enumerate(images):
            batch[index] = self.resize(image)
        return batch

    def resize(self, image: Image.Image) -> np.ndarray:
        """``image`` as an RGB ``uint8`` array of ``(height, width, 3)``."""
        import numpy as np

        if image.mode != "RGB":
            image = image.convert("RGB")
        if image.size != (self.width, self.height):
            image = image.resize(
                (self.width, self.height), self.resample, reducing_gap=self.reducing_gap
            )
        return np.asarray(image)


def _fixed_size(processor: Any) -> tuple[int, int] | None:
    size = getattr(processor, "size", None)
    if size is None:
        return None
    height = _get(size, "height")
    width = _get(size, "width")
    others = [key for key in _keys(size) if key not in ("height", "width")]
    if not (isinstance(height, int) and isinstance(width, int)) or others:
        return None
    return height, width


def _get(size: Any, key: str) -> Any:
    return size.get(key) if isinstance(size, dict) else getattr(size, key, None)


def _keys(size: Any) -> list[str]:
    if isinstance(size, dict):
        return [key for key, value in size.items() if value is not None]
    return [key for key, value in vars(size).items() if value is not None]


Triple = tuple[float, float, float]


def _affine(processor: Any) -> tuple[Triple, Triple] | None:
    rescale = float(processor.rescale_factor) if getattr(processor, "do_rescale", False) else 1.0
    mean: Any = [0.0, 0.0, 0.0]
    std: Any = [1.0, 1.0, 1.0]
    if getattr(processor, "do_normalize", False):
        mean, std = processor.image_mean, processor.image_std
    mean, std = _per_channel(mean), _per_channel(std)
    if mean is None or std is None or 0.0 in std:
        return None
    scale = (rescale / std[0], rescale / std[1], rescale / std[2])
    shift = (-mean[0] / std[0], -mean[1] / std[1], -mean[2] / std[2])
    return scale, shift


def _per_channel(value: Any) -> Triple | None:
    if isinstance(value, (int, float)):
        return (float(value),) * 3
    try:
        values = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        return None
    return (values[0], values[1], values[2]) if len(values) == 3 else None


#: timm's interpolation names → the PIL filters torchvision's ``Resize`` uses for them.
PIL_FILTERS = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "box": Image.Resampling.BOX,
    "hamming": Image.Resampling.HAMMING,
    "lanczos": Image.Resampling.LANCZOS,
}


@dataclass(frozen=True)
class CentreCropPreprocessor:
    """timm's evaluation transform for ``crop_mode`` "center" (or "squash"), as one batch.

    The shorter side is resized to ``scale`` (both sides, for "squash") with
    ``resample``, then the centre ``height × width`` is cut out, as
    torchvision's ``Resize`` and ``CenterCrop`` do on PIL images.
    """

    scale: int
    height: int
    width: int
    resample: int
    mean: Triple
    std: Triple
    squash: bool = False

    @classmethod
    def from_data_config(cls, config: dict[str, Any]) -> CentreCropPreprocessor | None:
        """The batch equivalent of ``create_transform(**config)``, or ``None`` if there is none.

        ``config`` is what ``timm.data.resolve_data_config`` returns. Border
        mode, non-square inputs and a crop larger than the resized image (which
        torchvision pads) are left to timm's own transform.
        """
        channels, height, width = config["input_size"]
        crop_mode = config.get("crop_mode") or "center"
        crop_pct = config.get("crop_pct") or 0.875
        mean, std = _per_channel(config["mean"]), _per_channel(config["std"])
        if channels != 3 or height != width or crop_mode not in ("center", "squash"):
            return None
        scale = math.floor(height / crop_pct)
        resample = PIL_FILTERS.get(config.get("interpolation", ""))
        if scale < height or resample is None or mean is None or std is None or 0.0 in std:
            return None
        return cls(scale, height, width, int(resample), mean, std, squash=crop_mode == "squash")

    def __call__(self, images: Sequence[Image.Image]) -> Any:
        """A float32 ``(N, 3, height, width)`` tensor, equal to the transform's, stacked."""
        import torch

        batch = torch.from_numpy(self.uint8_batch(images))
        pixels = batch.permute(0, 3, 1, 2).to(torch.float32, memory_format=torch.contiguous_format)
        mean = torch.tensor(self.mean, dtype=torch.float32).view(1, 3, 1, 1)
        std = torch.tensor(self.std, dtype=torch.float32).view(1, 3, 1, 1)
        # ToTensor divides by 255, Normalize subtracts and divides: the same
        # three float32 operations, for the same results to the bit.
        return pixels.div_(255).sub_(mean).div_(std)

    def uint8_batch(self, images: Sequence[Image.Image]) -> np.ndarray:
        import numpy as np

        batch = np.empty((len(images), self.height, self.width, 3), dtype=np.uint8)
        for index, image in enumerate(images):
            batch[index] = np.asarray(self.crop(image))
        return batch

    def crop(self, image: Image.Image) -> Image.Image:
        """``image`` resized and cropped, as RGB."""
        if image.mode != "RGB":
            image = image.convert("RGB")
        size = self.resized_size(*image.size)
        if image.size != size:
            image = image.resize(size, self.resample)
        left = round((size[0] - self.width) / 2.0)
        top = round((size[1] - self.height) / 2.0)
        return image.crop((left, top, left + self.width, top + self.height))

    def resized_size(self, width: int, height: int) -> tuple[int, int]:
        """torchvision's ``Resize(scale)`` size: the shorter side to ``scale``, truncating."""
        if self.squash:
            return self.scale, self.scale
        if width <= height:
            return self.scale, int(self.scale * height / width)
        return int(self.scale * width / height), self.scale
