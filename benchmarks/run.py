#!/usr/bin/env python
"""Throughput, precision, save-path cost and worker latency, in one run.

    .venv/bin/python benchmarks/run.py            # full run, writes docs/benchmarks.md
    .venv/bin/python benchmarks/run.py --quick    # smoke run (a minute or two)

It builds a random-weight ViT-B/16 shaped like Falconsai/nsfw_image_detection
(``benchmarks/.model``; ``--tiny`` for the test-sized one), generates JPEG
files (smooth gradients plus noise), and on a fresh SQLite database measures:

- images/s of the model card's usage (one ``pipeline`` call per image) and of
  this project's worker path (``tasks.classify`` over queued rows: read, decode,
  batch, classify, store) for each precision that runs here;
- each precision's largest probability difference from fp32, and the fast
  preprocessing's from the model's own image processor;
- what registering a model adds to its ``save()`` (ORM broker, file SQLite);
- upload-to-verdict latency through a real ``qcluster`` with a warm worker, the
  worker's peak RSS and the time from ``qcluster`` start to the first verdict.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="few images and rounds: a smoke run")
    parser.add_argument("--tiny", action="store_true", help="use the test-sized ViT")
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--model-dir", type=Path, default=None, help="where the model is cached")
    parser.add_argument("--workdir", type=Path, default=None, help="database and media (temp)")
    parser.add_argument("--images", type=int, default=None, help="images per size")
    parser.add_argument(
        "--repeat", type=int, default=None, help="best of N timed passes (default 2, quick 1)"
    )
    parser.add_argument("--precisions", default=None, help="comma-separated (default: all here)")
    parser.add_argument("--latency-precision", default="fp32")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    model_dir = args.model_dir or ROOT / "benchmarks" / (".model-tiny" if args.tiny else ".model")
    with tempfile.TemporaryDirectory(prefix="nsfw-bench-") as temporary:
        workdir = args.workdir or Path(temporary)
        workdir.mkdir(parents=True, exist_ok=True)
        configure_environment(workdir, model_dir)
        from benchmarks import measure

        report = measure.run(args, model_dir, workdir)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(report)
    print(f"Wrote {args.output}")
    return 0


def configure_environment(workdir: Path, model_dir: Path) -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "benchmarks.settings"
    os.environ["NSFW_BENCH_DB"] = str(workdir / "bench.sqlite3")
    os.environ["NSFW_BENCH_MEDIA"] = str(workdir / "media")
    os.environ["NSFW_BENCH_MODEL"] = str(model_dir)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


if __name__ == "__main__":
    sys.exit(main())
