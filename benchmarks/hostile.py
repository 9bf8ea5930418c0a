#!/usr/bin/env python
"""Hostile uploads: the time each takes to a clear outcome, and a worker's peak memory.

    .venv/bin/python benchmarks/hostile.py              # 3 rounds, writes its section
                                                        # of docs/benchmarks.md
    .venv/bin/python benchmarks/hostile.py --rounds 1 --no-write

Per file of the hostile corpus (``tests/hostile.py``, generated in code):
``imaging.load_frames`` with the default limits and the file's name, as the
worker calls it, timed over the rounds (wall and CPU), with its outcome.

Per hostile batch (``BATCH_SIZE=16``): one process saves 16 hostile files
through the model, then a fresh process loads the worker's model (a
random-weight ViT-B/16 shaped like Falconsai/nsfw_image_detection, as in
``benchmarks/run.py``), classifies one ordinary photo with it (warm) and runs
the worker task on the batch: that process's RSS before the batch, its peak
(``VmHWM``) during the batch, and the batch's time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import measure  # noqa: E402
from benchmarks.report import write_section  # noqa: E402

MIB = 1024 * 1024
MARKERS = ("<!-- hostile:start -->", "<!-- hostile:end -->")


def corpus() -> dict[str, tuple[str, Callable[[], bytes]]]:
    """Name → (file name, builder): what the issue lists, and a few more."""
    from PIL import Image

    from benchmarks import images
    from tests import hostile

    def png() -> bytes:
        return hostile.encode(Image.new("RGB", (64, 48), (20, 120, 200)), "PNG")

    return {
        "photo 4000×3000 JPEG (control)": ("photo.jpg", lambda: images.jpeg((4000, 3000), 1)),
        "GIF, 50,000 frames of 1×1 (0.75 MB)": ("a.gif", lambda: hostile.gif_frames(50_000)),
        "GIF, 3.4 million frames of 1×1 (51 MB)": (
            "a.gif",
            lambda: hostile.gif_frames(3_400_000),
        ),
        "APNG, 50,000 frames": ("a.png", lambda: hostile.apng_frames(50_000)),
        "animated WebP, 50,000 frames": ("a.webp", lambda: hostile.webp_frames(50_000)),
        "GIF, 300 frames on a 1000×1000 canvas": (
            "a.gif",
            lambda: hostile.gif_frames(300, canvas=(1_000, 1_000)),
        ),
        "PNG, 64 MP palette (61 KB)": ("big.png", lambda: hostile.palette_png()),
        "PNG, 64 MP RGBA": ("big.png", lambda: hostile.rgba_png((8_000, 8_000))),
        "APNG, 16 MP RGBA, 3 frames": ("anim.png", lambda: hostile.rgba_png((4_000, 4_000), 3)),
        "GIF, 5 million comment blocks (10 MB)": (
            "a.gif",
            lambda: hostile.gif_comment_blocks(5_000_000),
        ),
        "PNG, 1 million empty chunks (12 MB)": (
            "a.png",
            lambda: hostile.png_empty_chunks(1_000_000),
        ),
        "JPEG, 1 million comment markers (4 MB)": (
            "a.jpg",
            lambda: hostile.jpeg_comment_markers(1_000_000),
        ),
        "PNG bytes named x.pdf": ("x.pdf", png),
        "PNG bytes named x.eps": ("x.eps", png),
        "PNG bytes named x.svg": ("x.svg", png),
        "JPEG padded past MAX_FILE_SIZE": ("a.jpg", lambda: hostile.padded_jpeg(50 * MIB + 1)),
    }


#: Hostile batches for the worker: 16 files each (BATCH_SIZE=16).
BATCHES = {
    "16 × 64 MP palette PNG": [("big.png", "palette")] * 16,
    "16 × 64 MP RGBA PNG": [("big.png", "rgba")] * 16,
    "16 × 16 MP RGBA APNG (3 frames)": [("anim.png", "apng")] * 16,
    "16 mixed (2 each of 8 kinds)": [
        (name, kind)
        for name, kind in [
            ("a.gif", "gif50k"),
            ("a.png", "apng50k"),
            ("a.webp", "webp50k"),
            ("big.png", "palette"),
            ("big.png", "rgba"),
            ("anim.png", "apng"),
            ("x.pdf", "png"),
            ("a.jpg", "padded"),
        ]
        for _ in range(2)
    ],
    "16 × 4000×3000 JPEG photos (control)": [("photo.jpg", "photo")] * 16,
}


def batch_file(kind: str, seed: int) -> bytes:
    from PIL import Image

    from benchmarks import images
    from tests import hostile

    builders: dict[str, Callable[[], bytes]] = {
        "palette": hostile.palette_png,
        "rgba": lambda: hostile.rgba_png((8_000, 8_000)),
        "apng": lambda: hostile.rgba_png((4_000, 4_000), 3),
        "gif50k": lambda: hostile.gif_frames(50_000),
        "apng50k": lambda: hostile.apng_frames(50_000),
        "webp50k": lambda: hostile.webp_frames(50_000),
        "png": lambda: hostile.encode(Image.new("RGB", (64, 48), (20, 120, 200)), "PNG"),
        "padded": lambda: hostile.padded_jpeg(50 * MIB + 1),
        "photo": lambda: images.jpeg((4000, 3000), seed),
    }
    return builders[kind]()


# --- Per file ------------------------------------------------------------------------


def time_files(rounds: int) -> dict[str, dict[str, Any]]:
    from nsfw_moderation import imaging

    results: dict[str, dict[str, Any]] = {}
    for label, (name, build) in corpus().items():
        data = build()
        walls, cpus = [], []
        outcome = ""
        for _ in range(rounds):
            wall, cpu = time.perf_counter(), time.process_time()
            try:
                frames = imaging.load_frames(data, name=name)
                outcome = f"{len(frames)} frame(s), {frames[0].size[0]}×{frames[0].size[1]}"
            except imaging.ImageDecodeError as exc:
                kind = "refused" if isinstance(exc, imaging.ImageRefused) else "failed"
                outcome = f"{kind}: {exc}"
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
        results[label] = {"bytes": len(data), "wall": walls, "cpu": cpus, "outcome": outcome}
        print(f"… {label}: {statistics.median(walls):.3f} s, {outcome}", file=sys.stderr)
    return results


# --- Per batch, in a fresh worker process ---------------------------------------------


def batch_round(batch: str, model_dir: Path) -> dict[str, Any]:
    """Run one batch in a fresh process; its measurements."""
    with tempfile.TemporaryDirectory(prefix="nsfw-hostile-") as temporary:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "benchmarks.settings",
            "NSFW_BENCH_DB": str(Path(temporary) / "bench.sqlite3"),
            "NSFW_BENCH_MEDIA": str(Path(temporary) / "media"),
            "NSFW_BENCH_MODEL": str(model_dir),
            "NSFW_BENCH_DEVICE": "cpu",
            "NSFW_BENCH_BATCH_SIZE": "16",
            "TOKENIZERS_PARALLELISM": "false",
        }
        for step in ("--batch-setup", "--batch-child"):
            result = subprocess.run(
                [sys.executable, __file__, step, batch],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
                timeout=900,
                check=False,
            )
            if result.returncode:
                raise RuntimeError(f"{step} {batch!r} failed:\n{result.stderr[-3000:]}")
    report: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return report


def batch_setup(batch: str) -> None:
    """Save the batch's files through the model: 16 queued rows for the worker."""
    import django

    django.setup()
    from django.core.files.base import ContentFile
    from django.core.management import call_command

    from benchmarks.benchapp.models import ModeratedPhoto

    call_command("migrate", run_syncdb=True, verbosity=0)
    for seed, (name, kind) in enumerate(BATCHES[batch]):
        ModeratedPhoto.objects.create(image=ContentFile(batch_file(kind, seed), name=name))


