#!/usr/bin/env python
"""The worker path of this checkout against another revision's, in alternating processes.

    .venv/bin/python benchmarks/compare.py --against e292b99 \\
        --configs "transformers fp32 1024x768,openvino int8 1024x768"

For a change to the worker's own code: each side runs in a process of its own
(the other revision from a temporary ``git worktree``), one after the other,
``--pairs`` times per configuration, so that load on the machine falls on both
sides alike. Each process saves the same JPEG files through a registered model
with QUEUE="sync" (``benchmarks/measure.worker_round``, as ``benchmarks/run.py``
does), warm, with the same threads, and times ``--rounds`` rounds. Reported:
the median images/s of all rounds of each side, lowest and highest in brackets,
and the machine's load average at the start and end.

The model is the one ``benchmarks/run.py`` built (``benchmarks/.model``); an
openvino configuration needs a converted model in ``--openvino-cache`` (from
``benchmarks/run.py --workdir``: its ``openvino`` folder).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--against", required=True, help="the other revision (a commit or tag)")
    parser.add_argument("--configs", default="transformers fp32 1024x768,openvino int8 1024x768")
    parser.add_argument("--pairs", type=int, default=3, help="processes per side and configuration")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per process")
    parser.add_argument("--images", type=int, default=24)
    parser.add_argument("--threads", type=int, default=None, help="default: every core")
    parser.add_argument("--model-dir", type=Path, default=ROOT / "benchmarks" / ".model")
    parser.add_argument("--openvino-cache", type=Path, default=None)
    parser.add_argument("--side", nargs=4, help=argparse.SUPPRESS)  # root backend precision size
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.side:
        print(json.dumps(side(args, *args.side)))
        return 0
    with tempfile.TemporaryDirectory(prefix="nsfw-compare-") as temporary:
        other = Path(temporary) / "other"
        git("worktree", "add", "--detach", "--quiet", str(other), args.against)
        try:
            lines = compare(args, other)
        finally:
            git("worktree", "remove", "--force", str(other))
    print("\n".join(lines))
    return 0


def compare(args: argparse.Namespace, other: Path) -> list[str]:
    head = git("rev-parse", "--short", "HEAD").strip() + (
        " and changes" if git("status", "--porcelain", "--untracked-files=no") else ""
    )
    against = git("rev-parse", "--short", args.against).strip()
    lines = [
        f"load average at start: {'/'.join(f'{x:.2f}' for x in os.getloadavg())}",
        "",
        f"| configuration | {against}: images/s | {head}: images/s | ratio of medians |",
        "|---|---|---|---|",
    ]
    for config in filter(None, args.configs.split(",")):
        rates: dict[Path, list[float]] = {other: [], ROOT: []}
        for _ in range(args.pairs):
            for root in rates:
                rates[root] += run_side(args, root, config.split())
        before, after = statistics.median(rates[other]), statistics.median(rates[ROOT])
        lines.append(
            f"| {config} | {spread(rates[other])} | {spread(rates[ROOT])} | {after / before:.2f} |"
        )
    lines += ["", f"load average at end: {'/'.join(f'{x:.2f}' for x in os.getloadavg())}"]
    return lines


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} ({min(values):.2f}–{max(values):.2f})"


def run_side(args: argparse.Namespace, root: Path, config: list[str]) -> list[float]:
    command = [sys.executable, str(Path(__file__).resolve()), "--against", args.against]
    command += ["--rounds", str(args.rounds), "--images", str(args.images)]
    command += ["--model-dir", str(args.model_dir)]
    if args.threads:
        command += ["--threads", str(args.threads)]
    if args.openvino_cache:
        command += ["--openvino-cache", str(args.openvino_cache)]
    command += ["--side", str(root), *config]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return list(json.loads(output.strip().splitlines()[-1])["rates"])


def side(args: argparse.Namespace, root: str, backend: str, precision: str, size: str) -> dict:
    """Rounds of the worker path with the code in ``root``, in this process."""
    # This checkout's benchmarks (settings, test app, measurements), the
    # worker's code from ``root``.
    sys.path.insert(0, str(ROOT))
    from benchmarks import images, measure, run

    sys.path.insert(0, root)
    with tempfile.TemporaryDirectory(prefix="nsfw-compare-side-") as workdir:
        run.configure_environment(Path(workdir), args.model_dir)
        if args.openvino_cache:
            os.environ["NSFW_BENCH_OPENVINO_CACHE"] = str(args.openvino_cache)
        import django

        django.setup()
        import nsfw_moderation

        assert str(Path(nsfw_moderation.__file__).resolve()).startswith(root), "wrong checkout"
        from django.core.management import call_command

        call_command("migrate", run_syncdb=True, verbosity=0)
        width, height = map(int, size.split("x"))
        files = [images.jpeg((width, height), 1000 + i) for i in range(args.images)]
        threads = args.threads or measure.cores()
        options = {"QUEUE": "sync", "TORCH_THREADS": threads, **measure.NO_LIMITS}
        with measure.backend_settings(backend, precision, **options):
            measure.warm_up(16, len(files))
            measure.worker_round(files, "warm")
            rates = [measure.worker_round(files, "round")[0] for _ in range(args.rounds)]
    return {"rates": rates}


def git(*arguments: str) -> str:
    return subprocess.run(
        ["git", *arguments], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout


if __name__ == "__main__":
    sys.exit(main())
