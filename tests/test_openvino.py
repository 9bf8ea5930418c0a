"""The openvino backend: a tiny ViT converted in the tests, loaded the way workers load it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings

from nsfw_moderation import model_cache, optimize
from nsfw_moderation.backends import ModelUnavailable, get_backend, reset_backend
from tests.conftest import TINY_MAX_DIFFERENCE, calibration_images, moderation
from tests.test_backends import IMAGES
from tests.test_preprocess import photo
from tests.workers import ROOT

pytest.importorskip("openvino", reason="the openvino backend needs openvino")

#: Largest difference from the original model at fp32, per precision, on the
#: tiny ViT (see TINY_LIMITS in conftest).
TOLERANCE = {"fp32": 1e-4, "bf16": 0.05, "int8": TINY_MAX_DIFFERENCE}

INPUTS = [*IMAGES, photo((1024, 768), 31), photo((60, 900), 32)]


@pytest.fixture(scope="module")
def fp32_reference(spread_model_dir: Path) -> list[dict[str, float]]:
    from nsfw_moderation.backends.transformers import TransformersBackend

    return TransformersBackend(str(spread_model_dir), device="cpu").classify(INPUTS)


@pytest.mark.parametrize("precision", ["fp32", "bf16", "int8"])
def test_backend_contract_at_each_precision(openvino, fp32_reference, precision):
    from nsfw_moderation.backends.openvino import OpenVINOBackend

    with moderation(PRECISION=precision):
        backend = get_backend()
    assert isinstance(backend, OpenVINOBackend)
    assert backend.name == str(openvino)
    assert backend.labels == ["normal", "nsfw"]
    assert backend.precision == precision
    assert backend.classify([]) == []
    results = backend.classify(INPUTS)
    assert len(results) == len(INPUTS)
    for scores, expected in zip(results, fp32_reference, strict=True):
        assert set(scores) == {"normal", "nsfw"}
        assert sum(scores.values()) == pytest.approx(1.0, abs=1e-6)
        assert scores["nsfw"] == pytest.approx(expected["nsfw"], abs=TOLERANCE[precision])


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_a_batch_scores_each_image_as_alone(openvino, precision):
    with moderation(PRECISION=precision):
        backend = get_backend()
    batched = backend.classify(INPUTS)
    for image, scores in zip(INPUTS, batched, strict=True):
        assert backend.classify([image])[0] == pytest.approx(scores, abs=1e-4)


def test_the_scores_vary_with_the_image(openvino):
    """The spread head makes the agreement figures mean something."""
    scores = [s["nsfw"] for s in get_backend().classify(calibration_images())]
    assert min(scores) < 0.25
    assert max(scores) > 0.75


def test_rows_name_the_model_as_the_transformers_backend_does(openvino):
    from nsfw_moderation.management.commands.nsfw_scan import configured_model_name

    with moderation(MODEL_REVISION="v1"):
        backend = get_backend()
        assert backend.name == f"{openvino}@v1" == configured_model_name()


def test_a_batch_is_split_over_the_streams(openvino):
    backend = get_backend()
    streams = int(backend.compiled.get_property("NUM_STREAMS"))
    assert len(backend._requests) >= streams >= 1
    assert "THROUGHPUT" in str(backend.compiled.get_property("PERFORMANCE_HINT"))


def test_threads_follow_the_workers_share_of_the_cores(openvino):
    with moderation(TORCH_THREADS=1):
        backend = get_backend()
    assert int(backend.compiled.get_property("INFERENCE_NUM_THREADS")) == 1


def test_precision_is_what_the_guard_checked(openvino):
    with moderation(PRECISION="bf16"):
        backend = get_backend()
    assert backend.entry.meta["inference_precision"] == "bf16"
    assert backend.entry.meta["precision"] == "bf16"


def test_workers_load_the_converted_model_without_torch(openvino, tmp_path):
    script = """
import sys

class NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "transformers", "nncf"):
            raise ImportError(f"{name} is not installed on this worker")

