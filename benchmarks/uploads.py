#!/usr/bin/env python
"""Concurrent uploads while a worker writes verdicts: nothing lost, and what saves cost.

    .venv/bin/python benchmarks/uploads.py              # 3 rounds, writes its section of
                                                        # docs/benchmarks.md
    .venv/bin/python benchmarks/uploads.py --rounds 1 --no-write

Each round, on a fresh database: a real ``qcluster`` (one worker, the ORM
broker on SQLite, Redis with PostgreSQL) classifies while three uploader
processes (``tests/uploader.py``) save 60 photos each through the ORM. Then
the maintenance job (``manage.py nsfw_requeue --full``) reconciles, and the
round waits until every photo's current file has a row and every row is done.

Reported per database set-up: failed saves, save duration p50 / p99, uploads
left without a row before reconciliation, reconciliation time, uploads without
a row after it, and rows not done at the end: medians and ranges over rounds.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.report import write_section  # noqa: E402

SETUPS = ("sqlite-default", "sqlite-recommended", "postgres")
PHOTO_ROWS = """
    SELECT p.id, p.image, m.file_name, m.status
    FROM testapp_photo p
    LEFT JOIN nsfw_moderation_moderatedimage m
      ON m.object_id = CAST(p.id AS TEXT) AND m.field_name = 'image'
     AND m.content_type_id = (
         SELECT id FROM django_content_type WHERE app_label = 'testapp' AND model = 'photo')
"""


@dataclass
class Database:
    """Where a round's processes write: a SQLite file or a PostgreSQL database."""

    setup: str
    name: str
    database_url: str = ""

    def env(self) -> dict[str, str]:
        env = {"NSFW_TEST_DB_NAME": self.name}
        if self.setup == "postgres":
            env |= {"DATABASE_URL": self.database_url, "NSFW_TEST_BROKER": "redis"}
        else:
            env |= {"DATABASE_URL": "", "NSFW_TEST_BROKER": "orm"}
            env["NSFW_TEST_SQLITE_OPTIONS"] = (
                "default" if self.setup == "sqlite-default" else "recommended"
            )
        return env

    def rows(self) -> list[tuple[Any, ...]]:
        """``(photo id, current file, row's file or None, row's status or None)`` per photo."""
        if self.setup == "postgres":
            import psycopg

            with psycopg.connect(_postgres_dsn(self.database_url, self.name)) as connection:
                return list(connection.execute(PHOTO_ROWS).fetchall())
        with sqlite3.connect(self.name, timeout=60) as connection:
            return connection.execute(PHOTO_ROWS).fetchall()


def _postgres_dsn(url: str, name: str) -> str:
    from urllib.parse import urlparse

    parts = urlparse(url)
    return (
        f"host={parts.hostname or '127.0.0.1'} port={parts.port or 5432} "
        f"user={parts.username or 'postgres'} dbname={name}"
    )


def snapshot(database: Database) -> dict[str, int]:
    rows = database.rows()
    missing = sum(1 for _pk, image, file_name, _status in rows if file_name != image)
    not_done = sum(
        1 for _pk, image, file_name, status in rows if file_name == image and status != "done"
    )
    return {"photos": len(rows), "without_row": missing, "not_done": not_done}


def base_env(database: Database, workdir: Path, kind: str = "django_q") -> dict[str, str]:
    """The environment of a round's processes; ``kind``: the queue (tests/workers.py's KINDS)."""
    from tests.workers import queue_env

    run = uuid.uuid4().hex[:8]
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "NSFW_TEST_MEDIA_ROOT": str(workdir / "media"),
        "NSFW_TEST_BACKEND": "tests.backends.ColourBackend",
        "NSFW_TEST_CLUSTER_NAME": f"nsfw-load-{run}",
        "NSFW_TEST_QUEUE_NAME": f"nsfw-load-{run}",
        "PYTHONUNBUFFERED": "1",
        **queue_env(kind),
        **database.env(),
    }


def manage(env: Mapping[str, str], *args: str, timeout: float = 300) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args, "--settings=tests.settings"],
        cwd=ROOT,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if result.returncode:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stderr[-3000:]}")
    return result.stdout


