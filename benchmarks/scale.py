#!/usr/bin/env python
"""How the host queries, the admin pages and the worker's claim grow with the tables.

    .venv/bin/python benchmarks/scale.py                       # 10k, 100k and 1M rows
    .venv/bin/python benchmarks/scale.py --sizes 10000 --rounds 3

On PostgreSQL (``--database-url``, a database of its own: it is created,
filled, and dropped at the end unless ``--keep``), for each size it builds
that many ``ModeratedImage`` rows, their host objects and their events in SQL
(``benchmarks/scale_data.py``), then times each figure warm, as a superuser:
the host query a public page runs, the review queue, the changelist, the
dashboard and a worker's claim. It writes the "At scale" section of
docs/benchmarks.md (the rest of the file is ``benchmarks/run.py``'s).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.report import write_section  # noqa: E402

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/nsfw_scale_bench"
#: The markers of this script's section of docs/benchmarks.md (run.py keeps it).
BEGIN, END = "<!-- scale:start -->", "<!-- scale:end -->"

#: (key, what is timed, target in ms at 1M rows or None).
FIGURES: list[tuple[str, str, float | None]] = [
    ("visible_uuid", '`visible(ScalePhoto.objects.order_by("-pk"), "image")[:50]`, UUID pks', 10),
    ("visible_int", "the same on `ScaleAvatar`, integer pks", 10),
    ("hidden_uuid", "`hidden(…)[:50]`, UUID pks", None),
    ("with_verdict_uuid", "`with_verdict(…)[:50]`, UUID pks", None),
    ("review_queue", "review queue, first page (flagged)", 200),
    ("changelist", "moderated images changelist", 300),
    ("changelist_flagged", "changelist, `?verdict__exact=flagged`", None),
    ("changelist_month", "changelist, this month (the date filter)", None),
    ("changelist_search", "changelist, a search (`?q=` an object id)", None),
    ("dashboard", "dashboard", 300),
    ("claim", "a worker's claim of a batch (`claim_batch`)", 50),
]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000", help="comma-separated rows")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds per figure (≥ 3)")
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args(argv)
    args.sizes = [int(size) for size in args.sizes.split(",")]
    if args.rounds < 3:
        parser.error("--rounds must be at least 3")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ["DJANGO_SETTINGS_MODULE"] = "benchmarks.scale_settings"
    os.environ["NSFW_BENCH_DATABASE_URL"] = args.database_url
    create_database(args.database_url)
    try:
        section = run(args)
    finally:
        if not args.keep:
            drop_database(args.database_url)
    write_section(args.output, section)
    print(f"Wrote the scaling section of {args.output}")
    return 0


def run(args: argparse.Namespace) -> str:
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connections

    from benchmarks import scale_data

    call_command("migrate", run_syncdb=True, verbosity=0)
    loads = [os.getloadavg()]
    reviewer = superuser()
    results: dict[int, dict[str, Any]] = {}
    for size in args.sizes:
        step(f"building {size:,} rows")
        started = time.perf_counter()
        scale_data.build(size, reviewer.pk)
        results[size] = {"build s": time.perf_counter() - started, **scale_data.table_sizes()}
        step(f"timing {size:,} rows")
        results[size].update(measure(reviewer, args.rounds))
        results[size]["plan"] = visible_plan()
    loads.append(os.getloadavg())
    section = render(args, results, loads)
    connections.close_all()
    return section


def step(message: str) -> None:
    print(f"… {message}", file=sys.stderr, flush=True)


# The database ------------------------------------------------------------------


def _admin_connection(url: str) -> tuple[Any, str]:
    from urllib.parse import unquote, urlparse

    import psycopg

    parts = urlparse(url)
    connection = psycopg.connect(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 5432,
        user=unquote(parts.username or "postgres"),
        password=unquote(parts.password or ""),
        dbname="postgres",
        autocommit=True,
    )
    return connection, unquote(parts.path.lstrip("/"))


def create_database(url: str) -> None:
    from psycopg import sql

    connection, name = _admin_connection(url)
    with connection:
        connection.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def drop_database(url: str) -> None:
    from django.db import connections
    from psycopg import sql

    connections.close_all()
    connection, name = _admin_connection(url)
    with connection:
        connection.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))


def superuser() -> Any:
    from django.contrib.auth import get_user_model

    model = get_user_model()
    return model.objects.filter(username="bench").first() or model.objects.create_superuser(
        "bench", "bench@example.com", "bench"
    )


# Timing ------------------------------------------------------------------------


def measure(user: Any, rounds: int) -> dict[str, tuple[float, float, float]]:
    """Each figure: (median, fastest, slowest) milliseconds over ``rounds`` warm rounds."""
    actions = figures(user)
    return {key: timed(actions[key], rounds) for key, _label, _target in FIGURES}


def timed(action: Callable[[], object], rounds: int) -> tuple[float, float, float]:
    action()  # warm: caches, the connection, the database's buffers
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        action()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), min(times), max(times)


def figures(user: Any) -> dict[str, Callable[[], object]]:
    from django.test import Client
    from django.urls import reverse
    from django.utils import timezone

    from benchmarks.benchapp.models import ScaleAvatar, ScalePhoto
    from nsfw_moderation.query import hidden, visible, with_verdict

    client = Client()
    client.force_login(user)
    changelist = reverse("admin:nsfw_moderation_moderatedimage_changelist")
    # What the created_at filter's "This month" link asks for.
    month = timezone.localtime().replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    following = (month + timedelta(days=32)).replace(day=1)
    this_month = urlencode({"created_at__gte": str(month), "created_at__lt": str(following)})
    searched = ScalePhoto.objects.order_by("pk").values_list("pk", flat=True)[0]

    def page(url: str) -> Callable[[], object]:
        return lambda: ok(client.get(url))

    return {
        "visible_uuid": lambda: list(visible(ScalePhoto.objects.order_by("-pk"), "image")[:50]),
        "visible_int": lambda: list(visible(ScaleAvatar.objects.order_by("-pk"), "image")[:50]),
        "hidden_uuid": lambda: list(hidden(ScalePhoto.objects.order_by("-pk"), "image")[:50]),
        "with_verdict_uuid": lambda: list(
            with_verdict(ScalePhoto.objects.order_by("-pk"), "image")[:50]
        ),
        "review_queue": page(reverse("admin:nsfw_moderation_moderatedimage_review")),
        "changelist": page(changelist),
        "changelist_flagged": page(f"{changelist}?verdict__exact=flagged"),
        "changelist_month": page(f"{changelist}?{this_month}"),
        "changelist_search": page(f"{changelist}?{urlencode({'q': str(searched)})}"),
        "dashboard": page(reverse("admin:nsfw_moderation_moderatedimage_dashboard")),
        "claim": claim,
    }


def ok(response: Any) -> Any:
    if response.status_code != 200:
        raise RuntimeError(f"{response.status_code} from {response.request['PATH_INFO']}")
    return response


def claim() -> None:
    """One claim of a batch, rolled back so every round claims from the same queue."""
    from django.db import transaction

    from nsfw_moderation.worker import outcomes

    with transaction.atomic():
        rows = outcomes.claim_batch(uuid.uuid4())
        transaction.set_rollback(True)
    if not rows:
        raise RuntimeError("Nothing was claimed: the benchmark's queue is empty.")


def visible_plan() -> str:
    from benchmarks.benchapp.models import ScalePhoto
    from nsfw_moderation.query import visible

    rows = visible(ScalePhoto.objects.order_by("-pk"), "image")[:50]
    return rows.explain(analyze=True, costs=False, timing=False, summary=False)


# The report ----------------------------------------------------------------------


def render(args: argparse.Namespace, results: dict[int, dict[str, Any]], loads: list[Any]) -> str:
    from django.db import connection

    from benchmarks import measure as machine

    sizes = list(results)
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('server_version')")
        (version,) = cursor.fetchone()
    head = "| | target | " + " | ".join(f"{size:,} rows" for size in sizes) + " |"
    lines = [head, "|---" * (len(sizes) + 2) + "|"]
    for key, label, target in FIGURES:
        goal = f"≤ {target:g} ms" if target else ""
        cells = " | ".join(_cell(results[size][key]) for size in sizes)
        lines.append(f"| {label} | {goal} | {cells} |")
    data = [
        _data_row("rows, events", results, lambda r: f"{r['rows'][0]:,}, {r['events'][0]:,}"),
        _data_row(
            "tables with indexes (MiB)",
            results,
            lambda r: f"{(r['rows'][1] + r['events'][1]) / 2**20:,.0f}",
        ),
        _data_row("build and VACUUM ANALYZE (s)", results, lambda r: f"{r['build s']:.0f}"),
    ]
    load = ", ".join(f"{a:.2f}/{b:.2f}/{c:.2f}" for a, b, c in loads)
    largest, now = sizes[-1], datetime.now(UTC)
    return f"""{BEGIN}
