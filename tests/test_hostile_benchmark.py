"""``benchmarks/hostile.py`` runs end to end (tiny model, one round), so the script cannot rot."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.workers import ROOT

pytest.importorskip("torch")
pytest.importorskip("transformers")

pytestmark = pytest.mark.slow


@pytest.mark.timeout(300)
def test_hostile_benchmark_reports_every_file_and_a_batch(tmp_path: Path) -> None:
    command = [
        sys.executable,
        "benchmarks/hostile.py",
        "--rounds=1",
        "--tiny",
        f"--model-dir={tmp_path / 'model'}",
        "--batches=16 mixed (2 each of 8 kinds)",
        "--no-write",
    ]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=290)
    assert done.returncode == 0, done.stderr[-3000:]
    report = done.stdout
    assert "## Hostile uploads" in report
    assert "| GIF, 50,000 frames of 1×1 (0.75 MB) |" in report
    assert "refused: The animation has 50,000 frames" in report
    assert "| 16 mixed (2 each of 8 kinds) |" in report
    assert "failed/flagged 10" in report  # the 5 refused kinds, 2 each