def run_round(
    database: Database,
    workdir: Path,
    *,
    uploaders: int = 3,
    per_uploader: int = 60,
    migrate: bool = True,
    timeout: float = 240,
    kind: str = "django_q",
) -> dict[str, Any]:
    """One round on the queue ``kind``; returns its measurements (raises if it never settles)."""
    env = base_env(database, workdir, kind)
    if migrate:
        manage(env, "migrate", "--verbosity=0")
    from tests.workers import Cluster

    with Cluster(workdir / "worker.log", base_env=env, kind=kind):
        processes = [
            subprocess.Popen(
                [sys.executable, "-m", "tests.uploader", str(per_uploader), f"u{i}"],
                cwd=ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for i in range(uploaders)
        ]
        reports = [json.loads(p.communicate(timeout=timeout)[0]) for p in processes]
        before = snapshot(database)
        started = time.perf_counter()
        manage(env, "nsfw_requeue", "--full", "--older-than=0")
        reconciliation = time.perf_counter() - started
        after_reconciliation = snapshot(database)
        final = _settle(database, env, timeout)
    durations = sorted(d for report in reports for d in report["durations"])
    return {
        "saves": len(durations),
        "failed_saves": sum(len(report["failures"]) for report in reports),
        "save_p50_ms": 1000 * _quantile(durations, 0.50),
        "save_p99_ms": 1000 * _quantile(durations, 0.99),
        "without_row_before": before["without_row"],
        "reconciliation_s": reconciliation,
        "without_row_after": after_reconciliation["without_row"],
        "photos": final["photos"],
        "not_done": final["not_done"] + final["without_row"],
        "uploaders_with_model_code": sum(bool(report["model_modules"]) for report in reports),
    }


def _settle(database: Database, env: Mapping[str, str], timeout: float) -> dict[str, int]:
    """Wait for the worker, running the maintenance job as its Schedule would."""
    deadline = time.monotonic() + timeout
    while True:
        state = snapshot(database)
        if (state["not_done"] == 0 and state["without_row"] == 0) or time.monotonic() > deadline:
            return state
        time.sleep(2)
        manage(env, "nsfw_requeue", "--older-than=5")


def _quantile(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))] if values else 0.0


# --- The benchmark ---------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--setups", default="sqlite-default,sqlite-recommended,postgres")
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--no-write", action="store_true", help="print, do not edit the docs")
    args = parser.parse_args(argv)
    results: dict[str, list[dict[str, Any]]] = {}
    load = [os.getloadavg()]
    for setup in args.setups.split(","):
        results[setup] = []
        for _round in range(args.rounds):
            with fresh_database(setup, args.database_url) as (database, workdir):
                outcome = run_round(database, workdir)
            print(setup, json.dumps(outcome), flush=True)
            results[setup].append(outcome)
    load.append(os.getloadavg())
    section = report(results, args, load)
    print(section)
    if not args.no_write:
        write_section(ROOT / "docs" / "benchmarks.md", section)
    return 0


@contextmanager
def fresh_database(setup: str, database_url: str) -> Iterator[tuple[Database, Path]]:
    with tempfile.TemporaryDirectory(prefix="nsfw-uploads-") as temporary:
        workdir = Path(temporary)
        if setup != "postgres":
            yield Database(setup, str(workdir / "db.sqlite3")), workdir
            return
        import psycopg

        name = f"nsfw_uploads_{uuid.uuid4().hex[:8]}"
        admin = _postgres_dsn(database_url, "postgres")
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        try:
            yield Database(setup, name, database_url), workdir
        finally:
            with psycopg.connect(admin, autocommit=True) as connection:
                connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def report(
    results: Mapping[str, list[dict[str, Any]]],
    args: argparse.Namespace,
    load: Sequence[tuple[float, float, float]],
) -> str:
    import platform

    def cell(rows: list[dict[str, Any]], key: str, fmt: Callable[[float], str]) -> str:
        values = [row[key] for row in rows]
        median = statistics.median(values)
        return (
            fmt(median)
            if min(values) == max(values)
            else (f"{fmt(median)} ({fmt(min(values))}–{fmt(max(values))})")
        )

    whole = lambda v: f"{v:.0f}"  # noqa: E731
    from benchmarks import measure

    machine = f"{measure.cpu_named()}, {measure.cores()} cores"
    lines = [
        "<!-- uploads:start -->",
        "## Concurrent uploads: nothing lost",
        "",
        f"`benchmarks/uploads.py --rounds {args.rounds}` on {machine}, "
        f"Python {platform.python_version()}. Each round: a fresh database, "
        "one `qcluster` worker (ColourBackend, so the worker writes verdicts as fast as it can), "
        "3 uploader processes × 60 saves, then `nsfw_requeue --full` (the maintenance job: "
        "reconciliation). Median of the rounds, range in brackets. Load average "
        "(1/5/15 min) at start and end: "
        + ", ".join("/".join(f"{x:.2f}" for x in sample) for sample in load)
        + ".",
        "",
        "| database | failed saves | save p50 (ms) | save p99 (ms) | uploads without a row "
        "before reconciliation | reconciliation (s) | without a row after "
        "| rows not done at the end |",
        "|---|---|---|---|---|---|---|---|",
    ]
    names = {
        "sqlite-default": "SQLite, Django's default options",
        "sqlite-recommended": "SQLite, recommended options (W003)",
        "postgres": "PostgreSQL + Redis broker",
    }
    for setup, rows in results.items():
        lines.append(
            f"| {names[setup]} | {cell(rows, 'failed_saves', whole)} "
            f"| {cell(rows, 'save_p50_ms', lambda v: f'{v:.1f}')} "
            f"| {cell(rows, 'save_p99_ms', lambda v: f'{v:.1f}')} "
            f"| {cell(rows, 'without_row_before', whole)} "
            f"| {cell(rows, 'reconciliation_s', lambda v: f'{v:.2f}')} "
            f"| {cell(rows, 'without_row_after', whole)} | {cell(rows, 'not_done', whole)} |"
        )
    lines += [
        "",
        "The reconciliation time includes starting `manage.py` (Django set-up, about a second).",
        "<!-- uploads:end -->",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