## At scale

Generated by `make benchmark-scale` (`.venv/bin/python benchmarks/scale.py
--sizes {",".join(map(str, sizes))} --rounds {args.rounds}`) on {now:%Y-%m-%d %H:%M} UTC:
PostgreSQL {version} with its default settings, on the same machine as the
database ({machine.cpu_named()}, {machine.cores()} cores, shared with other work;
load average 1/5/15 min at start and end: {load}).

For each size, `benchmarks/scale_data.py` fills the tables in SQL: a tenth of
the rows belong to `ScalePhoto` objects (UUID primary keys), the rest to
`ScaleAvatar` objects (integer keys), one row per object; 90% allowed, 5%
flagged, 2% approved, 1.5% rejected, 1% blocked, 0.5% queued; created over 60
days; an event per classification and per decision; then `VACUUM ANALYZE`.
Each figure is the median of {args.rounds} warm rounds in milliseconds, with the fastest
and slowest in brackets; pages are whole requests through Django's test client
as a superuser (session, middleware, template rendering), the claim is
`claim_batch()` in a transaction that is rolled back.

{chr(10).join(lines)}

| data | {" | ".join(f"{size:,} rows" for size in sizes)} |
|---|{"---|" * len(sizes)}
{chr(10).join(data)}

The plan of `visible(ScalePhoto.objects.order_by("-pk"), "image")[:50]` at
{largest:,} rows (`EXPLAIN (ANALYZE, COSTS off, TIMING off)`):

```
{results[largest]["plan"]}
```
{END}
"""


def _data_row(
    label: str, results: dict[int, dict[str, Any]], cell: Callable[[dict[str, Any]], str]
) -> str:
    return f"| {label} | " + " | ".join(cell(r) for r in results.values()) + " |"


def _cell(figure: tuple[float, float, float]) -> str:
    median, fastest, slowest = figure
    return f"{median:.1f} ({fastest:.1f}–{slowest:.1f})"


if __name__ == "__main__":
    sys.exit(main())
