"""Each measured side of a comparison, in a fresh process of its own.

    .venv/bin/python -m benchmarks.sides card '{"threads": 2, "paths": {...}}'

``benchmarks/run.py`` starts one process per side and round (the model
card's pipeline, then the worker path, then the card again …), so that
neither side runs beside the other's runtime: in one process, OpenVINO's
thread pool slowed the card's torch by about 35% on an AMD EPYC (Zen 4), and
openvino int8 read 6.8× the card where processes of their own gave 4.1×.

A side inherits the benchmark's environment (settings, database file, model,
converted models), runs, and prints one line of JSON: its figures, its
process id and the threads it ran with, as it read them itself.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import measure  # noqa: E402

#: LATENCY (one request on one stream), then THROUGHPUT (one request per stream).
HINTS = ("LATENCY", "THROUGHPUT")


def run(kind: str, **params: Any) -> dict[str, Any]:
    """Run side ``kind`` in a new process and return what it printed."""
    from django.db import connections

    # The side writes to the same SQLite file: leave no transaction or lock open.
    connections.close_all()
    command = [sys.executable, "-m", "benchmarks.sides", kind, json.dumps(params)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=os.environ)
    if done.returncode != 0:
        raise RuntimeError(f"The {kind} side failed:\n{done.stderr[-3000:]}")
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def main(argv: list[str]) -> int:
    import django

    django.setup()
    kind, params = argv[0], json.loads(argv[1])
    figures = SIDES[kind](params)
    print(json.dumps({**figures, "pid": os.getpid()}))
    return 0


def card(params: dict[str, Any]) -> dict[str, Any]:
    """The model card's usage on every size: open each file, one ``pipeline`` call per image."""
    import torch

    threads = params["threads"]
    paths = {name: [Path(p) for p in files] for name, files in params["paths"].items()}
    pipe = measure.card_pipeline(threads)
    for files in paths.values():
        measure.card_round(pipe, files[:1], threads)  # warm, at each size
    rates = {name: measure.card_round(pipe, files, threads) for name, files in paths.items()}
    return {"rates": rates, "threads": torch.get_num_threads()}


def worker(params: dict[str, Any]) -> dict[str, Any]:
    """The worker path on every size: the same files saved with QUEUE="sync", warm."""
    from nsfw_moderation.backends import get_backend

    options = {"QUEUE": "sync", "TORCH_THREADS": params["threads"], **measure.NO_LIMITS}
    rates, scores = {}, {}
    with measure.backend_settings(params["backend"], params["precision"], **options):
        measure.warm_up(params["batch_size"], params["count"])
        for name, files in params["paths"].items():
            data = [Path(path).read_bytes() for path in files]
            rates[name], by_title = measure.worker_round(data, name)
            scores.update(by_title)
        threads = getattr(get_backend(), "threads", None)
    return {"rates": rates, "scores": scores, "threads": threads}


def forward(params: dict[str, Any]) -> dict[str, Any]:
    """The OpenVINO forward pass alone, with one performance hint, on a batch of BATCH_SIZE."""
    from nsfw_moderation import model_cache
    from nsfw_moderation.backends.openvino import OpenVINOBackend
    from nsfw_moderation.conf import conf

    version = model_cache.runtime_version()
    assert version is not None, "the openvino backend needs OpenVINO"
    key = model_cache.key_for(conf.MODEL, params["precision"], version, conf.MODEL_REVISION)
    assert key is not None, "no converted model for this precision"
    backend = OpenVINOBackend(
        entry=model_cache.load(key), threads=params["threads"], performance_hint=params["hint"]
    )
    frames = [measure.decoded(Path(path).read_bytes()) for path in params["paths"]]
    size = min(params["batch_size"], len(frames)) or 1
    pixels = backend.preprocessor.uint8_batch((frames * size)[:size])
    backend.infer(pixels)  # warm
    started = time.perf_counter()
    for _ in range(2):
        backend.infer(pixels)
    return {"rate": 2 * len(pixels) / (time.perf_counter() - started), "threads": backend.threads}


def drain(params: dict[str, Any]) -> dict[str, Any]:
    """``tasks.classify()`` until the queue is empty: one process on every core, warm."""
    from nsfw_moderation import tasks
    from nsfw_moderation.backends import get_backend

    options = {"TORCH_THREADS": params["threads"], **measure.NO_LIMITS}
    with measure.backend_settings(params["backend"], params["precision"], **options):
        measure.warm_up(16, params["count"])
        started = time.perf_counter()
        while tasks.classify()["claimed"]:
            pass
        rate = params["count"] / (time.perf_counter() - started)
        threads = getattr(get_backend(), "threads", None)
    return {"rate": rate, "threads": threads}


def decoding(params: dict[str, Any]) -> dict[str, Any]:
    """:func:`measure.decode_concurrency` at every size, with no model loaded."""
    decode = {
        name: measure.decode_concurrency([Path(path).read_bytes() for path in files])
        for name, files in params["paths"].items()
    }
    return {"decode": decode}


def save(params: dict[str, Any]) -> dict[str, Any]:
    """:func:`measure.save_section` with no model loaded in the process."""
    data = Path(params["path"]).read_bytes()
    return {"save": measure.save_section(data, rounds=params["rounds"])}


SIDES: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "card": card,
    "worker": worker,
    "forward": forward,
    "drain": drain,
    "decoding": decoding,
    "save": save,
}


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
