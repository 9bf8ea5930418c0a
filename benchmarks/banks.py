#!/usr/bin/env python
"""Hash-bank matching: one lookup in a 1,000,000-hash bank; retroactive matching of 100,000 rows.

    .venv/bin/python benchmarks/banks.py            # writes its section of docs/benchmarks.md
    .venv/bin/python benchmarks/banks.py --quick    # smaller sizes, printed only: a smoke run

Lookups (within distance 31, random query hashes plus planted near matches):

- ``nsfw_moderation.hashing.Index`` (numpy multi-index hashing, what the worker uses);
- a numpy scan of every hash (``bitwise_count`` of the XOR);
- faiss-cpu's ``IndexBinaryFlat`` ``range_search`` and ``IndexBinaryMultiHash``, if faiss is
  installed (it is not a dependency).

Retroactive matching: ``banks.match_stored`` end to end on a file SQLite database
(benchmarks/settings.py) holding 100,000 classified rows, against a new bank of
1,000 entries of which 100 are near stored rows (so 100 rows get blocked, each
with its event). Each round puts those rows back first.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.measure import cpu_named  # noqa: E402
from benchmarks.report import write_section  # noqa: E402
from nsfw_moderation import hashing  # noqa: E402

DISTANCE = 31
START, END = "<!-- banks:start -->", "<!-- banks:end -->"


def random_words(count: int, seed: int) -> np.ndarray:
    raw = np.random.default_rng(seed).integers(0, 256, size=(count, 32), dtype=np.uint8)
    return raw.view(">u8").astype(np.uint64).reshape(-1, 4)


def near(words: np.ndarray, bits: int, seed: int) -> np.ndarray:
    """Copies of ``words`` with ``bits`` random bits flipped each."""
    rng = np.random.default_rng(seed)
    out = words.copy()
    for row in out:
        for bit in rng.choice(256, bits, replace=False):
            row[int(bit) // 64] ^= np.uint64(1 << (63 - int(bit) % 64))
    return out


def hexes(words: np.ndarray) -> list[str]:
    return [row.astype(">u8").tobytes().hex() for row in words]


def rounds(run: Callable[[], object], count: int) -> list[tuple[float, float]]:
    """Wall-clock and CPU (this process) seconds of each round."""
    times = []
    for _ in range(count):
        wall, cpu = time.perf_counter(), time.process_time()
        run()
        times.append((time.perf_counter() - wall, time.process_time() - cpu))
    return times


def summary(per_round: list[tuple[float, float]], per: int, unit: float = 1e3) -> str:
    """Median (min–max) of the rounds, wall clock, then CPU time."""
    cells = []
    for which in (0, 1):
        values = [times[which] / per * unit for times in per_round]
        cells.append(f"{statistics.median(values):.3f} ({min(values):.3f}–{max(values):.3f})")
    return " | ".join(cells)


def lookups(size: int, queries: int, count: int) -> list[tuple[str, str, str]]:
    bank = random_words(size, 0)
    planted = near(bank[: queries // 2], 20, 1)
    query_words = np.concatenate([planted, random_words(queries - len(planted), 2)])
    query_hexes = hexes(query_words)
    results = []
    start = time.perf_counter()
    index = hashing.Index(bank, np.arange(size))
    build = time.perf_counter() - start
    expected = [index.search(q, DISTANCE) for q in query_hexes]
    assert all(expected[i][0][0] == i for i in range(len(planted)))
    results.append(
        (
            "`hashing.Index` (numpy multi-index)",
            summary(
                rounds(lambda: [index.search(q, DISTANCE) for q in query_hexes], count), queries
            ),
            f"{build:.2f} s",
        )
    )

    def scan() -> None:
        for q in query_words:
            found = np.bitwise_count(bank ^ q).sum(axis=1, dtype=np.uint16)
            np.flatnonzero(found <= DISTANCE)

    results.append(("numpy scan of every hash", summary(rounds(scan, count), queries), "–"))
    results.extend(faiss_lookups(bank, query_words, count))
    return results


def faiss_lookups(
    bank: np.ndarray, query_words: np.ndarray, count: int
) -> list[tuple[str, str, str]]:
    try:
        import faiss
    except ImportError:
        return [("faiss-cpu", "not installed | –", "–")]
    data = bank.astype(">u8").view(np.uint8).reshape(-1, 32)
    queries = query_words.astype(">u8").view(np.uint8).reshape(-1, 32)
    results = []
    start = time.perf_counter()
    flat = faiss.IndexBinaryFlat(256)
    flat.add(data)
    build = time.perf_counter() - start

    def one_by_one(index: object) -> Callable[[], None]:
        return lambda: [index.range_search(q[None, :], DISTANCE + 1) for q in queries]  # type: ignore[attr-defined]

    results.append(
        (
            "faiss `IndexBinaryFlat.range_search`",
            summary(rounds(one_by_one(flat), count), len(queries)),
            f"{build:.2f} s",
        )
    )
    start = time.perf_counter()
    multi = faiss.IndexBinaryMultiHash(256, 16, 16)
    multi.add(data)
    multi.nflip = 1
    build = time.perf_counter() - start
    results.append(
        (
            "faiss `IndexBinaryMultiHash` (16×16 bits, nflip=1)",
            summary(rounds(one_by_one(multi), count), len(queries)),
            f"{build:.2f} s",
        )
    )
    return results


def hashing_cost(count: int) -> list[tuple[str, str]]:
    """CPU and wall time of one PDQ hash (``hashing.pdq``, scaling included) by frame size."""
    from PIL import Image

    results = []
    for size in ((512, 512), (1024, 768), (4000, 3000)):
        image = Image.effect_noise(size, 40).convert("RGB")
        results.append(
            (
                f"{size[0]}×{size[1]}",
                summary(rounds(lambda image=image: hashing.pdq(image), count), 1),
            )
        )
    return results


def retroactive(stored: int, entries: int, count: int) -> tuple[str, int]:
    workdir = Path(tempfile.mkdtemp(prefix="nsfw-banks-bench-"))
    os.environ["NSFW_BENCH_DB"] = str(workdir / "bench.sqlite3")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.contenttypes.models import ContentType
    from django.core.management import call_command

    from benchmarks.benchapp.models import ModeratedPhoto
    from nsfw_moderation import banks
    from nsfw_moderation.models import BankEntry, HashBank, ModeratedImage, Status, Verdict

    settings.NSFW_MODERATION = {**settings.NSFW_MODERATION, "QUEUE": "sync"}
    call_command("migrate", verbosity=0)
    content_type = ContentType.objects.get_for_model(ModeratedPhoto)
    rows = hexes(random_words(stored, 3))
    ModeratedImage.objects.bulk_create(
        (
            ModeratedImage(
                content_type=content_type,
                object_id=str(i),
                field_name="image",
                file_name=f"{i}.jpg",
                status=Status.DONE,
                verdict=Verdict.ALLOWED,
                pdq=value,
                pdq_quality=100,
            )
            for i, value in enumerate(rows)
        ),
        batch_size=2000,
    )
    hits = entries // 10
    new = hexes(near(hashing.to_words(rows[:hits]), 20, 4)) + hexes(random_words(entries - hits, 5))
    bank = HashBank.objects.create(name="import", action=HashBank.Action.BLOCK)
    BankEntry.objects.bulk_create(BankEntry(bank=bank, pdq=value, quality=100) for value in new)

    def run() -> None:
        ModeratedImage.objects.filter(verdict=Verdict.BLOCKED).update(verdict=Verdict.ALLOWED)
        banks.forget_index()
        assert banks.match_stored(bank.pk)["matched"] == hits

    return summary(rounds(run, count), 1, unit=1), hits


def machine() -> str:
    cpu = cpu_named()
    load = "/".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{cpu}, {os.cpu_count()} logical CPUs (shared), Python {platform.python_version()}, "
        f"numpy {np.__version__}; load average at start {load}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "benchmarks.md")
    args = parser.parse_args(argv)
    size, stored = (50_000, 5_000) if args.quick else (1_000_000, 100_000)
    entries = 1_000
    lines = [
        START,
        "## Hash banks",
        "",
        f"Machine: {machine()}.",
        "Command: `.venv/bin/python benchmarks/banks.py`"
        + (" --quick" if args.quick else "")
        + f"; {args.rounds} rounds, median (min–max of the rounds). CPU time is this "
        "process's: on a shared machine the wall clock also counts other work.",
        "",
        f"One lookup within distance {DISTANCE} in a bank of {size:,} random PDQ hashes "
        "(200 queries a round: half of them 20 bits from an entry, half random):",
        "",
        "| matcher | ms per lookup, wall clock | ms per lookup, CPU | index build |",
        "|---|---|---|---|",
    ]
    for name, result, build in lookups(size, 200, args.rounds):
        lines.append(f"| {name} | {result} | {build} |")
    lines += [
        "",
        "PDQ hash of one decoded frame (`hashing.pdq`, which first scales frames larger "
        f"than {hashing.HASH_SIZE} pixels down to fit):",
        "",
        "| frame | ms, wall clock | ms, CPU |",
        "|---|---|---|",
    ]
    lines += [f"| {size} | {result} |" for size, result in hashing_cost(args.rounds)]
    result, hits = retroactive(stored, entries, max(3, args.rounds // 2 + 1))
    lines += [
        "",
        f"Retroactive matching (`banks.match_stored`, file SQLite) of {stored:,} stored rows "
        f"against a new {entries:,}-entry block bank, {hits} rows blocked with their events, "
        f"seconds, wall clock | CPU: {result}.",
        END,
    ]
    section = "\n".join(lines)
    print(section)
    if not args.quick:
        write_section(args.output, section)


if __name__ == "__main__":
    main()
