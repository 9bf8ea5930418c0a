"""Render :class:`benchmarks.measure.Results` as docs/benchmarks.md.

Every figure is a median over rounds with its spread (lowest–highest); every
sentence of advice that the run did not measure says so.
"""

from __future__ import annotations

import json
import statistics
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

#: (configuration, size) → the lowest acceptable median ratio to the model card's usage.
RATIO_TARGETS = {
    ("transformers fp32", "1024×768"): 1.15,
    ("transformers bf16", "1024×768"): 2.0,
    ("transformers int8", "1024×768"): 2.5,
    ("openvino fp32", "1024×768"): 1.35,
    ("openvino bf16", "1024×768"): 2.6,
    ("openvino int8", "1024×768"): 4.5,
    ("openvino int8", "4000×3000"): 6.0,
}
#: What a target presupposes of the CPU: bf16 and int8 run several times
#: slower where the CPU has no instructions for them (any one of these).
TARGET_NEEDS = {
    "bf16": ("avx512_bf16", "amx_bf16"),
    "int8": ("avx512_vnni", "avx_vnni", "amx_int8"),
}
#: One line per CPU and way of measuring: what full runs of benchmarks/run.py found.
CPU_RESULTS = Path(__file__).with_name("cpu_results.json")
RSS_TARGET_MIB = 0.8 * 1000**3 / 1024**2  # 0.8 GB
START_TARGET_S = 3.0
SCALE_TARGET = 0.9


def write_section(path: Path, section: str) -> None:
    """Put ``section`` in place of ``path``'s section of the same name, or append it.

    A section starts with ``<!-- name:start -->`` and ends with ``<!-- name:end -->``;
    several benchmark scripts keep theirs in docs/benchmarks.md.
    """
    section = section.strip()
    start = section.splitlines()[0]
    end = start.replace(":start -->", ":end -->")
    text = path.read_text() if path.exists() else ""
    if start in text and end in text:
        text = text[: text.index(start)] + section + text[text.index(end) + len(end) :]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    path.write_text(text)


def _arguments() -> str:
    """The command line's options, less where the report was written."""
    shown, skip = [], False
    for arg in sys.argv[1:]:
        if skip or arg.startswith("--output"):
            skip = arg == "--output"
            continue
        shown.append(arg)
    return "".join(f" {arg}" for arg in shown)


def machine(results: Any) -> str:
    """The line every section ends with: the CPU it was measured on, and the threads."""
    from benchmarks.measure import cpu_named

    env = results.environment
    cpu = cpu_named(env.get("cpu", "unknown"), env.get("cpu flags", ""))
    return (
        f"*Measured on {cpu}; {env.get('cores', '?')} cores, "
        f"{results.threads} thread(s) on each side.*\n"
    )


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def spread(values: Sequence[float], digits: int = 2) -> str:
    """``median (lowest–highest)``; a single value alone."""
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{median(values):.{digits}f} ({min(values):.{digits}f}–{max(values):.{digits}f})"


def ratios(results: Any, label: str, size: str) -> list[float]:
    """Per round: the configuration's rate over the card's rate in the same round."""
    ours, card = results.rates[label][size], results.card_rates[label][size]
    return [a / b for a, b in zip(ours, card, strict=True)]


def scale_ratios(figures: dict[str, list[float]]) -> list[float]:
    """Per round: the cluster's rate over the one process's rate in the same round."""
    one, two = figures["one process"], figures["qcluster, 2 workers"]
    return [a / b for a, b in zip(two, one, strict=True)]


def render(results: Any) -> str:
    sections = [
        throughput(results),
        targets(results),
        by_cpu(results),
        agreement(results),
        runtime(results),
        decoding(results),
        save_path(results),
        cluster(results),
        scale(results),
        advice(results),
    ]
    # Figures hold for the CPU they were measured on: every section names it
    # (the table by CPU names one in each line).
    named = [
        section
        if section.startswith("## Results by CPU")
        else f"{section.rstrip()}\n\n{machine(results)}"
        for section in sections
        if section
    ]
    return "\n".join([header(results), environment(results), *named])


