"""The measurements behind ``benchmarks/run.py``. Django is set up by the caller."""

from __future__ import annotations

import argparse
import io
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "avx_vnni", "amx_bf16", "amx_int8")


@dataclass
class Results:
    quick: bool
    model: str
    environment: dict[str, str] = field(default_factory=dict)
    count: int = 0
    repeat: int = 1
    batch_size: int = 0
    file_sizes: dict[str, float] = field(default_factory=dict)
    card: dict[str, float] = field(default_factory=dict)
    worker: dict[str, dict[str, float]] = field(default_factory=dict)
    precision_diff: dict[str, float] = field(default_factory=dict)
    preprocess_diff: float | None = None
    decode: dict[str, tuple[float, float]] = field(default_factory=dict)
    save: dict[str, dict[str, float]] = field(default_factory=dict)
    cluster: dict[str, float] = field(default_factory=dict)
    load: list[tuple[float, float, float]] = field(default_factory=list)


def run(args: argparse.Namespace, model_dir: Path, workdir: Path) -> str:
    import django

    from benchmarks import images, model, report

    model.build(model_dir, tiny=args.tiny)
    django.setup()
    from django.core.management import call_command

    call_command("migrate", run_syncdb=True, verbosity=0)
    results = Results(quick=args.quick, model="tiny ViT" if args.tiny else "ViT-B/16")
    results.load.append(os.getloadavg())
    results.environment = environment()
    results.count = args.images or (2 if args.quick else 32)
    files = images.image_set(results.count)
    results.file_sizes = {name: statistics.median(map(len, data)) for name, data in files.items()}
    step("model card usage")
    results.repeat = args.repeat or (1 if args.quick else 2)
    results.card = {
        name: card_throughput(model_dir, data, results.repeat) for name, data in files.items()
    }
    results.decode = {name: decode_concurrency(data) for name, data in files.items()}
    scores = worker_section(results, files, precisions(args))
    reference_section(results, model_dir, files, scores)
    step("save()")
    results.save = save_section(files["1024×768"][0], rounds=20 if args.quick else 300)
    step("qcluster")
    results.cluster = cluster_latency(
        workdir, args.latency_precision, files["1024×768"], rounds=3 if args.quick else 30
    )
    results.load.append(os.getloadavg())
    return report.render(results)


def step(message: str) -> None:
    print(f"… {message}", file=sys.stderr, flush=True)


# Environment ---------------------------------------------------------------


