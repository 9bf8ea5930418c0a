#!/usr/bin/env python
"""Throughput, agreement, save-path cost and real workers, in one run.

    .venv/bin/python benchmarks/run.py            # full run, writes docs/benchmarks.md
    .venv/bin/python benchmarks/run.py --quick    # smoke run (a few minutes)

It builds a random-weight ViT-B/16 shaped like Falconsai/nsfw_image_detection
with its classifier head spread so that scores vary over (0, 1)
(``benchmarks/.model``; ``--tiny`` for a test-sized one), generates JPEG
files (smooth gradients plus noise), and on a fresh SQLite database measures,
each over several rounds (median and spread):

- images/s from JPEG bytes saved through a model to stored verdicts
  (QUEUE="sync"), for each backend and precision, against the model card's
  usage (open the file, one ``pipeline`` call per image) in alternating rounds
  with the same threads, each side of each round in a fresh process of its own
  (``benchmarks/sides.py``): card, worker, card, worker …;
- for the openvino backend: ``nsfw_model optimize`` calibrated on the site's
  newest classified images, the accuracy guard's figures, file sizes, and the
  forward pass in the runtime's latency and throughput modes;
- each configuration's largest probability difference from transformers fp32
  and its verdict flips, and the fast preprocessing's difference from the
  model's own image processor;
- what registering a model adds to its ``save()`` (ORM broker, file SQLite);
- through a real ``qcluster`` (a fresh one per configuration and round):
  start to first verdict, upload-to-verdict latency, peak RSS; and two
  workers against one process on every core.

Every section names the CPU (model, family and model numbers, and the
instructions that decide inference speed). A full run (neither ``--quick``
nor ``--tiny``) puts its CPU's line into ``benchmarks/cpu_results.json``
(``--cpu-results``), from which the report's "Results by CPU" table is drawn;
``--json`` also writes the raw figures, with the process that measured each side.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="few images, one round: a smoke run")
    parser.add_argument("--tiny", action="store_true", help="use a test-sized ViT")
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--model-dir", type=Path, default=None, help="where the model is cached")
    parser.add_argument("--workdir", type=Path, default=None, help="database and media (temp)")
    parser.add_argument("--images", type=int, default=None, help="images per size and round")
    parser.add_argument("--rounds", type=int, default=None, help="rounds (default 3, quick 1)")
    parser.add_argument("--threads", type=int, default=None, help="threads (default: all cores)")
    parser.add_argument(
        "--configs",
        default=None,
        help='comma-separated "backend precision" pairs (default: all that run here)',
    )
    parser.add_argument(
        "--calibration", type=int, default=200, help="calibration images for nsfw_model optimize"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the raw figures")
    parser.add_argument(
        "--cpu-results",
        type=Path,
        default=ROOT / "benchmarks" / "cpu_results.json",
        help="the ratio targets' figures by CPU; a full run puts in its own CPU's line",
    )
    parser.add_argument("--latency", default="transformers fp32,openvino int8")
    parser.add_argument("--scale", default="transformers fp32,openvino int8")
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
    previous = args.output.read_text() if args.output.exists() else ""
    args.output.write_text(report + other_sections(previous))
    print(f"Wrote {args.output}")
    return 0


def other_sections(text: str) -> str:
    """Sections other scripts keep in the same file (``<!-- name:start -->`` … ``end -->``)."""
    pattern = re.compile(r"<!-- (\w+):start -->.*?<!-- \1:end -->", flags=re.S)
    return "".join(f"\n{match.group(0)}\n" for match in pattern.finditer(text))


def configure_environment(workdir: Path, model_dir: Path) -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "benchmarks.settings"
    os.environ["NSFW_BENCH_DB"] = str(workdir / "bench.sqlite3")
    os.environ["NSFW_BENCH_MEDIA"] = str(workdir / "media")
    os.environ["NSFW_BENCH_MODEL"] = str(model_dir)
    os.environ["NSFW_BENCH_OPENVINO_CACHE"] = str(workdir / "openvino")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


if __name__ == "__main__":
    sys.exit(main())
