"""``PRECISION`` for the backends that run a torch network (transformers, timm).

One set of rules for both: ``fp32`` anywhere (on the CPU, the linear layers
run by oneDNN: :mod:`~nsfw_moderation.backends.onednn`); ``bf16`` on the CPU as autocast
(matmuls and convolutions in bf16), on a GPU as bf16 weights and inputs;
``fp16`` on a GPU only; ``int8`` as torch's dynamic quantisation of the linear
layers, on the CPU only. A precision a device cannot run is refused with
advice when the backend loads, never silently replaced.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

from PIL import Image

from nsfw_moderation.backends import ModelUnavailable, default_threads
from nsfw_moderation.conf import conf
from nsfw_moderation.hub import model_name


class TorchPrecision:
    """Mixin: ``_configure`` from the settings, ``_prepare`` a network, then run it
    with ``_input_dtype`` and ``_autocast``.

    The backend calls ``_configure`` and sets ``device`` before ``_prepare``.
    """

    _torch: Any
    device: Any
    model: Any
    name: str
    precision: str
    threads: int
    #: Leave the network as torch defines it, for torch (and OpenVINO's
    #: converter) to trace: no fp32 layers packed for oneDNN.
    traceable: bool = False

    def _configure(
        self, torch: Any, model: str | None, revision: str | None, precision: str | None
    ) -> tuple[str, str | None]:
        """Name, precision and threads from the arguments, else the settings; the source to load.

        Without ``model``, the configured ``MODEL`` at ``MODEL_REVISION``.
        """
        self._torch = torch
        if model is None:
            model, revision = conf.MODEL, conf.MODEL_REVISION
        self.name = model_name(model, revision)
        self.precision = precision or conf.PRECISION
        self.threads = default_threads()
        torch.set_num_threads(self.threads)
        return model, revision

    def _prepare(self, network: Any) -> Any:
        torch = self._torch
        if self.precision == "int8":
            if self.device.type != "cpu":
                raise ModelUnavailable("PRECISION 'int8' runs on the CPU only; set DEVICE 'cpu'.")
            return torch.ao.quantization.quantize_dynamic(
                network, {torch.nn.Linear}, dtype=torch.qint8
            )
        if self.precision == "fp16":
            if self.device.type == "cpu":
                raise ModelUnavailable("PRECISION 'fp16' needs a GPU; use 'bf16' on a CPU.")
            return network.to(self.device, dtype=torch.float16)
        if self.precision == "bf16" and self.device.type != "cpu":
            return network.to(self.device, dtype=torch.bfloat16)
        if self.precision == "bf16":
            # Autocast would cast these weights to bf16 on every forward pass;
            # casting them once gives the same numbers, faster, in half the memory.
            # Normalisation layers keep their fp32 weights, as under autocast.
            for module in network.modules():
                if isinstance(module, (torch.nn.Linear, torch.nn.Conv2d)):
                    module.to(torch.bfloat16)
        return network.to(self.device)

    def _pack_for_onednn(self) -> None:
        """fp32 on the CPU: the linear layers packed for oneDNN, if the network allows.

        Checked on the backend's own input for a generated image, so the
        backend calls it once its preprocessing is set up.
        """
        if self.precision != "fp32" or self.device.type != "cpu" or self.traceable:
            return
        from nsfw_moderation.backends.onednn import pack_linear_layers

        pixels = self.preprocess([probe_image()])
        self.model = pack_linear_layers(self.model, lambda: self._logits(pixels))

    def preprocess(self, images: Sequence[Image.Image]) -> Any:
        raise NotImplementedError

    def _logits(self, pixels: Any) -> Any:
        """The network's logits for a batch of its input."""
        raise NotImplementedError

    def details(self) -> dict[str, str]:
        """What ``nsfw_model verify`` prints about how the network runs."""
        if self.precision != "fp32" or self.device.type != "cpu":
            return {}
        from nsfw_moderation.backends.onednn import PackedLinear

        packed = sum(isinstance(module, PackedLinear) for module in self.model.modules())
        if not packed:
            return {"linear": "as torch runs them, not packed for oneDNN (see the log)"}
        return {"linear": f"{packed} layers packed for oneDNN"}

    def _input_dtype(self) -> Any:
        torch = self._torch
        if self.device.type != "cpu" and self.precision in ("fp16", "bf16"):
            return torch.float16 if self.precision == "fp16" else torch.bfloat16
        return torch.float32

    @contextlib.contextmanager
    def _autocast(self) -> Iterator[None]:
        # On the CPU, bf16 runs as autocast: matmuls and convolutions in bf16
        # (their weights are stored in bf16), everything else in fp32.
        if self.precision == "bf16" and self.device.type == "cpu":
            with self._torch.autocast("cpu", dtype=self._torch.bfloat16):
                yield
        else:
            yield


def probe_image() -> Image.Image:
    """A generated 256×256 image whose three channels differ, to check a network on."""
    gradient = Image.linear_gradient("L")
    return Image.merge("RGB", (gradient, Image.radial_gradient("L"), gradient.rotate(90)))