def header(results: Any) -> str:
    kind = "smoke run (`--quick`)" if results.quick else "full run"
    load = ", ".join(f"{a:.2f}/{b:.2f}/{c:.2f}" for a, b, c in results.load)
    s = results.spread
    spread_note = ""
    if s:
        spread_note = (
            f" Its classifier head is spread ({s['direction']} direction, "
            f"`benchmarks/model.spread_head`) so that scores vary with the image: on "
            f"{s['images']} typical images, 10% score below {s['score p10']:.2f} and 10% above "
            f"{s['score p90']:.2f}. The agreement figures below are measured on this model: "
            "they show how each precision moves scores that vary as a trained model's do, "
            "not the accuracy of the real model."
        )
    return f"""# Benchmarks

Generated by `.venv/bin/python benchmarks/run.py{_arguments()}` ({kind}) on
{datetime.now(UTC):%Y-%m-%d %H:%M} UTC. Model: a random-weight {results.model} built from
Falconsai/nsfw_image_detection's config and preprocessor config (the same
computation as the real model; its probabilities are not meaningful verdicts).{spread_note}
Load average (1/5/15 min) at start and end: {load}. Figures are medians over
{results.rounds} round(s), with the lowest and highest in brackets.
"""


def environment(results: Any) -> str:
    rows = "\n".join(f"| {key} | {value} |" for key, value in results.environment.items())
    rows += f"\n| threads, both sides | {results.threads} |"
    return f"## Machine\n\n| | |\n|---|---|\n{rows}\n"


def throughput(results: Any) -> str:
    sizes = list(results.file_sizes)
    head = "| | " + " | ".join(f"{s}: images/s | × card" for s in sizes) + " |"
    rule = "|---" * (2 * len(sizes) + 1) + "|"
    lines = [head, rule]
    card_all = {s: [r for rates in results.card_rates.values() for r in rates[s]] for s in sizes}
    card_cells = " | ".join(f"{spread(card_all[s])} | 1" for s in sizes)
    lines.append(f"| model card: `pipeline` per image file, fp32 (all rounds) | {card_cells} |")
    for label, rates in results.rates.items():
        cells = " | ".join(
            f"{spread(rates[s])} | {spread(ratios(results, label, s))}×" for s in sizes
        )
        lines.append(f"| worker path, {label} | {cells} |")
    files = ", ".join(f"{s}: {size / 1024:.0f} KiB" for s, size in results.file_sizes.items())
    return f"""## Throughput, end to end

{results.count} different JPEG files per size and round (median file size {files}).
**The model card's usage** opens each file from disk and calls
`pipeline("image-classification")` on it, one image at a time. **The worker
path** saves the same JPEG bytes through a registered model with QUEUE="sync"
(all saves in one transaction, so the first task after the commit claims a
full batch of BATCH_SIZE={results.batch_size}) and stops when every verdict is
stored: storage write and read, safe decoding (JPEG draft mode), batched
inference, verdicts and events. Both sides are warm and use {results.threads}
thread(s). For each configuration, rounds alternate: the card's usage, then
the worker path, **each side of each round in a fresh process of its own**
(`benchmarks/sides.py`; one round runs every size), so that neither side runs
beside the other's runtime: in one process, OpenVINO's thread pool slowed the
card's torch by about 35% on an AMD EPYC (Zen 4). The ratio is taken within
each round, so load on the machine affects both sides of it alike.

{chr(10).join(lines)}
"""


def targets(results: Any) -> str:
    if results.model != "ViT-B/16":
        return ""
    present = set(results.environment.get("cpu flags", "").split())
    lines = []
    for (label, size), goal in RATIO_TARGETS.items():
        if label in results.rates and size in results.rates[label]:
            values = ratios(results, label, size)
            line = _target(f"{label}, {size}: ≥ {goal}× the card", median(values), goal)
            lines.append(line + _unsupported(label, present))
    for label, figures in results.cluster.items():
        if label.startswith("openvino"):
            # The highest peak of any round; the median start.
            rss = max(figures["worker peak RSS MiB"]) * 1024**2 / 1000**3
            lines.append(_target(f"{label}: worker peak RSS ≤ 0.8 GB", -rss, -0.8, f"{rss:.2f} GB"))
            start = median(figures["start to first verdict s"])
            lines.append(
                _target(f"{label}: start to first verdict ≤ 3 s", -start, -3, f"{start:.2f} s")
            )
    for label, figures in results.scale.items():
        ratio = median(scale_ratios(figures))
        lines.append(_target(f"{label}: 2 workers ÷ one process ≥ {SCALE_TARGET}", ratio, 0.9))
    if not lines:
        return ""
    return f"""## Targets

Checked on this run's CPU only: a target met here says nothing of another CPU
family (see *Results by CPU* below). The ratio targets are stated for x86-64
CPUs with the instructions their precision runs on: a bf16 target for CPUs with
{" or ".join(TARGET_NEEDS["bf16"])}, an int8 target for CPUs with
{" or ".join(TARGET_NEEDS["int8"])}; the fp32 targets, the memory, start and
scaling targets for any x86-64 CPU with avx2.

{chr(10).join(lines)}
"""