def batch_child(batch: str) -> None:
    """The worker: warm, then one task over the queued batch."""
    import io

    import django

    django.setup()
    from PIL import Image

    from benchmarks import images
    from nsfw_moderation.backends import get_backend
    from nsfw_moderation.models import ModeratedImage
    from nsfw_moderation.worker import tasks

    # Warm, as a running worker is: the model loaded and one photo classified.
    photo = Image.open(io.BytesIO(images.jpeg((1024, 768), 0))).convert("RGB")
    get_backend().classify([photo])
    warm = memory_mib("VmRSS")
    # From here: loading the model can peak higher than a batch does.
    reset_high_water_mark()
    started = time.perf_counter()
    counts = tasks.classify()
    seconds = time.perf_counter() - started
    peak = memory_mib("VmHWM")
    outcomes: dict[str, int] = {}
    for status, verdict in ModeratedImage.objects.values_list("status", "verdict"):
        outcomes[f"{status}/{verdict}"] = outcomes.get(f"{status}/{verdict}", 0) + 1
    report = {"warm_mib": warm, "peak_mib": peak, "seconds": seconds, "counts": counts}
    print(json.dumps({**report, "outcomes": outcomes}))


def memory_mib(field: str) -> float:
    """``VmRSS`` or ``VmHWM`` of this process, in MiB."""
    return measure.memory(os.getpid(), field)


def reset_high_water_mark() -> None:
    """Make ``VmHWM`` start again from the current RSS (Linux 4.0 and later)."""
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")


