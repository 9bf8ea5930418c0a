#!/usr/bin/env python
"""Each queue's two worker processes against the same code in one process on every core.

    .venv/bin/python benchmarks/queues.py                       # every queue, 3 rounds;
                                                                # writes its section of
                                                                # docs/benchmarks.md
    .venv/bin/python benchmarks/queues.py --queues tasks-db --rounds 1 --images 48 --no-write
    .venv/bin/python benchmarks/queues.py --backend transformers --model /path/to/model

Per queue and round, each side on a fresh database (SQLite, or PostgreSQL with
``--database-url``) and in processes of its own, rounds alternating:

- *one process*: ``tasks.classify()`` until nothing is queued, in one process
  with every core (``TORCH_THREADS`` = cores), warm;
- *2 workers*: the queue's real workers, two processes (a qcluster with two
  workers, a Celery prefork pool of two, two ``db_worker``s, two
  ``rqworker``s), each with half the cores, warmed on two uploads first; then
  the images are saved in one transaction (one task each, sent on commit) and
  timed from the commit until the last verdict.

The issue's target: 2 workers reach ≥ 0.9 of one process on every queue.
RQ and Celery need the local Redis (``NSFW_TEST_QUEUE_REDIS_URL``, default db 5).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.report import write_section  # noqa: E402
from benchmarks.uploads import Database, base_env, fresh_database, manage, snapshot  # noqa: E402

KINDS = ("django_q", "tasks-db", "tasks-rq", "celery")
IMAGE_SIZE = (1024, 768)


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


# --- The sides, each run in a process of its own ----------------------------------------


def side_save(count: int, seed: int) -> None:
    """Save ``count`` photos in one transaction; print the time of the commit."""
    import django

    django.setup()
    from django.core.files.base import ContentFile
    from django.db import transaction

    from benchmarks import images
    from tests.testapp.models import Photo

    files = [images.jpeg(IMAGE_SIZE, seed + i) for i in range(count)]
    with transaction.atomic():
        for i, data in enumerate(files):
            Photo.objects.create(title=f"b{i}", image=ContentFile(data, name=f"b{seed + i}.jpg"))
        # Measured from here: the tasks go out once this transaction commits.
        committed = time.time()
    print(json.dumps({"committed": committed}))


def side_drain() -> None:
    """``tasks.classify()`` until nothing is queued, warm; print images/s."""
    import django

    django.setup()
    from PIL import Image

    from nsfw_moderation import tasks
    from nsfw_moderation.backends import default_threads, get_backend
    from nsfw_moderation.models import ModeratedImage, Status

    get_backend().classify([Image.new("RGB", (224, 224), (90, 120, 150))])  # load, warm
    count = ModeratedImage.objects.filter(status=Status.QUEUED).count()
    started = time.perf_counter()
    while tasks.classify()["claimed"]:
        pass
    elapsed = time.perf_counter() - started
    print(json.dumps({"rate": count / elapsed, "threads": default_threads()}))


def run_side(env: Mapping[str, str], *args: str) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, __file__, "--side", *args],
        cwd=ROOT,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=900,
    )
    if result.returncode:
        raise RuntimeError(f"side {args} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


# --- Rounds ----------------------------------------------------------------------------


def one_process_round(database: Database, workdir: Path, kind: str, options: Any) -> float:
    # Saved with tasks that nobody runs (rows of the database's task table, no
    # db_worker): the one process finds the rows by itself, as a batch does.
    env = side_env(database, workdir, "tasks-db", options, threads=cores())
    manage(env, "migrate", "--verbosity=0")
    run_side(env, "save", str(options.images), "0")
    return float(run_side(env, "drain")["rate"])


def two_workers_round(database: Database, workdir: Path, kind: str, options: Any) -> float:
    env = side_env(database, workdir, kind, options, threads=max(1, cores() // 2))
    manage(env, "migrate", "--verbosity=0")
    with workers(kind, env, workdir):
        # Warm: a batch for each worker, so that both have loaded the model.
        run_side(env, "save", str(2 * options.batch_size), "90000")
        wait_all_done(database, timeout=600)
        committed = run_side(env, "save", str(options.images), "0")["committed"]
        wait_all_done(database, timeout=900)
        elapsed = time.time() - committed
    return options.images / elapsed


def side_env(
    database: Database, workdir: Path, kind: str, options: Any, *, threads: int
) -> dict[str, str]:
    env = base_env(database, workdir, kind)
    env |= {"NSFW_TEST_BACKEND": options.backend, "NSFW_TEST_TORCH_THREADS": str(threads)}
    env |= {"NSFW_TEST_BATCH_SIZE": str(options.batch_size), "NSFW_TEST_WORKERS": "2"}
    if options.model:
        env["NSFW_TEST_MODEL_DIR"] = options.model
    return env


@contextmanager
def workers(kind: str, env: dict[str, str], workdir: Path) -> Iterator[None]:
    """Two worker processes of ``kind``: one process with two children, or two processes."""
    from tests.workers import Cluster

    count = 1 if kind in ("django_q", "celery") else 2
    with ExitStack() as stack:
        for number in range(count):
            log = workdir / f"worker-{number}.log"
            stack.enter_context(Cluster(log, base_env=env, kind=kind))
        yield


def wait_all_done(database: Database, timeout: float, poll: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while True:
        state = snapshot(database)
        if state["not_done"] == 0 and state["without_row"] == 0:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"Not done after {timeout} s: {state}")
        time.sleep(poll)


def measure_queue(kind: str, options: Any) -> dict[str, list[float]]:
    figures: dict[str, list[float]] = {"one process": [], "2 workers": []}
    for _round in range(options.rounds):
        for side, run in (("one process", one_process_round), ("2 workers", two_workers_round)):
            with fresh_database(options.setup, options.database_url) as (database, workdir):
                figures[side].append(run(database, workdir, kind, options))
        print(kind, json.dumps({side: values[-1] for side, values in figures.items()}), flush=True)
    return figures


# --- Report ----------------------------------------------------------------------------


def cell(values: list[float]) -> str:
    median = statistics.median(values)
    if len(values) == 1 or min(values) == max(values):
        return f"{median:.2f}"
    return f"{median:.2f} ({min(values):.2f}–{max(values):.2f})"


def report(results: Mapping[str, dict[str, list[float]]], options: Any) -> str:
    from benchmarks import measure

    lines = [
        "<!-- queues:start -->",
        "## Two workers against one process, on each queue",
        "",
        f"`.venv/bin/python benchmarks/queues.py{''.join(' ' + a for a in sys.argv[1:])}`, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
        f"{measure.cpu_named()}, {cores()} cores, backend `{options.backend}`, "
        f"{options.images} {IMAGE_SIZE[0]}×{IMAGE_SIZE[1]} JPEG files per round, "
        f"`BATCH_SIZE` {options.batch_size}, {options.setup} database, "
        f"load average {os.getloadavg()[0]:.2f} at the end.",
        "",
        "*One process*: `tasks.classify()` until nothing is queued, on every core. *2 workers*:",
        "the queue's own workers, two processes with half the cores each, timed from the",
        "commit of the uploads (one task each) until the last verdict. Medians (ranges) of",
        f"{options.rounds} rounds, each side in fresh processes on a fresh database.",
        "",
        "| queue | one process, images/s | 2 workers, images/s | ratio |",
        "|---|---|---|---|",
    ]
    for kind, figures in results.items():
        pairs = zip(figures["one process"], figures["2 workers"], strict=True)
        ratios = [two / one for one, two in pairs]
        lines.append(
            f"| {kind} | {cell(figures['one process'])} | {cell(figures['2 workers'])} "
            f"| {cell(ratios)} |"
        )
    lines.append("<!-- queues:end -->")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--side", nargs="+", help=argparse.SUPPRESS)
    parser.add_argument("--queues", default=",".join(KINDS))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--images", type=int, default=144)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--backend", default="tests.backends.ColourBackend")
    parser.add_argument("--model", default="", help="the model folder (default: the tiny ViT)")
    parser.add_argument("--database-url", default="", help="PostgreSQL (default: SQLite)")
    parser.add_argument("--no-write", action="store_true", help="print, do not edit the docs")
    options = parser.parse_args(argv)
    if options.side:
        return run_side_here(options.side)
    options.setup = "postgres" if options.database_url else "sqlite-recommended"
    os.environ.setdefault("NSFW_TEST_QUEUE_NAME", f"nsfw-bench-{uuid.uuid4().hex[:8]}")
    results = {kind: measure_queue(kind, options) for kind in options.queues.split(",")}
    section = report(results, options)
    print(section)
    if not options.no_write:
        write_section(ROOT / "docs" / "benchmarks.md", section)
    return 0


def run_side_here(side: list[str]) -> int:
    if side[0] == "save":
        side_save(int(side[1]), int(side[2]))
    else:
        side_drain()
    return 0


if __name__ == "__main__":
    sys.exit(main())
