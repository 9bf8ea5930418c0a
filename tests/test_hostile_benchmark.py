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


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="reads Linux's /proc")
def test_a_batchs_peak_is_measured_from_the_warm_rss_not_from_loading() -> None:
    from benchmarks.hostile import memory_mib, reset_high_water_mark

    # Loading a model can peak higher than a batch: that peak must not hide the batch's.
    loading = bytearray(256 * 1024 * 1024)
    loading[::4096] = b"\1" * len(range(0, len(loading), 4096))
    del loading
    assert memory_mib("VmHWM") - memory_mib("VmRSS") > 200
    reset_high_water_mark()
    assert memory_mib("VmHWM") - memory_mib("VmRSS") < 50
