"""fp32 linear layers run by oneDNN on the CPU, their weights packed once.

torch runs an fp32 ``nn.Linear`` on the CPU with the BLAS it was built with:
oneMKL in the x86 wheels. oneDNN, which torch already carries (it runs bf16
on the CPU, and OpenVINO's CPU plugin is built on it), picks its code by the
instructions the processor has: on the AMD EPYC of ``docs/benchmarks.md``
the worker path at fp32 ran twice as fast with it. With the weights reordered
once into oneDNN's own layout, each layer is one oneDNN call. The arithmetic
stays fp32: only the order of the additions changes, as it does between any
two BLAS libraries.

These are torch's own operators for this (its compiler uses them for frozen
CPU graphs), but not public ones: the layers are packed only if the operators
are there (and ``torch.backends.mkldnn.enabled``), each packed layer gives its
plain layer's numbers, and the whole network then gives its outputs on a test
image; otherwise the network is left as it was, and the log says why.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import torch

logger = logging.getLogger(__name__)

#: How far a packed layer's outputs may be from the plain layer's, relative to
#: their size: fp32 summed in another order differs by about 1e-6.
TOLERANCE = 1e-4
#: The same for the whole network's outputs, where the layers' differences add up.
NETWORK_TOLERANCE = 1e-3


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


def pack_linear_layers(
    network: torch.nn.Module, run: Callable[[], torch.Tensor]
) -> torch.nn.Module:
    """``network`` with each fp32 ``nn.Linear`` replaced by a :class:`PackedLinear`.

    All layers or none: each packed layer must give its plain layer's numbers,
    and then ``run()`` (the whole network on a test input) the outputs it gave
    before. A network that reads a layer's weight itself, as some timm models
    do, fails there and is put back as it was.
    """
    if not available():
        logger.info("fp32 linear layers run as torch runs them: no oneDNN in this build.")
        return network
    with torch.inference_mode():
        expected = run()
    places = [
        (parent, name, child)
        for parent in network.modules()
        # Every name, where named_children() gives a module held under two only once.
        for name, child in parent._modules.items()
        if type(child) is torch.nn.Linear and child.weight.dtype == torch.float32
    ]
    try:
        packed: dict[int, PackedLinear] = {}
        for _parent, _name, linear in places:
            if id(linear) not in packed:  # a layer shared by two modules is packed once
                packed[id(linear)] = _checked(linear)
        for parent, name, linear in places:
            setattr(parent, name, packed[id(linear)])
        with torch.inference_mode():
            _compare(run(), expected, "the network with packed layers", NETWORK_TOLERANCE)
    except Exception as exc:
        for parent, name, linear in places:
            setattr(parent, name, linear)
        logger.warning("fp32 linear layers run as torch runs them: oneDNN failed (%s).", exc)
        return network
    if places:
        _copy_other_tensors(network)
    return network


def available() -> bool:
    return bool(
        torch.backends.mkldnn.is_available()
        and torch.backends.mkldnn.enabled
        and hasattr(torch.ops.mkldnn, "_reorder_linear_weight")
        and hasattr(torch.ops.mkldnn, "_linear_pointwise")
    )


def _copy_other_tensors(network: torch.nn.Module) -> None:
    """Give the tensors left as they were memory of their own.

    transformers maps the weights file into memory and makes the tensors
    views of it: any one of them left there would keep the whole file
    resident, beside the packed copies of the weights.
    """
    copies: dict[int, torch.Tensor] = {}
    with torch.no_grad():
        for parameter in network.parameters():  # each once, shared or not
            if not parameter.is_mkldnn:
                parameter.data = parameter.data.clone()
        for module in network.modules():
            for name, buffer in module.named_buffers(recurse=False):
                if id(buffer) not in copies:  # a buffer shared by two modules stays shared
                    copies[id(buffer)] = buffer.clone()
                module._buffers[name] = copies[id(buffer)]


def _checked(linear: torch.nn.Linear) -> PackedLinear:
    packed = PackedLinear(linear)
    probe = torch.randn(2, linear.in_features, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        _compare(packed(probe), linear(probe), "a packed layer", TOLERANCE)
    return packed


def _compare(got: torch.Tensor, expected: torch.Tensor, what: str, tolerance: float) -> None:
    scale = float(expected.abs().max()) or 1.0
    difference = float((got - expected).abs().max()) / scale
    if not difference <= tolerance:  # NaN too
        raise ValueError(f"{what} differs from the plain one by {difference:.1e}")
