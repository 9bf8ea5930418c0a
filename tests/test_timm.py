"""The timm backend on random-weight models shaped like Marqo's and Freepik's.

The models are built here (``benchmarks/timm_models.py``, shrunk to two
blocks), saved as their Hub repositories are, and loaded through the
backend's real code path. Their heads are spread so that scores vary with the
image. Run by ``make pytest-timm`` in ``.venv-timm``; elsewhere skipped.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from django.core.files.base import ContentFile

from tests.conftest import calibration_images, moderation, require
from tests.test_backends import IMAGES
from tests.test_preprocess import photo

timm = require("timm", reason="the timm backend needs timm (make pytest-timm)")
torch = pytest.importorskip("torch")

import nsfw_moderation.backends.timm as timm_backend  # noqa: E402
from benchmarks import timm_models  # noqa: E402
from nsfw_moderation.backends import ModelUnavailable, default_threads, get_backend  # noqa: E402
from nsfw_moderation.backends.timm import HUB_FILES, TimmBackend  # noqa: E402

LABELS = {"marqo": ["NSFW", "SFW"], "freepik": ["neutral", "low", "medium", "high"]}
UNSAFE = {"marqo": ["NSFW"], "freepik": ["low", "medium", "high"]}

#: Largest difference from fp32 in any probability, per precision, on these
#: two-block random models with spread heads (measured here: bf16 up to 0.01,
#: int8 up to 0.06; the openvino tests allow the same on the spread tiny ViT).
TOLERANCE = {"bf16": 0.03, "int8": 0.1}
#: Weights drawn wider than timm's, so that features vary with the image
#: (``benchmarks.timm_models.build``).
INIT_STD = 0.1

INPUTS = [
    *IMAGES,
    photo((1024, 768), 41),
    photo((60, 900), 42),
    photo((384, 384), 43),
    photo((449, 300), 44),
    photo((333, 777), 45).convert("L"),
    photo((500, 400), 46).convert("RGBA"),
]


@pytest.fixture(scope="session")
def model_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    spread_on = calibration_images(16, first_seed=0)
    return {
        shape: timm_models.build(
            tmp_path_factory.mktemp(shape), shape, tiny=True, spread_on=spread_on, init_std=INIT_STD
        )
        for shape in timm_models.SHAPES
    }


@pytest.fixture(scope="session")
def fp32_scores(model_dirs: dict[str, Path]) -> dict[str, list[dict[str, float]]]:
    return {
        shape: TimmBackend(str(folder), device="cpu", precision="fp32").classify(INPUTS)
        for shape, folder in model_dirs.items()
    }


def card_model(folder: Path) -> tuple[Any, Any]:
    """The model and transform as the model cards build them."""
    from timm.data import create_transform, resolve_data_config

    model = timm.create_model(f"local-dir:{folder}", pretrained=True).eval()
    return model, create_transform(**resolve_data_config(model.pretrained_cfg, model=model))


def assert_close(reference, results, tolerance) -> None:
    assert len(results) == len(reference)
    for expected, got in zip(reference, results, strict=True):
        assert set(got) == set(expected)
        assert sum(got.values()) == pytest.approx(1.0, abs=1e-5)
        for label, probability in expected.items():
            assert got[label] == pytest.approx(probability, abs=tolerance)


# -- The contract ---------------------------------------------------------------------


@pytest.mark.parametrize("shape", ["marqo", "freepik"])
def test_labels_and_probabilities(model_dirs, shape):
    with moderation(BACKEND="timm", MODEL=str(model_dirs[shape])):
        backend = get_backend()
    assert isinstance(backend, TimmBackend)
    assert backend.name == str(model_dirs[shape])
    assert backend.labels == LABELS[shape]
    assert (backend.device.type, backend.precision) == ("cpu", "fp32")
    assert backend.classify([]) == []
    results = backend.classify(INPUTS)
    assert len(results) == len(INPUTS)
    for scores in results:
        assert list(scores) == LABELS[shape]
        assert sum(scores.values()) == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("shape", ["marqo", "freepik"])
def test_matches_the_model_cards_usage(model_dirs, fp32_scores, shape):
    """``create_model`` + ``create_transform(**resolve_data_config(...))``, one image at a time."""
    model, transform = card_model(model_dirs[shape])
    labels = model.pretrained_cfg["label_names"]
    for image, ours in zip(INPUTS, fp32_scores[shape], strict=True):
        with torch.inference_mode():
            card = model(transform(image.convert("RGB")).unsqueeze(0)).softmax(dim=-1)[0]
        assert ours == pytest.approx(dict(zip(labels, card.tolist(), strict=True)), abs=1e-5)


@pytest.mark.parametrize("shape", ["marqo", "freepik"])
def test_preprocessing_equals_timms_transform_to_the_bit(model_dirs, shape):
    backend = TimmBackend(str(model_dirs[shape]), device="cpu")
    _, transform = card_model(model_dirs[shape])
    # Marqo's config crops the centre, Freepik's (EVA02's) squashes.
    assert backend.preprocessor is not None
    assert backend.preprocessor.squash == (shape == "freepik")
    ours = backend.preprocess(INPUTS)
    theirs = torch.stack([transform(image.convert("RGB")) for image in INPUTS])
    assert ours.dtype == theirs.dtype == torch.float32
    assert torch.equal(ours, theirs)


def test_a_transform_it_does_not_cover_is_timms_own(model_dirs, tmp_path):
    folder = shutil.copytree(model_dirs["marqo"], tmp_path / "border")
    config = json.loads((folder / "config.json").read_text())
    config["pretrained_cfg"]["crop_mode"] = "border"
    (folder / "config.json").write_text(json.dumps(config))
    backend = TimmBackend(str(folder), device="cpu")
    assert backend.preprocessor is None
    _, transform = card_model(folder)
    expected = torch.stack([transform(image.convert("RGB")) for image in INPUTS[:3]])
    assert torch.equal(backend.preprocess(INPUTS[:3]), expected)


@pytest.mark.parametrize("shape", ["marqo", "freepik"])
def test_a_batch_scores_each_image_as_alone(model_dirs, fp32_scores, shape):
    backend = TimmBackend(str(model_dirs[shape]), device="cpu")
    alone = [backend.classify([image])[0] for image in INPUTS]
    assert_close(alone, fp32_scores[shape], 1e-5)


@pytest.mark.parametrize("shape", ["marqo", "freepik"])
def test_the_scores_vary_with_the_image(model_dirs, shape):
    """The spread head makes the other comparisons mean something."""
    backend = TimmBackend(str(model_dirs[shape]), device="cpu")
    unsafe = [sum(s[label] for label in UNSAFE[shape]) for s in backend.classify(INPUTS)]
    assert min(unsafe) < 0.3
    assert max(unsafe) > 0.7


# -- Precisions -------------------------------------------------------------------------


@pytest.mark.parametrize("shape", ["marqo", "freepik"])
@pytest.mark.parametrize("precision", ["bf16", "int8"])
def test_cpu_precisions_stay_close_to_fp32(model_dirs, fp32_scores, shape, precision):
    if precision == "bf16" and not torch.backends.mkldnn.is_available():
        pytest.skip("no oneDNN bf16 support in this torch build")
    backend = TimmBackend(str(model_dirs[shape]), device="cpu", precision=precision)
    assert backend.precision == precision
    assert_close(fp32_scores[shape], backend.classify(INPUTS), TOLERANCE[precision])


def test_bf16_stores_matmul_weights_in_bf16_and_uses_autocast(model_dirs):
    backend = TimmBackend(str(model_dirs["freepik"]), device="cpu", precision="bf16")
    for module in backend.model.modules():
        if isinstance(module, (torch.nn.Linear, torch.nn.Conv2d)):
            assert module.weight.dtype == torch.bfloat16
        elif isinstance(module, torch.nn.LayerNorm):
            assert module.weight.dtype == torch.float32
    with backend._autocast():
        assert torch.is_autocast_enabled("cpu")


def test_int8_quantises_the_linear_layers(model_dirs):
    backend = TimmBackend(str(model_dirs["freepik"]), device="cpu", precision="int8")
    assert [m for m in backend.model.modules() if "quantized" in type(m).__module__]
    assert not [m for m in backend.model.modules() if type(m) is torch.nn.Linear]


def test_fp16_on_the_cpu_is_refused_with_advice(model_dirs):
    with pytest.raises(ModelUnavailable, match="needs a GPU; use 'bf16'"):
        TimmBackend(str(model_dirs["marqo"]), device="cpu", precision="fp16")


def test_int8_on_a_gpu_is_refused(model_dirs):
    with pytest.raises(ModelUnavailable, match="CPU only"):
        TimmBackend(str(model_dirs["marqo"]), device="cuda", precision="int8")


def test_threads_are_the_workers_share_of_the_cores(model_dirs):
    backend = TimmBackend(str(model_dirs["marqo"]), device="cpu")
    assert backend.threads == default_threads() == torch.get_num_threads()
    with moderation(TORCH_THREADS=1):
        assert TimmBackend(str(model_dirs["marqo"]), device="cpu").threads == 1
        assert torch.get_num_threads() == 1


# -- Where the model comes from -------------------------------------------------------


def test_local_dir_prefix_loads_the_same_model(model_dirs, fp32_scores):
    backend = TimmBackend(f"local-dir:{model_dirs['marqo']}", device="cpu")
    assert_close(fp32_scores["marqo"], backend.classify(INPUTS), 1e-6)


def test_hub_models_come_through_the_cache_without_pickles(model_dirs, monkeypatch):
    import huggingface_hub

    calls: list[tuple[Any, ...]] = []

    def snapshot_download(repo_id, *, revision=None, allow_patterns=None, **kwargs):
        calls.append((repo_id, revision, allow_patterns))
        return str(model_dirs["marqo"])

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    monkeypatch.setattr(timm_backend, "cache_only", lambda *args: False)  # the Hub answers
    with moderation(MODEL="hf-hub:Marqo/nsfw-image-detection-384", MODEL_REVISION="abc123"):
        backend = TimmBackend(device="cpu")
    assert calls == [("Marqo/nsfw-image-detection-384", "abc123", HUB_FILES)]
    assert not any(pattern.endswith((".bin", ".pth", ".pt")) for pattern in HUB_FILES)
    assert backend.name == "hf-hub:Marqo/nsfw-image-detection-384@abc123"
    assert backend.labels == ["NSFW", "SFW"]


def test_a_revision_inside_model_is_refused():
    with pytest.raises(ModelUnavailable, match="MODEL_REVISION"):
        TimmBackend("hf-hub:Marqo/nsfw-image-detection-384@main", device="cpu")


def test_a_hub_id_without_its_prefix_says_how_to_write_it():
    with pytest.raises(ModelUnavailable, match="hf-hub:org/name"):
        TimmBackend("Marqo/nsfw-image-detection-384", device="cpu")


def test_pickled_weights_are_refused(model_dirs, tmp_path):
    from safetensors.torch import load_file

    folder = tmp_path / "pickled"
    folder.mkdir()
    shutil.copy(model_dirs["marqo"] / "config.json", folder)
    torch.save(load_file(model_dirs["marqo"] / "model.safetensors"), folder / "pytorch_model.bin")
    with pytest.raises(ModelUnavailable, match="Only safetensors weights are loaded"):
        TimmBackend(str(folder), device="cpu")


def test_beside_a_pickle_the_safetensors_weights_are_loaded(model_dirs, fp32_scores, tmp_path):
    from safetensors.torch import load_file

    folder = shutil.copytree(model_dirs["marqo"], tmp_path / "both")
    other = load_file(folder / "model.safetensors")
    other["head.bias"] = other["head.bias"] + torch.tensor([5.0, -5.0])
    torch.save(other, folder / "pytorch_model.bin")
    backend = TimmBackend(str(folder), device="cpu")
    assert_close(fp32_scores["marqo"], backend.classify(INPUTS), 1e-6)


def test_a_model_without_label_names_is_refused(model_dirs, tmp_path):
    folder = shutil.copytree(model_dirs["marqo"], tmp_path / "unnamed")
    config = json.loads((folder / "config.json").read_text())
    del config["label_names"]
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelUnavailable, match="does not name its 2 classes"):
        TimmBackend(str(folder), device="cpu")


def test_label_names_by_index_are_read_in_order(model_dirs, tmp_path):
    folder = shutil.copytree(model_dirs["freepik"], tmp_path / "indexed")
    config = json.loads((folder / "config.json").read_text())
    config["label_names"] = {
        str(i): name for i, name in reversed(list(enumerate(LABELS["freepik"])))
    }
    (folder / "config.json").write_text(json.dumps(config))
    assert TimmBackend(str(folder), device="cpu").labels == LABELS["freepik"]


def test_an_unknown_architecture_is_a_clear_error(model_dirs, tmp_path):
    folder = shutil.copytree(model_dirs["marqo"], tmp_path / "unknown")
    config = json.loads((folder / "config.json").read_text())
    config["architecture"] = "no_such_net"
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelUnavailable, match="timm cannot build the model"):
        TimmBackend(str(folder), device="cpu")


# -- The worker ---------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_workers_store_verdicts_summing_the_unsafe_levels(model_dirs):
    from nsfw_moderation.models import ModeratedImage, Status, Verdict
    from tests.testapp.models import Photo

    folder = model_dirs["freepik"]
    unsafe = ["low", "medium", "high"]
    with moderation(BACKEND="timm", MODEL=str(folder), UNSAFE_LABELS=unsafe, QUEUE="sync"):
        photos = [Photo.objects.create(image=jpeg(seed)) for seed in range(6)]
    rows = [ModeratedImage.objects.get(object_id=str(photo.pk)) for photo in photos]
    for row in rows:
        assert row.status == Status.DONE, row.error
        assert row.model_name == str(folder)
        assert set(row.scores) == set(LABELS["freepik"])
        assert row.score == pytest.approx(sum(row.scores[label] for label in unsafe), abs=1e-6)
        assert row.score == pytest.approx(1 - row.scores["neutral"], abs=1e-5)
        expected = Verdict.FLAGGED if row.score >= 0.5 else Verdict.ALLOWED
        assert row.verdict == expected
    # Different pictures, different scores: the stored ones are the model's.
    assert len({round(row.score, 6) for row in rows}) == len(rows)


def jpeg(seed: int) -> ContentFile:
    import io

    buffer = io.BytesIO()
    photo((640 + 16 * seed, 480), 700 + seed).save(buffer, "JPEG", quality=90)
    return ContentFile(buffer.getvalue(), name=f"photo{seed}.jpg")


@pytest.mark.parametrize("shape", ["marqo", "freepik"])
def test_fp32_on_the_cpu_packs_the_linear_layers(model_dirs, shape):
    from nsfw_moderation.backends import onednn

    if not onednn.available():
        pytest.skip("no oneDNN in this torch build")
    backend = TimmBackend(str(model_dirs[shape]), device="cpu", precision="fp32")
    assert backend.details()["linear"].endswith("layers packed for oneDNN")


def test_a_model_that_reads_its_qkv_weight_itself_runs_unpacked(tmp_path):
    """timm's EVA with a fused qkv calls ``F.linear`` with ``self.qkv.weight``."""
    from timm.models import save_for_hf

    model_args = {"depth": 1, "embed_dim": 64, "num_heads": 2}
    network = timm.create_model(
        "eva02_tiny_patch14_224.mim_in22k", pretrained=False, num_classes=2, **model_args
    ).eval()
    assert network.blocks[0].attn.qkv is not None  # the fused qkv
    save_for_hf(
        network,
        str(tmp_path),
        model_config={"label_names": ["normal", "nsfw"]},
        model_args=model_args,
        safe_serialization=True,
    )
    backend = TimmBackend(str(tmp_path), device="cpu", precision="fp32")
    assert backend.details() == {
        "linear": "as torch runs them, not packed for oneDNN (see the log)"
    }
    model, transform = card_model(tmp_path)
    for image, ours in zip(INPUTS, backend.classify(INPUTS), strict=True):
        with torch.inference_mode():
            card = model(transform(image.convert("RGB")).unsqueeze(0)).softmax(dim=-1)[0]
        labels = ["normal", "nsfw"]
        assert ours == pytest.approx(dict(zip(labels, card.tolist(), strict=True)), abs=1e-5)