def _unsupported(label: str, present: set[str]) -> str:
    """A note where this CPU lacks the instructions that a target was stated for."""
    needs = TARGET_NEEDS.get(label.split()[-1], ())
    if not needs or present & set(needs):
        return ""
    return f" — not stated for this CPU (none of {', '.join(needs)})"


def _target(name: str, value: float, goal: float, shown: str | None = None) -> str:
    verdict = "met" if value >= goal else "**missed**"
    return f"- {name}: {verdict} ({shown or f'{value:.2f}'})"


# Results by CPU ------------------------------------------------------------------

#: The ratio targets' columns of the table, in RATIO_TARGETS' order.
TARGET_KEYS = [f"{label}, {size}" for label, size in RATIO_TARGETS]


def cpu_record(results: Any) -> dict[str, Any]:
    """This run's line of :data:`CPU_RESULTS`: the CPU, the card and the ratio targets' figures."""
    env = results.environment
    from benchmarks.measure import flags_named

    card = [r for rates in results.card_rates.values() for r in rates.get("1024×768", [])]
    found = {
        f"{label}, {size}": round(median(ratios(results, label, size)), 2)
        for label, size in RATIO_TARGETS
        if size in results.rates.get(label, {})
    }
    return {
        "cpu": env.get("cpu", "unknown"),
        "flags": flags_named(env.get("cpu flags", "").split()),
        "cores": int(env.get("cores", 0)) or None,
        "date": f"{datetime.now(UTC):%Y-%m-%d}",
        "sides": "separate processes",
        "card": round(median(card), 2) if card else None,
        "ratios": found,
        "source": f"benchmarks/run.py{_arguments()}, {results.rounds} rounds",
    }


def update_cpu_results(path: Path, record: dict[str, Any]) -> list[dict[str, Any]]:
    """Put ``record`` in place of the line for the same CPU and way of measuring, or add it."""
    records: list[dict[str, Any]] = json.loads(path.read_text()) if path.exists() else []
    same = ("cpu", "flags", "sides")
    kept = [r for r in records if any(r.get(k) != record[k] for k in same)]
    records = [*kept, record]
    path.write_text(json.dumps(records, indent=1, ensure_ascii=False) + "\n")
    return records


def by_cpu(results: Any) -> str:
    """The ratio targets on every CPU a full run recorded (:data:`CPU_RESULTS`)."""
    if not results.by_cpu:
        return ""
    head = "| CPU | inference instructions | cores | date | sides | card, 1024×768 |"
    head += "".join(f" {key} |" for key in TARGET_KEYS) + " ratio targets missed |"
    rule = "|---" * (7 + len(TARGET_KEYS)) + "|"
    rows = [_cpu_row(record) for record in results.by_cpu]
    return f"""## Results by CPU

Full runs of this benchmark, one line per CPU and way of measuring (kept in
`benchmarks/cpu_results.json`; a full run replaces its own CPU's line). The
ratios are each worker path's median × the card at the size named, taken
within each round. *Same process*: the card and the worker path were measured
in one process, where the worker's runtime slowed the card (on an AMD EPYC,
Zen 4, openvino int8 read 6.8× there and 4.1× in processes of their own):
those ratios overstate the worker path by an amount that depends on the CPU.
*Separate processes*: each side of each round in a fresh process (this run).
A figure not measured on a CPU is a dash; *stated for* follows the rule in
*Targets*.

{head}
{rule}
{chr(10).join(rows)}
"""


def _cpu_row(record: dict[str, Any]) -> str:
    found = record.get("ratios", {})
    cells = "".join(f" {found[key]:.2f}× |" if key in found else " — |" for key in TARGET_KEYS)
    card = record.get("card")
    flags = set(record["flags"].split(";")[0].split())
    missed = []
    for (label, size), goal in RATIO_TARGETS.items():
        key = f"{label}, {size}"
        if key in found and found[key] < goal:
            note = " (not stated for this CPU)" if _unsupported(label, flags) else ""
            missed.append(f"{key}: {found[key]:.2f} < {goal}{note}")
    return (
        f"| {record['cpu']} | {record['flags']} | {record.get('cores') or '?'} "
        f"| {record['date']} | {record['sides']} | "
        f"{f'{card:.2f} images/s' if card else '—'} |{cells} "
        f"{'; '.join(missed) or 'none'} |"
    )


