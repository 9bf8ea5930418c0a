#!/usr/bin/env python
"""Video: seconds of video moderated per second of wall time; decoding apart from classifying.

    .venv/bin/python benchmarks/video.py            # writes its section of docs/benchmarks.md
    .venv/bin/python benchmarks/video.py --quick    # a 10-second clip, printed only: a smoke run

The clip: 60 seconds of 1280×720 H.264 at 30 frames a second (libx264, its
default keyframe interval of 250 frames and scene-cut detection), a moving
picture with a cut every 6 seconds, encoded once and kept under
``benchmarks/.video``. Each round decodes and samples it at the default
settings (``nsfw_moderation.video.decode``: a frame every
``VIDEO_FRAME_INTERVAL`` seconds and the scene changes, at most
``VIDEO_MAX_FRAMES``), then classifies the sampled frames with the real-size
random ViT-B/16 of ``benchmarks/model.py`` through the transformers backend.
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.measure import cpu_named  # noqa: E402
from benchmarks.report import write_section  # noqa: E402

START, END = "<!-- video:start -->", "<!-- video:end -->"
SIZE, FPS, CUT_EVERY = (1280, 720), 30, 6


def encode(path: Path, seconds: int) -> Path:
    """The benchmark's clip at ``path`` (encoded once): moving pictures, a cut every few seconds."""
    if path.exists():
        return path
    import av
    import numpy as np

    path.parent.mkdir(parents=True, exist_ok=True)
    width, height = SIZE
    rng = np.random.default_rng(0)
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "veryfast", "crf": "23"}
        scene = None
        for index in range(seconds * FPS):
            if index % (CUT_EVERY * FPS) == 0:
                # A soft picture of blocks, enlarged: something like a photo to compress.
                small = rng.integers(0, 256, (height // 40, width // 40 + 8, 3), dtype=np.uint8)
                scene = small.repeat(40, 0).repeat(40, 1)
            assert scene is not None
            shift = (index % (CUT_EVERY * FPS)) * 2
            pixels = np.ascontiguousarray(scene[:, shift : shift + width])
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def timed(work: Callable[[], Any]) -> tuple[float, float, Any]:
    """Wall-clock and CPU seconds of ``work()``, and what it returned."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = work()
    return time.perf_counter() - wall, time.process_time() - cpu, result


def spread(values: list[float], digits: int = 3) -> str:
    low, middle, high = min(values), statistics.median(values), max(values)
    return f"{middle:.{digits}f} ({low:.{digits}f}–{high:.{digits}f})"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "benchmarks.md")
    args = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.settings")
    import django

    django.setup()
    import av

    from benchmarks import model
    from nsfw_moderation import video
    from nsfw_moderation.backends.transformers import TransformersBackend

    seconds = 10 if args.quick else 60
    clip = encode(ROOT / "benchmarks" / ".video" / f"h264-720p-{seconds}s.mp4", seconds)
    data = clip.read_bytes()
    backend = TransformersBackend(
        str(model.build(ROOT / "benchmarks" / ".model")), device="cpu", precision="fp32"
    )
    limits = video.VideoLimits()
    load = os.getloadavg()
    backend.classify([video.decode(io.BytesIO(data), limits).frames[0].image])  # warm
    rows: list[tuple[float, float, float, float, int]] = []
    for _ in range(args.rounds):
        dwall, dcpu, decoded = timed(lambda: video.decode(io.BytesIO(data), limits))
        images = [frame.image for frame in decoded.frames]
        cwall, ccpu, _scores = timed(lambda images=images: backend.classify(images))
        rows.append((dwall, dcpu, cwall, ccpu, len(images)))
        print(
            f"… decode {dwall:.3f}s, classify {cwall:.3f}s, {len(images)} frames", file=sys.stderr
        )
    decode_wall = [row[0] for row in rows]
    decode_cpu = [row[1] for row in rows]
    classify_wall = [row[2] for row in rows]
    classify_cpu = [row[3] for row in rows]
    rate = [seconds / (row[0] + row[2]) for row in rows]
    share = [row[0] / row[2] for row in rows]
    frames = rows[0][4]
    lines = [
        START,
        "## Video",
        "",
        f"Machine: {cpu_named()}, {os.cpu_count()} logical CPUs, shared with other work "
        f"while this ran (load average at start {'/'.join(f'{x:.2f}' for x in load)}); "
        f"Python {platform.python_version()}, PyAV {av.__version__}.",
        "Command: `.venv/bin/python benchmarks/video.py`"
        + (" --quick" if args.quick else "")
        + f"; {args.rounds} rounds, median (min–max of the rounds).",
        "",
        f"A {seconds}-second 1280×720 H.264 clip at {FPS} frames a second (libx264 "
        "`veryfast`, its default keyframe interval and scene cuts; a cut every "
        f"{CUT_EVERY} s), sampled at the default settings: {frames} frames "
        f"(a frame every {limits.frame_interval:g} s and the scene changes, at most "
        f"{limits.max_frames}), classified by the real-size random ViT-B/16 "
        "(transformers backend, fp32, CPU).",
        "",
        "| step | seconds, wall clock | seconds, CPU |",
        "|---|---|---|",
        f"| decode and sample | {spread(decode_wall)} | {spread(decode_cpu)} |",
        f"| classify the sampled frames | {spread(classify_wall)} | {spread(classify_cpu)} |",
        "",
        f"Seconds of video moderated per second of wall time: {spread(rate, 1)}. "
        f"Decoding and sampling cost {spread(share, 3)} of the classification time "
        "(target: at most 0.25).",
        END,
    ]
    section = "\n".join(lines)
    print(section)
    if not args.quick:
        write_section(args.output, section)


if __name__ == "__main__":
    main()
