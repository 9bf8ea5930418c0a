"""The measurements behind ``benchmarks/run.py``. Django is set up by the caller.

Every timing is taken over several rounds and reported as the median and the
spread (lowest–highest). Throughput compares each backend and precision with
the model card's usage in alternating rounds, with the same number of threads
on both sides, each side of each round in a fresh process of its own
(:mod:`benchmarks.sides`): in one process, one side's runtime slows the other's.
Every other timed comparison (the runtime's modes, decoding, the cost of
``save()``, one process against a cluster) runs away from the benchmark's
own process too, which loads and converts models.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
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
from importlib import metadata, util
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
#: The instructions that decide how fast int8 and bf16 run: VNNI for int8 dot
#: products, BF16 for bf16 ones, AMX tiles for both.
CPU_FLAGS = (
    "avx2",
    "avx512f",
    "avx512_vnni",
    "avx512_bf16",
    "avx_vnni",
    "amx_tile",
    "amx_bf16",
    "amx_int8",
)
CARD = "model card"
#: The backlog of "two workers against one process", in rounds of files: one
#: that lasts seconds, so that the cluster's fixed start (the broker's poll,
#: handing the first tasks over) does not decide the ratio.
SCALE_ROUNDS_OF_FILES = 6
#: How often a scaling round looks at the database for its last verdict. Each
#: look is a query on the workers' SQLite file: every 10 ms, they took 7 to 10%
#: off two transformers fp32 workers (0.89–0.93 of one process, 0.98 at 50 ms),
#: for at most 50 ms more on a round of seconds, counted against the cluster.
SCALE_POLL = 0.05
#: Accuracy limits that let every conversion through: the benchmark measures
#: them all, and reports what the guard at its default limits decided.
NO_LIMITS = {"MAX_SCORE_DIFFERENCE": 1.0, "MAX_VERDICT_FLIPS": 10**9}


@dataclass
class Results:
    quick: bool
    model: str
    environment: dict[str, str] = field(default_factory=dict)
    count: int = 0
    rounds: int = 1
    threads: int = 1
    batch_size: int = 0
    file_sizes: dict[str, float] = field(default_factory=dict)
    spread: dict[str, float] = field(default_factory=dict)
    #: configuration → size → rates per round, and the card's rates in the same rounds.
    rates: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    card_rates: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    #: configuration → (images, max |Δp|, flips at FLAG_THRESHOLD) against transformers fp32.
    agreement: dict[str, tuple[int, float, int]] = field(default_factory=dict)
    guard: dict[str, dict[str, Any]] = field(default_factory=dict)
    modes: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    preprocess_diff: float | None = None
    decode: dict[str, tuple[float, float]] = field(default_factory=dict)
    save: dict[str, dict[str, float]] = field(default_factory=dict)
    #: configuration → figure → one value per round (a fresh qcluster each).
    cluster: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    scale: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    scale_count: int = 0
    load: list[tuple[float, float, float]] = field(default_factory=list)
    #: The benchmark's own process, and every measured side: section, label, round, side, pid.
    main_pid: int = field(default_factory=os.getpid)
    processes: list[dict[str, Any]] = field(default_factory=list)
    #: Full runs on every CPU recorded (``benchmarks/cpu_results.json``), this one included.
    by_cpu: list[dict[str, Any]] = field(default_factory=list)


def run(args: argparse.Namespace, model_dir: Path, workdir: Path) -> str:
    import django

    from benchmarks import images, model, report

    spread_on = [
        decoded(images.jpeg((1024, 768), 5000 + i)) for i in range(16 if args.tiny else 64)
    ]
    model.build(model_dir, tiny=args.tiny, spread_on=spread_on)
    django.setup()
    from django.core.management import call_command

    call_command("migrate", run_syncdb=True, verbosity=0)
    results = Results(quick=args.quick, model="tiny ViT" if args.tiny else "ViT-B/16")
    results.load.append(os.getloadavg())
    results.environment = environment()
    results.spread = model.spread_figures(model_dir)
    results.threads = args.threads or cores()
    results.count = args.images or (2 if args.quick else 24)
    results.rounds = args.rounds or (1 if args.quick else 3)
    files = images.image_set(results.count)
    results.file_sizes = {name: statistics.median(map(len, data)) for name, data in files.items()}
    paths = write_card_files(files, workdir)
    configs = configurations(args)
    if any(backend == "openvino" for backend, _ in configs):
        optimize_section(results, configs, 4 if args.quick else args.calibration)
    scores = throughput_section(results, paths, configs)
    agreement_section(results, scores)
    modes_section(results, configs, paths["1024×768"])
    reference_section(results, model_dir, files, scores)
    step("decoding")
    side = sides_run(results, "decoding", "", 0, "decoding", paths=as_text(paths))
    results.decode = {name: (seq, par) for name, (seq, par) in side["decode"].items()}
    step("save()")
    rounds = 20 if args.quick else 300
    side = sides_run(
        results, "save()", "", 0, "save", path=str(paths["1024×768"][0]), rounds=rounds
    )
    results.save = side["save"]
    latency_section(results, workdir, args.latency, files["1024×768"], 3 if args.quick else 30)
    results.scale_count = SCALE_ROUNDS_OF_FILES * results.count
    scale_files = [images.jpeg((1024, 768), 7000 + i) for i in range(results.scale_count)]
    for label in filter(None, args.scale.split(",")):
        step(f"two workers against one process, {label}")
        results.scale[label] = scale_section(results, workdir, label, scale_files)
    results.load.append(os.getloadavg())
    results.by_cpu = cpu_results(args, results)
    if args.json:
        args.json.write_text(json.dumps(dataclasses.asdict(results), indent=1))
    return report.render(results)


def cpu_results(args: argparse.Namespace, results: Results) -> list[dict[str, Any]]:
    """The lines of ``--cpu-results``; a full run puts its own line in first.

    Only a full run on the real model's shape says what a CPU does; a quick or
    tiny run leaves the file alone and shows what it holds.
    """
    from benchmarks import report

    path: Path = args.cpu_results
    if args.quick or args.tiny:
        return list(json.loads(path.read_text())) if path.exists() else []
    return report.update_cpu_results(path, report.cpu_record(results))


def step(message: str) -> None:
    print(f"… {message}", file=sys.stderr, flush=True)


def decoded(data: bytes) -> Any:
    from PIL import Image

    image = Image.open(io.BytesIO(data))
    image.load()
    return image


# Environment ---------------------------------------------------------------


def environment() -> dict[str, str]:
    import torch

    info = {"cpu": cpu_model(), "cpu flags": " ".join(cpu_flags()), "cores": str(cores())}
    info["gpu"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    info["python"] = platform.python_version()
    names = ("torch", "transformers", "openvino", "nncf", "django", "django-q2", "pillow", "numpy")
    for name in names:
        with suppress(metadata.PackageNotFoundError):
            info[name] = metadata.version(name)
    return info


def cpu_model() -> str:
    """The CPU's name, with its family and model: a virtual machine may show only "AMD EPYC"."""
    fields = cpuinfo()
    name = fields.get("model name") or platform.processor() or "unknown"
    if "cpu family" in fields and "model" in fields:
        name += f" (family {fields['cpu family']}, model {fields['model']})"
    return name


