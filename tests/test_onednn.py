"""fp32 linear layers packed for oneDNN: the same numbers, or the network as it was."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from nsfw_moderation.backends import onednn  # noqa: E402
from nsfw_moderation.backends.transformers import TransformersBackend  # noqa: E402
from tests.test_backends import IMAGES  # noqa: E402

needs_onednn = pytest.mark.skipif(not onednn.available(), reason="no oneDNN in this torch build")


def layers(network, kind):
    return [module for module in network.modules() if type(module) is kind]


def plain_network(model_dir):
    from transformers import AutoModelForImageClassification

    return AutoModelForImageClassification.from_pretrained(model_dir).eval()


@needs_onednn
def test_fp32_on_the_cpu_runs_every_linear_layer_packed(tiny_vit):
    plain = plain_network(tiny_vit)
    backend = TransformersBackend(str(tiny_vit), device="cpu", precision="fp32")
    assert len(layers(backend.model, onednn.PackedLinear)) == len(layers(plain, torch.nn.Linear))
    assert not layers(backend.model, torch.nn.Linear)
    # `nsfw_model info` counts the parameters: packing changes their layout, not their number.
    assert sum(p.numel() for p in backend.model.parameters()) == plain.num_parameters()
    linear = len(layers(plain, torch.nn.Linear))
    assert backend.details() == {"linear": f"{linear} layers packed for oneDNN"}


@needs_onednn
def test_packed_layers_give_the_plain_networks_logits(tiny_vit):
    plain = plain_network(tiny_vit)
    backend = TransformersBackend(str(tiny_vit), device="cpu", precision="fp32")
    pixels = backend.preprocess(IMAGES)
    with torch.inference_mode():
        expected = plain(pixel_values=pixels).logits
        got = backend.model(pixel_values=pixels).logits
    assert torch.allclose(got, expected, rtol=1e-4, atol=1e-5)
    assert not torch.equal(expected[0], expected[1])  # the inputs do tell apart


@needs_onednn
@pytest.mark.parametrize("bias", [True, False])
def test_a_packed_layer_takes_any_leading_dimensions(bias):
    linear = torch.nn.Linear(24, 40, bias=bias).eval()
    packed = onednn.PackedLinear(linear)
    inputs = torch.randn(3, 5, 24)
    with torch.inference_mode():
        assert torch.allclose(packed(inputs), linear(inputs), rtol=1e-4, atol=1e-5)


@needs_onednn
def test_layers_that_give_other_numbers_leave_the_network_as_it_was(tiny_vit, monkeypatch, caplog):
    packed_forward = onednn.PackedLinear.forward
    monkeypatch.setattr(
        onednn.PackedLinear, "forward", lambda self, x: packed_forward(self, x) * 1.001
    )
    plain = plain_network(tiny_vit)
    with caplog.at_level(logging.WARNING, logger=onednn.__name__):
        backend = TransformersBackend(str(tiny_vit), device="cpu", precision="fp32")
    assert "oneDNN failed (a packed layer differs" in caplog.text
    assert not layers(backend.model, onednn.PackedLinear)
    assert backend.details() == {
        "linear": "as torch runs them, not packed for oneDNN (see the log)"
    }
    assert len(layers(backend.model, torch.nn.Linear)) == len(layers(plain, torch.nn.Linear))


def test_without_onednn_the_network_is_left_as_it_was(tiny_vit, monkeypatch):
    monkeypatch.setattr(onednn, "available", lambda: False)
    backend = TransformersBackend(str(tiny_vit), device="cpu", precision="fp32")
    assert not layers(backend.model, onednn.PackedLinear)
    assert layers(backend.model, torch.nn.Linear)


@pytest.mark.parametrize("precision", ["bf16", "int8"])
def test_other_precisions_are_not_packed(tiny_vit, precision):
    backend = TransformersBackend(str(tiny_vit), device="cpu", precision=precision)
    assert not layers(backend.model, onednn.PackedLinear)
    assert backend.details() == {}


def test_a_traceable_network_is_left_for_the_converter(tiny_vit):
    backend = TransformersBackend(str(tiny_vit), device="cpu", precision="fp32", traceable=True)
    assert not layers(backend.model, onednn.PackedLinear)
    assert layers(backend.model, torch.nn.Linear)


@needs_onednn
@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="reads Linux's /proc")
def test_the_weights_file_is_let_go_once_packed(tiny_model_dir, tmp_path):
    import gc
    import shutil

    model_dir = tmp_path / "vit"
    shutil.copytree(tiny_model_dir, model_dir)
    weights = str((model_dir / "model.safetensors").resolve())
    backend = TransformersBackend(str(model_dir), device="cpu", precision="fp32")
    gc.collect()
    # Mapped, the whole file would stay resident beside the packed weights.
    assert weights not in Path("/proc/self/maps").read_text()
    assert backend.classify(IMAGES)


class ReadsItsWeight(torch.nn.Module):
    """As some timm models do (a fused qkv): ``F.linear`` with a layer's weight."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(8, 4)

    def forward(self, x):
        return torch.nn.functional.linear(x, self.fc.weight, self.fc.bias)


@needs_onednn
def test_a_network_that_reads_a_layers_weight_itself_is_left_as_it_was(caplog):
    network = ReadsItsWeight().eval()
    inputs = torch.randn(3, 8)
    with caplog.at_level(logging.WARNING, logger=onednn.__name__):
        assert onednn.pack_linear_layers(network, lambda: network(inputs)) is network
    assert "oneDNN failed" in caplog.text
    assert type(network.fc) is torch.nn.Linear
    with torch.inference_mode():
        assert network(inputs).shape == (3, 4)


@needs_onednn
def test_a_layer_shared_by_two_modules_is_packed_once():
    shared = torch.nn.Linear(8, 8)
    network = torch.nn.Sequential(shared, torch.nn.ReLU(), shared).eval()
    inputs = torch.randn(3, 8)
    onednn.pack_linear_layers(network, lambda: network(inputs))
    assert isinstance(network[0], onednn.PackedLinear)
    assert network[0] is network[2]


def test_torchs_own_switch_turns_packing_off(tiny_vit, monkeypatch):
    monkeypatch.setattr(torch.backends.mkldnn, "enabled", False)
    backend = TransformersBackend(str(tiny_vit), device="cpu", precision="fp32")
    assert not layers(backend.model, onednn.PackedLinear)