def agreement(results: Any) -> str:
    lines = []
    for label, (images, difference, flips) in results.agreement.items():
        if label == "transformers fp32":
            continue
        lines.append(f"| {label} | {images} | {difference:.4f} | {flips} |")
    guard = []
    for precision, g in results.guard.items():
        verdict = "accepted" if not g["problems"] else "refused: " + "; ".join(g["problems"])
        verdict = verdict.replace("|", "\\|")
        guard.append(
            f"| openvino {precision} | {g['images']} | {g['max difference']:.4f} | "
            f"{g['flips']} | {verdict} |"
        )
    preprocess = ""
    if results.preprocess_diff is not None:
        preprocess = (
            "\nThe fast preprocessing against the model's own image processor (both "
            f"transformers fp32): max |Δp| {results.preprocess_diff:.4f}.\n"
        )
    guard_table = ""
    if guard:
        guard_table = f"""
**The accuracy guard** (`nsfw_model optimize`, calibrated on the site's newest
classified images: here 1024×768 files saved and classified through the
worker path). Its figures are on those calibration images; the verdict is
what the guard decides at its default limits (no flip, max |Δp| ≤ 0.02). The
benchmark lifts the limits so that it can measure every precision.

| converted model | images | max \\|Δp\\| | flips | at the default limits |
|---|---|---|---|---|
{chr(10).join(guard)}
"""
    return f"""## Agreement

Against transformers fp32 on every image of the throughput run (the random
ViT with a spread head, see above): the largest difference in any
probability, and how many verdicts differ at FLAG_THRESHOLD 0.5.

| configuration | images | max \\|Δp\\| | verdict flips |
|---|---|---|---|
{chr(10).join(lines)}
{preprocess}{guard_table}"""


def runtime(results: Any) -> str:
    if not results.guard and not results.modes:
        return ""
    rows = [
        f"| {precision} | {g['inference precision']} | {g['size MB']:.1f} | {g['seconds']:.0f} |"
        for precision, g in results.guard.items()
    ]
    modes = [
        f"| {precision} | {spread(hints['LATENCY'])} | {spread(hints['THROUGHPUT'])} |"
        for precision, hints in results.modes.items()
    ]
    return f"""## The OpenVINO runtime

Converted models (`nsfw_model optimize`: conversion, int8 quantisation with
NNCF where asked, and the guard's comparison with fp32):

| precision | float layers run as | size on disk (MB) | seconds to convert and check |
|---|---|---|---|
{chr(10).join(rows)}

The forward pass alone, on a uint8 batch of BATCH_SIZE images, {results.threads}
thread(s): the `LATENCY` hint runs it as one request on one stream; `THROUGHPUT`
(what the backend uses) splits it into one request per stream, run at once.
Each hint of each round in a fresh process of its own, alternating.

| precision | LATENCY images/s | THROUGHPUT images/s |
|---|---|---|
{chr(10).join(modes)}
"""


def decoding(results: Any) -> str:
    lines = [
        f"| {name} | {seq * 1000:.1f} | {par * 1000:.1f} |"
        for name, (seq, par) in results.decode.items()
    ]
    return f"""## Decoding

Milliseconds per file for `imaging.load_frames` (JPEG draft mode, EXIF),
one after another and on a 2-thread pool (one pass each), in a process of
their own with no model loaded.

| size | sequential ms/file | 2 threads ms/file |
|---|---|---|
{chr(10).join(lines)}
"""


def save_path(results: Any) -> str:
    rows = []
    for variant, s in results.save.items():
        for key, label in (("plain", "not registered"), ("registered", "registered")):
            rows.append(f"| {label}, {variant} | {s[key + ' p50']:.2f} | {s[key + ' p95']:.2f} |")
        rows.append(f"| **added**, {variant} | {s['added p50']:.2f} | {s['added p95']:.2f} |")
    return f"""## Cost of `save()`

The same model (an `ImageField`, the same 1024×768 JPEG content, files on
disk) registered for moderation and not, saved alternately, in a process of
their own with no model loaded; QUEUE="django_q"
with the ORM broker on a file SQLite database (WAL). The registered save also
writes the `ModeratedImage` row and, on commit, the broker's task row.

| | p50 ms | p95 ms |
|---|---|---|
{chr(10).join(rows)}
"""