sys.meta_path.insert(0, NoTorch())
import django
django.setup()
from nsfw_moderation.backends import get_backend
from tests.test_backends import IMAGES
scores = get_backend().classify(IMAGES)
assert len(scores) == len(IMAGES), scores
for module in ("torch", "transformers", "nncf"):
    assert module not in sys.modules, module
print("ok")
"""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "NSFW_TEST_BACKEND": "openvino",
        "NSFW_TEST_MODEL_DIR": str(openvino),
        "NSFW_TEST_OPENVINO_CACHE": settings.NSFW_MODERATION["OPENVINO_CACHE"],
        "NSFW_TEST_DB_NAME": str(tmp_path / "db.sqlite3"),
    }
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "ok"


def test_workers_find_the_model_compiled_for_this_cpu(openvino):
    """optimize compiles the model once as workers will, into the runtime's cache."""
    from nsfw_moderation.backends.openvino import compiled_cache

    with moderation(PRECISION="int8"):
        entry = get_backend().entry
        blobs = entry.folder / "compiled"
        assert compiled_cache(entry) == blobs
        before = sorted(blobs.iterdir())
        assert before
        reset_backend()
        get_backend()
    # The worker's compilation was a cache hit: no new blob.
    assert sorted(blobs.iterdir()) == before


def test_a_read_only_cache_is_only_read(openvino, monkeypatch):
    from nsfw_moderation.backends import openvino as backend_module

    monkeypatch.setattr(backend_module.os, "access", lambda path, mode: False)
    backend = get_backend()
    assert backend_module.compiled_cache(backend.entry) is None
    assert backend.classify(IMAGES[:1])


def test_without_a_conversion_the_worker_says_what_to_run(openvino, tmp_path):
    with moderation(OPENVINO_CACHE=str(tmp_path)), pytest.raises(ModelUnavailable) as info:
        get_backend()
    assert "nsfw_model optimize" in str(info.value)
    assert str(tmp_path) in str(info.value)


def test_a_model_outside_the_limits_is_not_loaded(openvino):
    """The guard's scores are kept: stricter limits or thresholds apply to what runs."""
    limits = moderation(PRECISION="int8", MAX_SCORE_DIFFERENCE=0.001)
    with limits, pytest.raises(ModelUnavailable, match="outside the accuracy limits"):
        get_backend()