def environment() -> dict[str, str]:
    import torch

    info = {"cpu": cpu_model(), "cpu flags": " ".join(cpu_flags()), "cores": str(cores())}
    info["gpu"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    info["python"] = platform.python_version()
    for name in ("torch", "transformers", "django", "django-q2", "pillow", "numpy"):
        info[name] = metadata.version(name)
    info["torch threads"] = str(torch.get_num_threads())
    return info


def cpu_model() -> str:
    with suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def cpu_flags() -> list[str]:
    with suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                present = set(line.split(":", 1)[1].split())
                return [flag for flag in CPU_FLAGS if flag in present]
    return []


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def precisions(args: argparse.Namespace) -> list[str]:
    if args.precisions:
        return args.precisions.split(",")
    import torch

    found = ["fp32", "bf16"]
    found += ["fp16"] if torch.cuda.is_available() else ["int8"]
    return found


# Throughput ---------------------------------------------------------------


def card_throughput(model_dir: Path, files: list[bytes], repeat: int) -> float:
    """The model card's usage: one ``pipeline`` call per image file (best of ``repeat``)."""
    from PIL import Image
    from transformers import pipeline

    from nsfw_moderation.backends.transformers import resolve_device

    pipe = pipeline("image-classification", model=str(model_dir), device=resolve_device("auto"))
    pipe(Image.open(io.BytesIO(files[0])))  # warm
    rates = []
    for _ in range(repeat):
        started = time.perf_counter()
        for data in files:
            pipe(Image.open(io.BytesIO(data)))
        rates.append(len(files) / (time.perf_counter() - started))
    return max(rates)


def decode_concurrency(files: list[bytes]) -> tuple[float, float]:
    """Seconds to decode ``files`` one after another, and on a 2-thread pool."""
    from nsfw_moderation import imaging

    imaging.load_frames(files[0])  # Pillow loads its plugins on first use
    started = time.perf_counter()
    for data in files:
        imaging.load_frames(data)
    sequential = time.perf_counter() - started
    with ThreadPoolExecutor(max_workers=2) as pool:
        started = time.perf_counter()
        list(pool.map(imaging.load_frames, files))
        threaded = time.perf_counter() - started
    return sequential / len(files), threaded / len(files)


def worker_section(
    results: Results, files: dict[str, list[bytes]], names: list[str]
) -> dict[str, dict[str, dict[str, float]]]:
    from nsfw_moderation.conf import conf

    results.batch_size = conf.BATCH_SIZE
    scores: dict[str, dict[str, dict[str, float]]] = {}
    for precision in names:
        step(f"worker path, {precision}")
        with precision_settings(precision):
            warm_up(results.batch_size, results.count)
            results.worker[precision] = {}
            for name, data in files.items():
                runs = [worker_throughput(data, name) for _ in range(results.repeat)]
                rate, by_title = max(runs, key=lambda run: run[0])
                results.worker[precision][name] = rate
                scores.setdefault(precision, {}).update(by_title)
    if "fp32" in scores:
        for precision, by_title in scores.items():
            results.precision_diff[precision] = max_difference(scores["fp32"], by_title)
    return scores


@contextmanager
def precision_settings(precision: str) -> Iterator[None]:
    from django.conf import settings
    from django.test import override_settings

    with override_settings(NSFW_MODERATION={**settings.NSFW_MODERATION, "PRECISION": precision}):
        yield


def warm_up(batch_size: int, count: int) -> None:
    """Load the model and run each batch shape once: a worker in its steady state."""
    from PIL import Image

    from nsfw_moderation.backends import get_backend

    backend = get_backend()
    for size in {min(batch_size, count), count % batch_size} - {0}:
        backend.classify([Image.new("RGB", (224, 224), (90, 120, 150))] * size)


def worker_throughput(files: list[bytes], name: str) -> tuple[float, dict[str, dict[str, float]]]:
    """Images/s of ``tasks.classify`` over queued rows: read, decode, classify, store."""
    from nsfw_moderation import tasks
    from nsfw_moderation.models import ModeratedImage, Status

    photos = save_photos(files, name)
    started = time.perf_counter()
    while tasks.classify()["claimed"]:
        pass
    elapsed = time.perf_counter() - started
    rows = ModeratedImage.objects.filter(object_id__in=[str(p.pk) for p in photos])
    done = {row.object_id: row.scores for row in rows if row.status == Status.DONE}
    if len(done) != len(files):
        raise RuntimeError(f"Only {len(done)} of {len(files)} rows were classified.")
    by_title = {photo.title: done[str(photo.pk)] for photo in photos}
    clear()
    return len(files) / elapsed, by_title


def save_photos(files: list[bytes], name: str) -> list[Any]:
    from django.core.files.base import ContentFile

    from benchmarks.benchapp.models import ModeratedPhoto

    photos = []
    for index, data in enumerate(files):
        photo = ModeratedPhoto(title=f"{name}-{index}", image=ContentFile(data, name="p.jpg"))
        photo.save()
        photos.append(photo)
    return photos


def clear() -> None:
    from django_q.models import OrmQ

    from benchmarks.benchapp.models import ModeratedPhoto, PlainPhoto
    from nsfw_moderation.models import ModeratedImage

    for model in (ModeratedPhoto, PlainPhoto):
        for photo in model._default_manager.all():
            photo.image.delete(save=False)
        model._default_manager.all().delete()
    ModeratedImage.objects.all().delete()
    OrmQ.objects.all().delete()


def max_difference(a: dict[str, dict[str, float]], b: dict[str, dict[str, float]]) -> float:
    return max(abs(a[key][label] - b[key][label]) for key in a for label in a[key])


def reference_section(
    results: Results,
    model_dir: Path,
    files: dict[str, list[bytes]],
    scores: dict[str, dict[str, dict[str, float]]],
) -> None:
    """Fast preprocessing against the model's own image processor, both fp32."""
    if "fp32" not in scores:
        return
    step("fast preprocessing against the processor")
    from nsfw_moderation import imaging
    from nsfw_moderation.backends.transformers import TransformersBackend

    backend = TransformersBackend(str(model_dir), precision="fp32", fast_preprocessing=False)
    reference: dict[str, dict[str, float]] = {}
    for name, data in files.items():
        frames = [imaging.load_frames(item)[0] for item in data]
        for start in range(0, len(frames), results.batch_size):
            batch = backend.classify(frames[start : start + results.batch_size])
            for offset, result in enumerate(batch):
                reference[f"{name}-{start + offset}"] = result
    results.preprocess_diff = max_difference(reference, scores["fp32"])


# The save path ---------------------------------------------------------------


def save_section(data: bytes, rounds: int) -> dict[str, dict[str, float]]:
    """:func:`save_overhead` with Django's default connection handling and persistent ones."""
    from django.db import connection

    results = {}
    for max_age in (0, None):
        connection.close()
        connection.settings_dict["CONN_MAX_AGE"] = max_age
        results[f"CONN_MAX_AGE={max_age}"] = save_overhead(data, rounds)
    connection.close()
    connection.settings_dict["CONN_MAX_AGE"] = 0
    return results


def save_overhead(data: bytes, rounds: int) -> dict[str, float]:
    """Milliseconds per ``save()``: the same model registered and not, interleaved."""
    from django.core.files.base import ContentFile

    from benchmarks.benchapp.models import ModeratedPhoto, PlainPhoto

    timings: dict[str, list[float]] = {"plain": [], "registered": []}
    for index in range(rounds + 5):
        for key, model in (("plain", PlainPhoto), ("registered", ModeratedPhoto)):
            photo = model(title=f"save-{index}", image=ContentFile(data, name="s.jpg"))
            started = time.perf_counter()
            photo.save()
            if index >= 5:  # the first few warm caches up
                timings[key].append((time.perf_counter() - started) * 1000)
    clear()
    summary = {}
    for key, values in timings.items():
        summary[f"{key} p50"] = statistics.median(values)
        summary[f"{key} p95"] = percentile(values, 95)
    summary["added p50"] = summary["registered p50"] - summary["plain p50"]
    summary["added p95"] = summary["registered p95"] - summary["plain p95"]
    return summary


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


# A real qcluster -------------------------------------------------------------


def cluster_latency(
    workdir: Path, precision: str, files: list[bytes], rounds: int
) -> dict[str, float]:
    """Start-to-first-verdict, upload-to-verdict p50/p95 and peak RSS of a real qcluster."""
    first = save_photos(files[:1], "cluster-first")[0]
    env = {**os.environ, "NSFW_BENCH_PRECISION": precision, "PYTHONUNBUFFERED": "1"}
    log = (workdir / "qcluster.log").open("ab")
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "django", "qcluster"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        results = {"start to first verdict s": wait_for_verdict(first, started, workdir)}
        latencies = []
        for index in range(rounds):
            photo_data = files[(index + 1) % len(files)]
            begun = time.perf_counter()
            photo = save_photos([photo_data], f"cluster-{index}")[0]
            latencies.append(wait_for_verdict(photo, begun, workdir))
        results["latency p50 s"] = statistics.median(latencies)
        results["latency p95 s"] = percentile(latencies, 95)
        results.update(peak_rss(process.pid))
    finally:
        stop(process)
        log.close()
    clear()
    return results


def wait_for_verdict(photo: Any, started: float, workdir: Path, timeout: float = 300) -> float:
    from nsfw_moderation.models import ModeratedImage, Status

    done = ModeratedImage.objects.filter(object_id=str(photo.pk), status=Status.DONE)
    while not done.exists():
        if time.perf_counter() - started > timeout:
            log = (workdir / "qcluster.log").read_text(errors="replace")[-3000:]
            raise RuntimeError(f"No verdict after {timeout} s. qcluster log:\n{log}")
        time.sleep(0.01)
    return time.perf_counter() - started


def peak_rss(root: int) -> dict[str, float]:
    """Peak RSS (VmHWM) in MiB: the cluster's main process and its largest descendant."""
    sizes = {pid: high_water_mark(pid) for pid in descendants(root)}
    worker = max((size for pid, size in sizes.items() if pid != root), default=0.0)
    return {"main process peak RSS MiB": high_water_mark(root), "worker peak RSS MiB": worker}


def descendants(root: int) -> list[int]:
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with suppress(OSError, IndexError, ValueError):
                stat = (entry / "stat").read_text()
                parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = [root], [root]
    while frontier:
        frontier = [pid for pid, parent in parents.items() if parent in frontier]
        found += frontier
    return found


def high_water_mark(pid: int) -> float:
    with suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def stop(process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    """SIGTERM the main process only, then sweep the group (never SIGTERM the group)."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        with suppress(subprocess.TimeoutExpired):
            process.wait(timeout)
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(10)