CLUSTER_HEADER = (
    "| | start to first verdict | upload to verdict p50 | p95 | worker peak RSS "
    "| worker RSS at the end | main peak RSS |"
)


def cluster(results: Any) -> str:
    lines = [
        f"| {label} | {spread(c['start to first verdict s'])} s "
        f"| {spread(c['latency p50 s'], 3)} s | {spread(c['latency p95 s'], 3)} s "
        f"| {spread(c['worker peak RSS MiB'], 0)} MiB "
        f"| {spread(c['worker RSS at the end MiB'], 0)} MiB "
        f"| {spread(c['main process peak RSS MiB'], 0)} MiB |"
        for label, c in results.cluster.items()
    ]
    return f"""## A real worker

`manage.py qcluster` with the settings in `benchmarks/settings.py` (one worker
using every core, ORM broker polling every 0.1 s), the model converted ahead
of time for openvino; one 1024×768 JPEG saved at a time, timed from before
`save()` until its row is done. Each round starts a fresh qcluster per
configuration, configurations in turn; figures are medians over
{results.rounds} round(s), lowest and highest in brackets. *Worker peak RSS* is the worker's highest
(`VmHWM`), loading included; *at the end*, what it holds after the last
verdict (`VmRSS`).

{CLUSTER_HEADER}
|---|---|---|---|---|---|---|
{chr(10).join(lines)}
"""


def scale(results: Any) -> str:
    lines = []
    for label, figures in results.scale.items():
        two, one = figures["qcluster, 2 workers"], figures["one process"]
        lines.append(
            f"| {label} | {spread(one)} | {spread(two)} | {spread(scale_ratios(figures))} |"
        )
    if not lines:
        return ""
    return f"""## Two workers against one process

{results.scale_count} different 1024×768 JPEG files queued at once: a backlog
that lasts seconds, so that the cluster's fixed start (the broker's poll,
handing the first tasks over) does not decide the ratio. The cluster's round
ends when the benchmark, looking every 0.05 s, sees the last verdict. *One process*:
`tasks.classify()` until the queue is empty, in a fresh process of its own each
round (`benchmarks/sides.py`), warmed first, with {results.threads} thread(s).
*qcluster*: django-q2's default worker count here (one per core), each worker
with its share of the cores (`TORCH_THREADS` unset: cores ÷ workers), started and warmed before the
saves' commit, timed until the last verdict. Rounds alternate.

| | one process, images/s | qcluster, 2 workers, images/s | ratio |
|---|---|---|---|
{chr(10).join(lines)}
"""


def advice(results: Any) -> str:
    peaks = [max(c["worker peak RSS MiB"]) for c in results.cluster.values()]
    rss = max(peaks, default=0.0)
    return f"""## Tuning workers

Measured above: throughput and agreement of each backend and precision on
this machine, the guard's verdicts, the cost of `save()`, a real worker's
start, latency and memory, and two workers against one process.

**Advice (not measured by this script):**

- Choose the backend and precision from the tables above on your own
  hardware, and let `nsfw_model optimize` judge a lower precision on your own
  model and images: the agreement on a random-weight model says how much each
  precision moves scores, not how often the real model changes its verdicts.
- GPU machines: the transformers backend, one worker per GPU, `DEVICE: "cuda"`,
  `PRECISION: "fp16"` and a larger `BATCH_SIZE` (no GPU on this machine).
- `timeout` must cover the slowest batch plus the model's first load, and
  `retry` must be larger than `timeout`, or django-q2 hands a task that is
  still running to a second worker. The settings used here: `timeout: 120`,
  `retry: 180`.
- Keep `recycle` high (500) and use `max_rss` as the safety net: the largest
  worker above peaked at {rss:.0f} MiB, so `max_rss` at about twice that
  ({int(max(rss * 2, 1000) * 1024):_} KiB) recycles only a worker that has really grown.
- `poll` (ORM broker) adds up to its value to every verdict's latency; 0.1 s
  here. Redis brokers do not poll.
- Never load or run the model in the qcluster's main process (for example in
  an `AppConfig.ready()`): its forked workers then hang. This app loads it
  lazily in the worker. Stop a cluster by sending SIGTERM to its main process
  only.
"""
