"""Every PRECISION against fp32 on the same inputs, each with a stated tolerance.

The tiny random-weight ViT is more sensitive to rounding than a trained model
(its logits are not separated), so these tolerances are upper bounds; the
benchmark reports the differences measured on the full-size ViT-B/16.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from nsfw_moderation.backends import ModelUnavailable  # noqa: E402
from nsfw_moderation.backends.transformers import TransformersBackend  # noqa: E402
from tests.test_preprocess import IMAGES, photo  # noqa: E402

TOLERANCE = {"bf16": 0.02, "fp16": 0.01, "int8": 0.05}

INPUTS = [*IMAGES, photo((1024, 768), 21), photo((4000, 3000), 22)]

cuda = pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="needs a CUDA device")


def bf16_supported() -> bool:
    import torch

    return bool(getattr(torch.backends.mkldnn, "is_available", lambda: False)())


def assert_close(reference, results, tolerance) -> None:
    assert len(results) == len(reference)
    for expected, got in zip(reference, results, strict=True):
        assert sum(got.values()) == pytest.approx(1.0, abs=1e-4)
        for label, probability in expected.items():
            assert got[label] == pytest.approx(probability, abs=tolerance)


@pytest.fixture(scope="module")
def fp32_cpu(tiny_model_dir):
    backend = TransformersBackend(str(tiny_model_dir), device="cpu", precision="fp32")
    return backend.classify(INPUTS)


@pytest.mark.parametrize("precision", ["bf16", "int8"])
def test_cpu_precisions_stay_close_to_fp32(tiny_vit, fp32_cpu, precision):
    if precision == "bf16" and not bf16_supported():
        pytest.skip("no oneDNN bf16 support in this torch build")
    backend = TransformersBackend(str(tiny_vit), device="cpu", precision=precision)
    assert_close(fp32_cpu, backend.classify(INPUTS), TOLERANCE[precision])


def test_bf16_on_the_cpu_stores_matmul_weights_in_bf16_and_uses_autocast(tiny_vit):
    import torch

    backend = TransformersBackend(str(tiny_vit), device="cpu", precision="bf16")
    for module in backend.model.modules():
        if isinstance(module, (torch.nn.Linear, torch.nn.Conv2d)):
            assert module.weight.dtype == torch.bfloat16
        elif isinstance(module, torch.nn.LayerNorm):
            assert module.weight.dtype == torch.float32
    assert backend._input_dtype() == torch.float32
    with backend._autocast():
        assert torch.is_autocast_enabled("cpu")


def test_int8_quantises_the_linear_layers(tiny_vit):
    import torch

    backend = TransformersBackend(str(tiny_vit), device="cpu", precision="int8")
    quantised = [m for m in backend.model.modules() if "quantized" in type(m).__module__]
    plain = [m for m in backend.model.modules() if type(m) is torch.nn.Linear]
    assert quantised
    assert not plain


def test_batches_give_the_same_scores_as_single_images(tiny_vit):
    backend = TransformersBackend(str(tiny_vit), device="cpu", precision="fp32")
    batched = backend.classify(INPUTS)
    one_by_one = [backend.classify([image])[0] for image in INPUTS]
    assert_close(one_by_one, batched, 1e-5)


def test_int8_on_a_gpu_is_refused(tiny_vit):
    with pytest.raises(ModelUnavailable, match="CPU only"):
        TransformersBackend(str(tiny_vit), device="cuda", precision="int8")


@cuda
def test_auto_picks_the_gpu(tiny_vit):
    backend = TransformersBackend(str(tiny_vit), device="auto")
    assert backend.device.type == "cuda"
    assert next(backend.model.parameters()).device.type == "cuda"


@cuda
@pytest.mark.parametrize("precision", ["fp32", "fp16", "bf16"])
def test_gpu_precisions_stay_close_to_fp32(tiny_vit, fp32_cpu, precision):
    backend = TransformersBackend(str(tiny_vit), device="cuda", precision=precision)
    assert_close(fp32_cpu, backend.classify(INPUTS), TOLERANCE.get(precision, 1e-4))