def cpu_named(model: str | None = None, flags: str | None = None) -> str:
    """The CPU with its family, model and the instructions that decide inference speed.

    Figures differ several-fold between CPUs that a virtual machine names alike:
    every section of docs/benchmarks.md names the CPU it was measured on.
    Without arguments, this machine's; else the ones a run recorded.
    """
    model = model if model is not None else cpu_model()
    return f"{model}; {flags_named(flags.split() if flags is not None else cpu_flags())}"


def flags_named(present: list[str]) -> str:
    """The inference instructions present, and those of :data:`CPU_FLAGS` that are not."""
    absent = [flag for flag in CPU_FLAGS if flag not in present]
    if not present:
        return "none of " + " ".join(CPU_FLAGS)
    return " ".join(present) + (f"; without {' '.join(absent)}" if absent else "")


def cpu_flags() -> list[str]:
    present = set(cpuinfo().get("flags", "").split())
    return [flag for flag in CPU_FLAGS if flag in present]


def cpuinfo() -> dict[str, str]:
    """The first processor's fields in /proc/cpuinfo (empty where there is none)."""
    with suppress(OSError):
        return first_processor(Path("/proc/cpuinfo").read_text())
    return {}


def first_processor(text: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            break
        key, _, value = line.partition(":")
        fields[key.strip()] = value.strip()
    return fields


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def configurations(args: argparse.Namespace) -> list[tuple[str, str]]:
    """(backend, precision) pairs to measure, transformers fp32 first (the reference)."""
    if args.configs:
        return [tuple(label.split()) for label in args.configs.split(",")]  # type: ignore[misc]
    import torch

    found = [("transformers", "fp32"), ("transformers", "bf16")]
    found += [("transformers", "fp16" if torch.cuda.is_available() else "int8")]
    if util.find_spec("openvino") and util.find_spec("nncf"):
        found += [("openvino", precision) for precision in ("fp32", "bf16", "int8")]
    return found


@contextmanager
def backend_settings(backend: str, precision: str, **changes: Any) -> Iterator[None]:
    from django.conf import settings
    from django.test import override_settings

    options = {**settings.NSFW_MODERATION, "BACKEND": backend, "PRECISION": precision, **changes}
    with override_settings(NSFW_MODERATION=options):
        yield


# Converting for OpenVINO ---------------------------------------------------------


def optimize_section(results: Results, configs: list[tuple[str, str]], count: int) -> None:
    """``nsfw_model optimize`` as a site runs it: calibrated on its newest classified images."""
    from django.core.management import call_command

    from benchmarks import images
    from nsfw_moderation import model_cache

    precisions = [precision for backend, precision in configs if backend == "openvino"]
    step(f"calibration: {count} images classified by the worker path")
    with backend_settings("transformers", "fp32", QUEUE="sync", TORCH_THREADS=results.threads):
        photos = [images.jpeg((1024, 768), 3000 + i) for i in range(count)]
        save_photos(photos, "calibration")
    step(f"nsfw_model optimize {' '.join(precisions)}")
    arguments = [f"--precision={precision}" for precision in precisions]
    with backend_settings("openvino", "fp32", **NO_LIMITS):
        call_command(
            "nsfw_model", "optimize", *arguments, f"--images={count}", stdout=io.StringIO()
        )
        for precision in precisions:
            results.guard[precision] = guard_figures(model_cache, precision)
    clear()


def guard_figures(model_cache: Any, precision: str) -> dict[str, Any]:
    """The guard's figures on the calibration images, and its verdict at the default limits."""
    from nsfw_moderation.conf import DEFAULTS, conf

    key = model_cache.key_for(
        conf.MODEL, precision, model_cache.runtime_version(), conf.MODEL_REVISION
    )
    entry = model_cache.load(key)
    agreement = entry.agreement
    defaults = {name: DEFAULTS[name] for name in NO_LIMITS}
    with backend_settings("openvino", precision, **defaults):
        problems = agreement.problems()
    return {
        "images": agreement.images,
        "max difference": agreement.max_difference,
        "flips": agreement.flips(),
        "problems": problems,
        "seconds": entry.meta["conversion_seconds"],
        "size MB": entry.size() / 1024 / 1024,
        "inference precision": entry.meta["inference_precision"],
    }


# Throughput ---------------------------------------------------------------


def write_card_files(files: dict[str, list[bytes]], workdir: Path) -> dict[str, list[Path]]:
    """The images as files on disk: the model card opens a file."""
    paths: dict[str, list[Path]] = {}
    for name, data in files.items():
        folder = workdir / "card" / name.replace("×", "x")
        folder.mkdir(parents=True, exist_ok=True)
        paths[name] = []
        for index, content in enumerate(data):
            (folder / f"{index}.jpg").write_bytes(content)
            paths[name].append(folder / f"{index}.jpg")
    return paths


def as_text(paths: dict[str, list[Path]]) -> dict[str, list[str]]:
    return {name: [str(path) for path in files] for name, files in paths.items()}


def record(results: Results, process: dict[str, Any]) -> None:
    """Note which process measured a side: the test checks that none is the benchmark's."""
    results.processes.append(process)


def sides_run(
    results: Results, section: str, label: str, number: int, kind: str, **params: Any
) -> dict[str, Any]:
    """One side in a fresh process (:mod:`benchmarks.sides`), recorded."""
    from benchmarks import sides

    figures = sides.run(kind, **params)
    side = {"section": section, "label": label, "round": number, "side": kind}
    record(results, {**side, "pid": figures["pid"], "threads": figures.get("threads")})
    return figures


def card_pipeline(threads: int) -> Any:
    import torch
    from transformers import pipeline

    from nsfw_moderation.backends.transformers import resolve_device
    from nsfw_moderation.conf import conf

    torch.set_num_threads(threads)
    return pipeline("image-classification", model=conf.MODEL, device=resolve_device("auto"))


def card_round(pipe: Any, paths: list[Path], threads: int) -> float:
    """The model card's usage: open each file, one ``pipeline`` call per image."""
    import torch
    from PIL import Image

    torch.set_num_threads(threads)
    started = time.perf_counter()
    for path in paths:
        pipe(Image.open(path))
    return len(paths) / (time.perf_counter() - started)


def throughput_section(
    results: Results, paths: dict[str, list[Path]], configs: list[tuple[str, str]]
) -> dict[str, dict[str, dict[str, float]]]:
    """Alternating rounds: the card's usage, then the worker path, each in a fresh process.

    A round runs every size on each side. The worker path's scores (the same
    in every round) go to the agreement figures.
    """
    from nsfw_moderation.conf import conf

    results.batch_size = conf.BATCH_SIZE
    files = as_text(paths)
    scores: dict[str, dict[str, dict[str, float]]] = {}
    for backend, precision in configs:
        label = f"{backend} {precision}"
        for number in range(results.rounds):
            step(f"throughput, {label}, round {number + 1} of {results.rounds}")
            card = sides_run(
                results, "throughput", label, number, "card", threads=results.threads, paths=files
            )
            worker = sides_run(
                results,
                "throughput",
                label,
                number,
                "worker",
                backend=backend,
                precision=precision,
                threads=results.threads,
                batch_size=results.batch_size,
                count=results.count,
                paths=files,
            )
            for name in files:
                results.card_rates.setdefault(label, {}).setdefault(name, []).append(
                    card["rates"][name]
                )
                results.rates.setdefault(label, {}).setdefault(name, []).append(
                    worker["rates"][name]
                )
            scores.setdefault(label, {}).update(worker["scores"])
    return scores


def warm_up(batch_size: int, count: int) -> None:
    """Load the model and run each batch shape once: a worker in its steady state."""
    from PIL import Image

    from nsfw_moderation.backends import get_backend

    backend = get_backend()
    for size in {min(batch_size, count), count % batch_size} - {0}:
        backend.classify([Image.new("RGB", (224, 224), (90, 120, 150))] * size)


def worker_round(files: list[bytes], name: str) -> tuple[float, dict[str, dict[str, float]]]:
    """Images/s from JPEG bytes saved through a model to stored verdicts (QUEUE="sync").

    The saves share one transaction, so on commit the first task claims a full
    batch, as a worker does with a backlog.
    """
    from django.db import transaction

    from nsfw_moderation.models import ModeratedImage, Status

    started = time.perf_counter()
    with transaction.atomic():
        photos = save_photos(files, name)
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


# Agreement ----------------------------------------------------------------------


def agreement_section(results: Results, scores: dict[str, dict[str, dict[str, float]]]) -> None:
    """Every configuration against transformers fp32 on the throughput images."""
    from nsfw_moderation.accuracy import Agreement

    reference = scores.get("transformers fp32")
    if reference is None:
        return
    titles = sorted(reference)
    for label, by_title in scores.items():
        agreement = Agreement([reference[t] for t in titles], [by_title[t] for t in titles])
        results.agreement[label] = (agreement.images, agreement.max_difference, agreement.flips())


def reference_section(
    results: Results,
    model_dir: Path,
    files: dict[str, list[bytes]],
    scores: dict[str, dict[str, dict[str, float]]],
) -> None:
    """Fast preprocessing against the model's own image processor, both fp32."""
    if "transformers fp32" not in scores:
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
    fp32 = scores["transformers fp32"]
    results.preprocess_diff = max(
        abs(reference[key][label] - fp32[key][label]) for key in reference for label in fp32[key]
    )


# The OpenVINO runtime's modes ---------------------------------------------------


def modes_section(results: Results, configs: list[tuple[str, str]], paths: list[Path]) -> None:
    """The forward pass alone on a batch of BATCH_SIZE: one request, or one per stream.

    Each hint in a fresh process of its own, alternating, round after round.
    """
    from benchmarks.sides import HINTS

    files = [str(path) for path in paths]
    for backend_name, precision in configs:
        if backend_name != "openvino":
            continue
        step(f"forward pass, openvino {precision}")
        for number in range(results.rounds):
            for hint in HINTS:
                side = sides_run(
                    results,
                    "runtime",
                    f"openvino {precision} {hint}",
                    number,
                    "forward",
                    precision=precision,
                    hint=hint,
                    threads=results.threads,
                    batch_size=results.batch_size,
                    paths=files,
                )
                results.modes.setdefault(precision, {}).setdefault(hint, []).append(side["rate"])


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


def cluster_env(backend: str, precision: str, workers: int = 1) -> dict[str, str]:
    return {
        **os.environ,
        "NSFW_BENCH_BACKEND": backend,
        "NSFW_BENCH_PRECISION": precision,
        "NSFW_BENCH_WORKERS": str(workers),
        "NSFW_BENCH_MAX_SCORE_DIFFERENCE": str(NO_LIMITS["MAX_SCORE_DIFFERENCE"]),
        "NSFW_BENCH_MAX_VERDICT_FLIPS": str(NO_LIMITS["MAX_VERDICT_FLIPS"]),
        "PYTHONUNBUFFERED": "1",
    }


@contextmanager
def qcluster(workdir: Path, env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    log = (workdir / "qcluster.log").open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "django", "qcluster"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        yield process
    finally:
        stop(process)
        log.close()


def latency_section(
    results: Results, workdir: Path, labels: str, files: list[bytes], uploads: int
) -> None:
    """:func:`cluster_latency` for each configuration, alternating, a fresh qcluster each round."""
    for number in range(results.rounds):
        for label in filter(None, labels.split(",")):
            step(f"qcluster, {label}, round {number + 1} of {results.rounds}")
            backend, precision = label.split()
            figures = cluster_latency(workdir, backend, precision, files, rounds=uploads)
            pid = int(figures.pop("pid"))
            side = {"section": "latency", "label": label, "round": number, "side": "qcluster"}
            record(results, {**side, "pid": pid})
            for name, value in figures.items():
                results.cluster.setdefault(label, {}).setdefault(name, []).append(value)


def cluster_latency(
    workdir: Path, backend: str, precision: str, files: list[bytes], rounds: int
) -> dict[str, float]:
    """Start-to-first-verdict, upload-to-verdict p50/p95 and peak RSS of a real qcluster."""
    first = save_photos(files[:1], "cluster-first")[0]
    started = time.perf_counter()
    with qcluster(workdir, cluster_env(backend, precision)) as process:
        results = {"start to first verdict s": wait_for_verdicts([first], started, workdir)}
        latencies = []
        for index in range(rounds):
            photo_data = files[(index + 1) % len(files)]
            begun = time.perf_counter()
            photo = save_photos([photo_data], f"cluster-{index}")[0]
            latencies.append(wait_for_verdicts([photo], begun, workdir))
        results["latency p50 s"] = statistics.median(latencies)
        results["latency p95 s"] = percentile(latencies, 95)
        results.update(peak_rss(process.pid))
        results["pid"] = process.pid
    clear()
    return results


def scale_section(
    results: Results, workdir: Path, label: str, files: list[bytes]
) -> dict[str, list[float]]:
    """A qcluster with two workers against ``tasks.classify`` in one process on every core.

    Alternating rounds over the same images, each side of each round in a
    fresh process: the one process is :func:`benchmarks.sides.drain`, the
    cluster is started before and stopped after each of its rounds, and timed
    from the saves' commit until the last verdict.
    """
    backend, precision = label.split()
    figures: dict[str, list[float]] = {"one process": [], "qcluster, 2 workers": []}
    for number in range(results.rounds):
        with backend_settings(backend, precision, **NO_LIMITS):
            save_photos(files, "one")
        side = sides_run(
            results,
            "scale",
            label,
            number,
            "drain",
            backend=backend,
            precision=precision,
            threads=cores(),
            count=len(files),
        )
        figures["one process"].append(side["rate"])
        clear()
        rate, pid = cluster_round(workdir, backend, precision, files)
        figures["qcluster, 2 workers"].append(rate)
        record(
            results,
            {"section": "scale", "label": label, "round": number, "side": "qcluster", "pid": pid},
        )
    return figures


def cluster_round(
    workdir: Path, backend: str, precision: str, data: list[bytes]
) -> tuple[float, int]:
    """Images/s of a fresh two-worker cluster on ``data``, and its main process's id."""
    from django.db import transaction

    from benchmarks import images

    warm = save_photos([images.jpeg((1024, 768), 9000 + i) for i in range(2)], "warm")
    with qcluster(workdir, cluster_env(backend, precision, workers=2)) as process:
        wait_for_verdicts(warm, time.perf_counter(), workdir)
        with transaction.atomic():
            photos = save_photos(data, "two")
        started = time.perf_counter()
        elapsed = wait_for_verdicts(photos, started, workdir, poll=SCALE_POLL)
    clear()
    return len(data) / elapsed, process.pid


def wait_for_verdicts(
    photos: list[Any], started: float, workdir: Path, timeout: float = 300, poll: float = 0.01
) -> float:
    """Seconds from ``started`` until every photo's row is done, looking every ``poll`` s."""
    from nsfw_moderation.models import ModeratedImage, Status

    ids = [str(photo.pk) for photo in photos]
    done = ModeratedImage.objects.filter(object_id__in=ids, status=Status.DONE)
    while done.count() < len(ids):
        if time.perf_counter() - started > timeout:
            log = (workdir / "qcluster.log").read_text(errors="replace")[-3000:]
            raise RuntimeError(f"No verdict after {timeout} s. qcluster log:\n{log}")
        time.sleep(poll)
    return time.perf_counter() - started


def peak_rss(root: int) -> dict[str, float]:
    """Peak RSS (VmHWM) in MiB: the cluster's main process and its largest descendant.

    And the RSS (VmRSS) that the worker with the highest peak has now.
    """
    workers = [pid for pid in descendants(root) if pid != root]
    peaks = {pid: memory(pid, "VmHWM") for pid in workers}
    largest = max(peaks, key=peaks.__getitem__, default=None)
    return {
        "main process peak RSS MiB": memory(root, "VmHWM"),
        "worker peak RSS MiB": peaks.get(largest, 0.0) if largest else 0.0,
        "worker RSS at the end MiB": memory(largest, "VmRSS") if largest else 0.0,
    }


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


def memory(pid: int, field: str) -> float:
    """A memory figure of ``/proc/PID/status`` (``VmHWM``, ``VmRSS``) in MiB; 0 if gone."""
    with suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
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