# --- Report --------------------------------------------------------------------------


def spread(values: list[float], fmt: str) -> str:
    median = statistics.median(values)
    if len(values) == 1 or min(values) == max(values):
        return format(median, fmt)
    return f"{median:{fmt}} ({min(values):{fmt}}–{max(values):{fmt}})"


def report(
    files: dict[str, dict[str, Any]],
    batches: dict[str, list[dict[str, Any]]],
    rounds: int,
    load: list[tuple[float, float, float]],
) -> str:
    from PIL import __version__ as pillow

    machine = f"{measure.cpu_named()}, {measure.cores()} cores"
    averages = ", ".join("/".join(f"{v:.2f}" for v in sample) for sample in load)
    lines = [
        MARKERS[0],
        "## Hostile uploads",
        "",
        f"`benchmarks/hostile.py --rounds {rounds}` on {machine}, Python "
        f"{platform.python_version()}, Pillow {pillow}. Median over the rounds, range in "
        "brackets. The files are generated in code (`tests/hostile.py`). Load average "
        f"(1/5/15 min) at start and end: {averages}: times are disturbed by other work on "
        "the machine, memory is not.",
        "",
        "### Time to an outcome, per file",
        "",
        "`imaging.load_frames(data, name=...)` with the default limits, as the worker calls it. "
        "*Refused* files are flagged for a person whatever `ON_ERROR` says.",
        "",
        "| file | size | wall (s) | CPU (s) | outcome |",
        "|---|---|---|---|---|",
    ]
    for label, result in files.items():
        size = result["bytes"]
        shown = f"{size / MIB:.1f} MiB" if size >= MIB else f"{size / 1024:.0f} KiB"
        outcome = result["outcome"].replace("|", "/")
        lines.append(
            f"| {label} | {shown} | {spread(result['wall'], '.3f')} "
            f"| {spread(result['cpu'], '.3f')} | {outcome} |"
        )
    lines += [
        "",
        "### A worker's peak memory on a hostile batch",
        "",
        "Each round: 16 files saved through the model (one process), then a fresh worker "
        "process loads its model (a random-weight ViT-B/16 shaped like "
        "Falconsai/nsfw_image_detection, fp32, CPU), classifies one ordinary photo, and runs "
        "one `tasks.classify()` (`BATCH_SIZE=16`: the whole batch, decoded on "
        f"{min(os.cpu_count() or 1, 4)} threads). *Warm* is that process's RSS before the "
        "batch; *peak RSS* is its highest during the batch (`VmHWM`, started again from the "
        "warm RSS just before it: loading the model can peak higher than a batch).",
        "",
        "| batch | warm RSS (MiB) | peak RSS (MiB) | batch (s) | outcomes |",
        "|---|---|---|---|---|",
    ]
    for batch, runs in batches.items():
        outcomes = ", ".join(f"{k} {v}" for k, v in sorted(runs[-1]["outcomes"].items()))
        lines.append(
            f"| {batch} | {spread([r['warm_mib'] for r in runs], '.0f')} "
            f"| {spread([r['peak_mib'] for r in runs], '.0f')} "
            f"| {spread([r['seconds'] for r in runs], '.1f')} | {outcomes} |"
        )
    lines.append(MARKERS[1])
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batches", default="; ".join(BATCHES), help="names, separated by ';'")
    parser.add_argument("--no-write", action="store_true", help="print, do not edit the docs")
    parser.add_argument("--tiny", action="store_true", help="use the test-sized ViT")
    parser.add_argument("--model-dir", type=Path, default=None, help="where the model is cached")
    parser.add_argument("--batch-setup", help=argparse.SUPPRESS)
    parser.add_argument("--batch-child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.batch_setup:
        batch_setup(args.batch_setup)
        return 0
    if args.batch_child:
        batch_child(args.batch_child)
        return 0
    from benchmarks import model

    default_dir = ROOT / "benchmarks" / (".model-tiny" if args.tiny else ".model")
    model_dir = model.build(args.model_dir or default_dir, tiny=args.tiny)
    load = [os.getloadavg()]
    files = time_files(args.rounds)
    batches: dict[str, list[dict[str, Any]]] = {}
    wanted = {name.strip() for name in args.batches.split(";")}
    for batch in [name for name in BATCHES if name in wanted]:
        batches[batch] = []
        for _ in range(args.rounds):
            batches[batch].append(batch_round(batch, model_dir))
            print(f"… {batch}: {json.dumps(batches[batch][-1])}", file=sys.stderr)
    load.append(os.getloadavg())
    section = report(files, batches, args.rounds, load)
    print(section)
    if not args.no_write:
        write_section(ROOT / "docs" / "benchmarks.md", section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
