"""``benchmarks/backends.py`` runs end to end (quick, tiny models), so it cannot rot."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import require
from tests.workers import ROOT

pytestmark = pytest.mark.slow


@pytest.mark.timeout(420)
def test_quick_backends_benchmark_writes_its_section(tmp_path: Path):
    require("timm", reason="the backends benchmark needs timm (make pytest-timm)")
    output = tmp_path / "benchmarks.md"
    output.write_text("# Benchmarks\n\nKept.\n")
    command = [sys.executable, "benchmarks/backends.py", "--quick", "--tiny", "--images", "3"]
    command += ["--output", str(output), "--model-dir", str(tmp_path / "models")]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stderr[-3000:]
    report = output.read_text()
    assert report.startswith("# Benchmarks\n\nKept.\n")
    assert "<!-- backends:start -->\n## Backends compared" in report
    assert "benchmarks/backends.py --quick --tiny --images 3`" in report
    rows = [line for line in report.splitlines() if line.startswith("| transformers |")]
    rows += [line for line in report.splitlines() if line.startswith("| timm |")]
    assert len(rows) == 3, report
    assert "| 384×384 |" in rows[1]
    assert "| 448×448 |" in rows[2]
    # Three rounds: a median with its range.
    assert all("–" in line.split("|")[7] for line in rows)


def test_fewer_than_three_rounds_are_refused():
    done = subprocess.run(
        [sys.executable, "benchmarks/backends.py", "--rounds", "2"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "at least 3" in done.stderr


@pytest.mark.timeout(300)
def test_each_backend_is_timed_in_a_fresh_process_every_round(tmp_path: Path):
    # One backend's runtime and thread pool beside another's slows it: each
    # pass is the only one its process ever ran.
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    output, raw = tmp_path / "benchmarks.md", tmp_path / "raw.json"
    command = [sys.executable, "benchmarks/backends.py", "--quick", "--tiny", "--images", "2"]
    command += ["--output", str(output), "--model-dir", str(tmp_path / "models")]
    command += ["--json", str(raw)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=280)
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(raw.read_text())
    pids = [pid for subject in figures["subjects"] for pid in subject["pids"]]
    assert len(pids) == 3 * len(figures["subjects"])
    assert len(set(pids)) == len(pids)
    assert figures["main_pid"] not in pids
    assert "each in a fresh process of its own" in output.read_text()