def test_without_openvino_the_backend_says_what_to_install(monkeypatch):
    import builtins

    from nsfw_moderation.backends.openvino import OpenVINOBackend

    real_import = builtins.__import__

    def no_openvino(name: str, *args: object, **kwargs: object) -> object:
        if name.split(".")[0] == "openvino":
            raise ImportError("No module named 'openvino'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_openvino)
    with pytest.raises(ModelUnavailable, match=r"nsfw-moderation\[openvino\]"):
        OpenVINOBackend("anything")


# The cache -------------------------------------------------------------------


def test_the_cache_is_keyed_by_model_revision_precision_and_runtime(openvino, monkeypatch):
    version = model_cache.runtime_version()
    key = model_cache.key_for(str(openvino), "int8", version)
    assert key is not None
    assert key.revision.startswith("local-")
    assert key.folder.name == f"int8-openvino-{version}"
    assert key.folder.parent.parent.name == model_cache.slug(str(openvino))
    assert model_cache.load(key) is not None
    # Another precision, another runtime release: other folders.
    assert model_cache.key_for(str(openvino), "bf16", version).folder != key.folder
    monkeypatch.setattr(model_cache, "runtime_version", lambda: "1999.1")
    with pytest.raises(ModelUnavailable, match=r"OpenVINO 1999\.1"):
        get_backend()


def test_a_changed_model_folder_is_a_new_revision(tmp_path, spread_model_dir):
    import shutil

    copy = Path(shutil.copytree(spread_model_dir, tmp_path / "model"))
    before = model_cache.local_fingerprint(copy)
    assert model_cache.local_fingerprint(copy) == before
    weights = copy / "model.safetensors"
    os.utime(weights, ns=(weights.stat().st_atime_ns, weights.stat().st_mtime_ns + 10**9))
    assert model_cache.local_fingerprint(copy) != before


def test_hub_models_are_keyed_by_the_commit_in_the_hugging_face_cache(tmp_path, monkeypatch):
    refs = tmp_path / "models--Falconsai--nsfw_image_detection" / "refs"
    refs.mkdir(parents=True)
    (refs / "main").write_text("0123abcd" * 5)
    (refs / "v2").write_text("4567cdef" * 5)
    model = "Falconsai/nsfw_image_detection"
    assert model_cache.hub_commit(model, "main", tmp_path) == "0123abcd" * 5
    assert model_cache.hub_commit(model, "v2", tmp_path) == "4567cdef" * 5
    assert model_cache.hub_commit("someone/else", "main", tmp_path) is None
    monkeypatch.setattr(model_cache, "_hub_cache", lambda: tmp_path)
    assert model_cache.key_for(model, "int8", "2026.4.1").revision == "0123abcd" * 5
    # MODEL_REVISION: a branch is looked up; a commit is the revision, cached or not.
    assert model_cache.key_for(model, "int8", "2026.4.1", "v2").revision == "4567cdef" * 5
    commit = "89ab" * 10
    assert model_cache.key_for("someone/else", "int8", "2026.4.1", commit).revision == commit


def test_a_worker_without_the_source_model_uses_the_latest_conversion(openvino, monkeypatch):
    revision = model_cache.source_revision(str(openvino))
    monkeypatch.setattr(model_cache, "source_revision", lambda model, pinned=None: None)
    assert model_cache.latest_revision(str(openvino)) == revision
    assert get_backend().classify(IMAGES[:1])


# What the cache holds is checked before it runs ---------------------------------------

HUB_MODEL = "someone/model"


def int8_entry(model: Path) -> model_cache.Entry:
    """The tiny ViT's int8 conversion in the session's cache (call inside ``openvino``)."""
    key = model_cache.key_for(str(model), "int8", model_cache.runtime_version() or "?")
    entry = model_cache.load(key) if key else None
    assert entry is not None
    return entry


def copy_entry(entry: model_cache.Entry, target: Path) -> Path:
    import shutil

    shutil.copytree(entry.folder, target, ignore=shutil.ignore_patterns("compiled"))
    return target


@pytest.fixture
def planted(openvino, tmp_path, monkeypatch) -> Iterator[Path]:
    """A converted model with a clean guard report, planted outside any model's folder.

    ``HUB_MODEL`` has no conversion of its own; the cache's folder for it is
    ``<cache>/someone--model/<revision>/``, so a revision ``../planted`` reaches the plant.
    """
    entry = int8_entry(openvino)
    cache = tmp_path / "cache"
    copy_entry(entry, cache / "planted" / entry.folder.name)
    (cache / model_cache.slug(HUB_MODEL)).mkdir()  # as any conversion of it leaves
    monkeypatch.setattr(model_cache, "_hub_cache", lambda: tmp_path / "hub")
    with moderation(MODEL=HUB_MODEL, OPENVINO_CACHE=str(cache), PRECISION="int8"):
        yield tmp_path


def plant_ref(root: Path, revision: str) -> None:
    refs = root / "hub" / f"models--{HUB_MODEL.replace('/', '--')}" / "refs"
    refs.mkdir(parents=True)
    (refs / "main").write_text(revision)


@pytest.mark.parametrize("revision", ["../planted", "../planted/", "./../planted"])
def test_a_revision_in_refs_that_is_not_a_commit_is_refused(planted, revision):
    plant_ref(planted, revision)
    with pytest.raises(ModelUnavailable, match=r"not a commit"):
        get_backend()
    with pytest.raises(model_cache.CacheError, match=r"refs/main"):
        model_cache.key_for(HUB_MODEL, "int8", "2026.4.1")


@pytest.mark.django_db
def test_the_check_and_info_say_why_a_revision_is_refused(planted):
    from io import StringIO

    from django.core.checks import run_checks
    from django.core.management import CommandError, call_command

    plant_ref(planted, "../planted")
    (message,) = [m for m in run_checks() if m.id == "nsfw_moderation.W007"]
    assert "is not a commit hash" in message.msg
    out = StringIO()
    with pytest.raises(CommandError, match=r"'\.\./planted' read from .* is not a commit hash"):
        call_command("nsfw_model", "info", stdout=out)
    assert "converted:   refused: The revision '../planted'" in out.getvalue()


def test_a_latest_revision_that_is_not_a_commit_is_refused(planted):
    # A worker without the source model reads the revision from the cache's `latest`.
    latest = planted / "cache" / model_cache.slug(HUB_MODEL) / "latest"
    latest.write_text("../planted\n")
    with pytest.raises(ModelUnavailable, match=r"not a commit"):
        get_backend()


def test_a_key_holds_only_a_commit_or_a_local_fingerprint():
    commit = "0123abcd" * 5
    assert model_cache.Key("m", commit, "int8", "1").revision == commit
    assert model_cache.Key("m", "local-0123456789abcdef", "int8", "1")
    for revision in ("../x", "..", "", commit.upper(), commit + "\n", "local-../../x", "a" * 41):
        with pytest.raises(model_cache.CacheError):
            model_cache.Key("m", revision, "int8", "1")


@pytest.mark.django_db(transaction=True)
def test_a_refused_revision_leaves_uploads_waiting_not_allowed(planted):
    from django.core.files.base import ContentFile

    from nsfw_moderation.models import ModeratedImage, Status, Verdict
    from tests.images import image_bytes
    from tests.testapp.models import Photo

    plant_ref(planted, "../planted")
    with moderation(BACKEND="openvino", QUEUE="sync", MAX_ATTEMPTS=1):
        Photo.objects.create(image=ContentFile(image_bytes(), name="a.png"))
    row = ModeratedImage.objects.get()
    assert (row.status, row.verdict) == (Status.QUEUED, Verdict.PENDING)
    assert row.retry_at is not None


@pytest.fixture
def copied_cache(openvino, openvino_cache, tmp_path) -> Iterator[Path]:
    """A copy of the converted int8 model in a cache of its own, for a test to spoil."""
    entry = int8_entry(openvino)
    cache = tmp_path / "cache"
    folder = copy_entry(entry, cache / entry.folder.relative_to(openvino_cache))
    with moderation(OPENVINO_CACHE=str(cache), PRECISION="int8"):
        yield folder


def test_the_conversion_records_the_sha256_of_its_files(copied_cache):
    import hashlib

    files = get_backend().entry.meta["files"]
    assert set(files) == {"model.xml", "model.bin"}
    for name, digest in files.items():
        assert digest == hashlib.sha256((copied_cache / name).read_bytes()).hexdigest()


def flip_a_weight(folder: Path) -> None:
    weights = folder / "model.bin"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0x40
    weights.write_bytes(bytes(data))


def rename_the_network(folder: Path) -> None:
    xml = folder / "model.xml"
    xml.write_text(xml.read_text().replace('<net name="', '<net name="swapped-', 1))


@pytest.mark.parametrize("spoil", [flip_a_weight, rename_the_network], ids=["bin", "xml"])
def test_a_changed_model_file_is_refused(copied_cache, spoil):
    assert get_backend().classify(IMAGES[:1])  # loads as it is
    reset_backend()
    spoil(copied_cache)
    with pytest.raises(ModelUnavailable, match=r"SHA-256") as info:
        get_backend()
    assert "nsfw_model optimize" in str(info.value)


def test_a_swapped_model_file_is_refused(copied_cache, openvino_cache):
    import shutil

    with moderation(PRECISION="fp32", OPENVINO_CACHE=str(openvino_cache)):
        fp32 = get_backend().entry.folder
    reset_backend()
    for name in ("model.xml", "model.bin"):
        shutil.copyfile(fp32 / name, copied_cache / name)
    with pytest.raises(ModelUnavailable, match=r"SHA-256"):
        get_backend()


def test_a_conversion_without_recorded_hashes_is_refused(copied_cache):
    import json

    meta = json.loads((copied_cache / "entry.json").read_text())
    meta.pop("files", None)
    (copied_cache / "entry.json").write_text(json.dumps(meta))
    with pytest.raises(ModelUnavailable, match=r"records no SHA-256"):
        get_backend()


@pytest.mark.django_db
def test_the_check_warns_of_a_conversion_without_recorded_hashes(copied_cache):
    import json

    from django.core.checks import run_checks

    def warnings() -> list[str]:
        return [m.msg for m in run_checks() if m.id == "nsfw_moderation.W007"]

    assert warnings() == []
    meta = json.loads((copied_cache / "entry.json").read_text())
    del meta["files"]
    (copied_cache / "entry.json").write_text(json.dumps(meta))
    (message,) = warnings()
    assert "records no SHA-256 of its files" in message


# Conversion and the accuracy guard ------------------------------------------------


def convert(precision: str, images: list | None = None) -> optimize.Outcome:
    converter = optimize.Converter()
    pixels = converter.pixels(iter(images or calibration_images()), 100)
    return converter.convert(precision, pixels, converter.reference(pixels), source="tests")


def broken_quantisation(monkeypatch: pytest.MonkeyPatch) -> None:
    """int8 calibrated on black images, every layer quantised, SmoothQuant on.

    Activation ranges measured on black images are wrong for every real one.
    """
    import nncf
    import numpy as np

    def quantize(model, pixels):
        black = np.zeros_like(pixels)
        dataset = nncf.Dataset([black[i : i + 1] for i in range(len(black))])
        return nncf.quantize(model, dataset, model_type=nncf.ModelType.TRANSFORMER)

    monkeypatch.setattr(optimize, "quantize", quantize)


@pytest.fixture
def fresh_cache(openvino, tmp_path) -> Iterator[Path]:
    with moderation(OPENVINO_CACHE=str(tmp_path / "cache")):
        yield tmp_path / "cache"


def test_int8_weights_leave_room_for_cpus_without_vnni(fresh_cache):
    """Weights in 7 bits: a CPU without VNNI (AVX2 only) sums pairs of u8 × s8 products
    in 16 bits, which 8-bit weights overflow. Measured on such a CPU, with 8-bit
    weights: the tiny ViT's int8 scores were off by up to 0.94, 6 verdicts of 24 flipped.
    """
    converter = optimize.Converter()
    model = optimize.quantize(
        converter.base_model(), converter.pixels(iter(calibration_images()), 100)
    )
    weights = [
        op.get_data()
        for op in model.get_ordered_ops()
        if op.get_type_name() == "Constant" and op.get_element_type().get_type_name() == "i8"
    ]
    assert weights
    assert all(w.min() >= -64 and w.max() <= 64 for w in weights)


def test_the_guard_accepts_a_sound_quantisation(fresh_cache):
    outcome = convert("int8")
    assert outcome.problems == []
    assert outcome.entry is not None
    assert outcome.agreement.images == len(calibration_images())
    assert 0 < outcome.agreement.max_difference <= TINY_MAX_DIFFERENCE
    assert outcome.entry.meta["calibration"] == {"source": "tests", "images": 24}
    # Compiled for this CPU already, before any worker asked for it.
    assert any((outcome.entry.folder / "compiled").iterdir())
    with moderation(PRECISION="int8"):
        assert get_backend().entry.folder == outcome.entry.folder


def test_the_guard_refuses_a_broken_quantisation(fresh_cache, monkeypatch):
    sound = convert("int8")
    assert sound.entry is not None
    broken_quantisation(monkeypatch)
    outcome = convert("int8")
    assert outcome.entry is None
    assert outcome.agreement.max_difference > TINY_MAX_DIFFERENCE
    assert outcome.agreement.flips() > 1
    assert any(
        f"MAX_SCORE_DIFFERENCE {TINY_MAX_DIFFERENCE}" in problem for problem in outcome.problems
    )
    assert any("verdict(s) of 24 change" in problem for problem in outcome.problems)
    # The model that was active stays active; the refusal is on record.
    with moderation(PRECISION="int8"):
        assert get_backend().entry.meta["created"] == sound.entry.meta["created"]
    assert model_cache.refusal(outcome.key)["problems"] == outcome.problems
    assert not list(outcome.key.folder.parent.glob("*.staging-*"))


def test_a_refused_first_conversion_leaves_nothing_to_load(fresh_cache, monkeypatch):
    broken_quantisation(monkeypatch)
    assert convert("int8").entry is None
    with moderation(PRECISION="int8"), pytest.raises(ModelUnavailable) as info:
        get_backend()
    assert "The last conversion was refused" in str(info.value)


def test_the_default_limits_refuse_int8_of_the_tiny_vit(fresh_cache):
    """The defaults (no flip, |Δp| ≤ 0.02) are strict: this sensitive model fails them."""
    with moderation(MAX_SCORE_DIFFERENCE=0.02, MAX_VERDICT_FLIPS=0):
        outcome = convert("int8")
    assert outcome.entry is None
    assert "over MAX_SCORE_DIFFERENCE 0.02" in outcome.problems[0]


def test_conversion_needs_images(fresh_cache):
    converter = optimize.Converter()
    with pytest.raises(optimize.ConversionError, match="no images to calibrate"):
        converter.pixels(iter([]), 10)


def test_conversion_refuses_fp16(fresh_cache):
    converter = optimize.Converter()
    pixels = converter.pixels(iter(calibration_images(2)), 2)
    with pytest.raises(optimize.ConversionError, match="not fp16"):
        converter.convert("fp16", pixels, converter.reference(pixels), source="tests")


@pytest.mark.django_db(transaction=True)
def test_calibration_reads_the_sites_newest_classified_images(openvino, colour_backend):
    from django.core.files.base import ContentFile

    from nsfw_moderation.models import ModeratedImage
    from tests.images import image_bytes
    from tests.testapp.models import Photo

    with moderation(QUEUE="sync"):
        older = Photo.objects.create(image=ContentFile(image_bytes((1, 2, 3)), name="a.png"))
        copy = Photo.objects.create(image=ContentFile(image_bytes((1, 2, 3)), name="b.png"))
        gone = Photo.objects.create(image=ContentFile(image_bytes((9, 9, 9)), name="c.png"))
        newest = Photo.objects.create(image=ContentFile(image_bytes((200, 0, 0)), name="d.png"))
    assert set(ModeratedImage.objects.values_list("status", flat=True)) == {"done"}
    gone.image.storage.delete(gone.image.name)
    images = list(optimize.site_images(10))
    # Newest first; identical bytes once; a file that is gone is skipped.
    assert [image.getpixel((0, 0)) for image in images] == [(200, 0, 0), (1, 2, 3)]
    assert len(list(optimize.site_images(1))) == 1
    assert {older.pk, copy.pk, newest.pk} <= set(Photo.objects.values_list("pk", flat=True))


# System checks -------------------------------------------------------------------


@pytest.mark.django_db
def test_check_warns_when_workers_have_no_converted_model(openvino, tmp_path):
    from django.core.checks import run_checks

    def warnings() -> list[str]:
        return [m.id for m in run_checks() if m.id == "nsfw_moderation.W007"]

    assert warnings() == []
    with moderation(OPENVINO_CACHE=str(tmp_path)):
        (message,) = [m for m in run_checks() if m.id == "nsfw_moderation.W007"]
    assert "no converted model" in message.msg
    assert "nsfw_model optimize" in message.hint
    with moderation(PRECISION="int8", MAX_SCORE_DIFFERENCE=0.001):
        assert warnings() == ["nsfw_moderation.W007"]


@pytest.mark.django_db
def test_check_is_quiet_where_openvino_is_not_installed(openvino, tmp_path, monkeypatch):
    from django.core.checks import run_checks

    monkeypatch.setattr(model_cache, "runtime_version", lambda: None)
    with moderation(OPENVINO_CACHE=str(tmp_path)):
        assert not [m for m in run_checks() if m.id == "nsfw_moderation.W007"]
