"""fp32 linear layers run by oneDNN on the CPU, their weights packed once.

torch runs an fp32 ``nn.Linear`` on the CPU with the BLAS it was built with:
oneMKL in the x86 wheels, whose code for other vendors' processors does not
use all their vector units. oneDNN, which torch already carries (it runs bf16
on the CPU, and OpenVINO's CPU plugin is built on it), picks its code by the
instructions the processor has. With the weights reordered once into oneDNN's
own layout, each layer is one oneDNN call. The arithmetic stays fp32: only the
order of the additions changes, as it does between any two BLAS libraries.
``docs/benchmarks.md`` measures the two on a ViT-B/16.

These are torch's own operators for this (its compiler uses them for frozen
CPU graphs), but not public ones: a layer is packed only if the operators are
there and the packed layer gives the plain layer's numbers on a test input;
otherwise the network is left as it was, and the log says why.
"""

from __future__ import annotations

import logging

import torch

logger = logging.getLogger(__name__)

#: How far a packed layer's outputs may be from the plain layer's, relative to
#: their size: fp32 summed in another order differs by about 1e-6.
TOLERANCE = 1e-4


class PackedLinear(torch.nn.Module):
    """An ``nn.Linear`` whose weight is held in oneDNN's layout, for inference only."""

    def __init__(self, linear: torch.nn.Linear) -> None:
        super().__init__()
        self.in_features = linear.in_features
        self.out_features = linear.out_features
        packed = torch.ops.mkldnn._reorder_linear_weight(linear.weight.detach(), None)
        self.weight = torch.nn.Parameter(packed, requires_grad=False)
        self.bias = linear.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ops.mkldnn._linear_pointwise(x, self.weight, self.bias, "none", [], "")

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, oneDNN"


def pack_linear_layers(network: torch.nn.Module) -> torch.nn.Module:
    """``network`` with each fp32 ``nn.Linear`` replaced by a :class:`PackedLinear`.

    All layers or none: should one fail to pack or give other numbers, the
    network is returned as it was.
    """
    if not available():
        logger.info("fp32 linear layers run as torch runs them: no oneDNN in this build.")
        return network
    try:
        replacements = [
            (parent, name, _checked(child))
            for parent in network.modules()
            for name, child in parent.named_children()
            if type(child) is torch.nn.Linear and child.weight.dtype == torch.float32
        ]
    except Exception as exc:
        logger.warning("fp32 linear layers run as torch runs them: oneDNN failed (%s).", exc)
        return network
    for parent, name, packed in replacements:
        setattr(parent, name, packed)
    if replacements:
        _copy_other_tensors(network)
    return network


def available() -> bool:
    return bool(
        torch.backends.mkldnn.is_available()
        and hasattr(torch.ops.mkldnn, "_reorder_linear_weight")
        and hasattr(torch.ops.mkldnn, "_linear_pointwise")
    )


def _copy_other_tensors(network: torch.nn.Module) -> None:
    """Give the tensors left as they were memory of their own.

    transformers maps the weights file into memory and makes the tensors
    views of it: any one of them left there would keep the whole file
    resident, beside the packed copies of the weights.
    """
    with torch.no_grad():
        for module in network.modules():
            for parameter in module.parameters(recurse=False):
                if not parameter.is_mkldnn:
                    parameter.data = parameter.data.clone()
            for name, buffer in module.named_buffers(recurse=False):
                module._buffers[name] = buffer.clone()


def _checked(linear: torch.nn.Linear) -> PackedLinear:
    packed = PackedLinear(linear)
    probe = torch.randn(2, linear.in_features, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        expected, got = linear(probe), packed(probe)
    scale = float(expected.abs().max()) or 1.0
    difference = float((got - expected).abs().max()) / scale
    if not difference <= TOLERANCE:  # NaN too
        raise ValueError(f"a packed layer differs from the plain one by {difference:.1e}")
    return packed
