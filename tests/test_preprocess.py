"""Fast preprocessing gives the model what its own image processor gives it."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
from PIL import Image

np = pytest.importorskip("numpy")

from benchmarks.model import FALCONSAI_PROCESSOR  # noqa: E402
from nsfw_moderation.backends.transformers import TransformersBackend  # noqa: E402
from nsfw_moderation.preprocess import FastPreprocessor  # noqa: E402

#: Largest allowed difference in any probability, fast path against the processor.
PROBABILITY_TOLERANCE = 0.01

# (width, height): square, landscape, portrait, extreme aspect ratios, smaller
# than the model's input (upsampled), and large enough for the integer
# pre-reduction to kick in.
SIZES = [(224, 224), (640, 480), (480, 640), (50, 700), (1000, 90), (31, 17), (2400, 1800)]
# Plain resizes reproduce the processor to float rounding.
EXACT_SIZES = [size for size in SIZES if max(size) < 3 * 224]


def photo(size: tuple[int, int], seed: int) -> Image.Image:
    """Smooth colour gradients plus noise: textured like a photograph."""
    rng = np.random.default_rng(seed)
    width, height = size
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack(
        [
            255 * x / max(1, width - 1),
            255 * y / max(1, height - 1),
            127 + 127 * np.sin((x + y + seed * 40) / 37.0),
        ],
        axis=-1,
    )
    noisy = base + rng.normal(0, 25, base.shape)
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8), "RGB")


IMAGES = [photo(size, seed) for seed, size in enumerate(SIZES)]


def processor_pixels(processor, images) -> np.ndarray:
    return processor(images=list(images), return_tensors="pt")["pixel_values"].numpy()


@pytest.fixture(scope="module")
def imagenet_model_dir(tiny_model_dir: Path, tmp_path_factory) -> Path:
    """The tiny ViT with a processor whose settings differ from every default."""
    from transformers import ViTImageProcessor

    directory = tmp_path_factory.mktemp("imagenet-vit")
    for name in ("config.json", "model.safetensors"):
        shutil.copy(tiny_model_dir / name, directory / name)
    ViTImageProcessor(
        do_resize=True,
        size={"height": 224, "width": 224},
        resample=Image.Resampling.BICUBIC,
        do_rescale=True,
        rescale_factor=1 / 200,
        do_normalize=True,
        image_mean=[0.485, 0.456, 0.406],
        image_std=[0.229, 0.224, 0.225],
    ).save_pretrained(directory)
    return directory


@pytest.fixture(params=["falconsai", "imagenet"])
def model_dir(request, tiny_model_dir: Path, imagenet_model_dir: Path) -> Path:
    return tiny_model_dir if request.param == "falconsai" else imagenet_model_dir


def backends_for(model_dir: Path) -> tuple[TransformersBackend, TransformersBackend]:
    fast = TransformersBackend(str(model_dir), device="cpu", precision="fp32")
    reference = TransformersBackend(
        str(model_dir), device="cpu", precision="fp32", fast_preprocessing=False
    )
    assert fast.fast_preprocessor is not None
    assert reference.fast_preprocessor is None
    return fast, reference


def test_pixels_match_the_processor_for_plain_resizes(model_dir):
    fast, reference = backends_for(model_dir)
    images = [image for image in IMAGES if image.size in EXACT_SIZES]
    ours = fast.preprocess(images).numpy()
    expected = processor_pixels(reference.processor, images)
    assert ours.shape == expected.shape
    assert ours.dtype == np.float32
    np.testing.assert_allclose(ours, expected, atol=1e-5)


def test_large_images_stay_within_a_level_or_two(model_dir):
    fast, reference = backends_for(model_dir)
    large = [photo((2400, 1800), 7), photo((4000, 3000), 8), photo((300, 2000), 9)]
    ours = fast.preprocess(large).numpy()
    expected = processor_pixels(reference.processor, large)
    # In 0-255 levels: the normalised difference times std / rescale_factor.
    fp = fast.fast_preprocessor
    levels = np.abs(ours - expected) / np.array(fp.scale).reshape(1, 3, 1, 1)
    assert levels.mean() < 0.5
    assert np.percentile(levels, 99.9) <= 3


def test_probabilities_match_the_processor(model_dir):
    fast, reference = backends_for(model_dir)
    images = [*IMAGES, photo((4000, 3000), 11)]
    for ours, expected in zip(fast.classify(images), reference.classify(images), strict=True):
        assert ours.keys() == expected.keys()
        for label, probability in expected.items():
            assert ours[label] == pytest.approx(probability, abs=PROBABILITY_TOLERANCE)


def test_reads_the_processors_settings(imagenet_model_dir):
    fast, _ = backends_for(imagenet_model_dir)
    fp = fast.fast_preprocessor
    assert (fp.height, fp.width) == (224, 224)
    assert fp.resample == Image.Resampling.BICUBIC
    assert fp.scale[0] == pytest.approx(1 / 200 / 0.229)
    assert fp.shift[2] == pytest.approx(-0.406 / 0.225)
    assert fast.preprocess(IMAGES[:2]).shape == (2, 3, 224, 224)
    rectangular = FastPreprocessor.from_processor(base_processor(size={"height": 96, "width": 64}))
    assert rectangular is not None
    assert rectangular(IMAGES[:2]).shape == (2, 3, 96, 64)


def test_other_colour_modes_are_converted_to_rgb(tiny_vit):
    fast = TransformersBackend(str(tiny_vit), device="cpu")
    grey = IMAGES[1].convert("L")
    rgba = IMAGES[2].convert("RGBA")
    pixels = fast.preprocess([grey, rgba, IMAGES[1]]).numpy()
    assert pixels.shape == (3, 3, 224, 224)
    # A grey image has three equal channels.
    np.testing.assert_allclose(pixels[0, 0], pixels[0, 2])


def base_processor(**changes) -> SimpleNamespace:
    # The real model's preprocessor settings, as the benchmark builds them.
    settings = FALCONSAI_PROCESSOR
    return SimpleNamespace(**{**settings, **changes})


def test_recognises_a_vit_style_processor():
    fp = FastPreprocessor.from_processor(base_processor())
    assert fp is not None
    assert fp.scale == pytest.approx((2 / 255,) * 3)
    assert fp.shift == pytest.approx((-1.0,) * 3)
    no_normalise = FastPreprocessor.from_processor(base_processor(do_normalize=False))
    assert no_normalise is not None
    assert no_normalise.shift == (0.0, 0.0, 0.0)
    single = FastPreprocessor.from_processor(base_processor(image_mean=0.5, image_std=0.25))
    assert single is not None
    assert single.scale == pytest.approx((4 / 255,) * 3)


@pytest.mark.parametrize(
    "changes",
    [
        {"size": {"shortest_edge": 224}},
        {"size": {"height": 224, "width": 224, "longest_edge": 512}},
        {"size": None},
        {"do_resize": False},
        {"do_center_crop": True},
        {"do_pad": True},
        {"resample": "bilinear"},
        {"image_mean": [0.5, 0.5]},
        {"image_std": [0.5, 0.0, 0.5]},
    ],
)
def test_unrecognised_processors_are_left_to_themselves(changes):
    assert FastPreprocessor.from_processor(base_processor(**changes)) is None


def test_backend_falls_back_to_an_unrecognised_processor(tiny_vit):
    backend = TransformersBackend(str(tiny_vit), device="cpu")
    backend.fast_preprocessor = None
    pixels = backend.preprocess(IMAGES[:2])
    assert pixels.shape == (2, 3, 224, 224)
    assert len(backend.classify(IMAGES[:2])) == 2
