"""The benchmark scripts run end to end, so they cannot rot."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import pytest

from tests.workers import ROOT

pytestmark = pytest.mark.slow


@pytest.mark.timeout(600)
def test_quick_benchmark_writes_a_report(tmp_path: Path):
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    output, raw = tmp_path / "benchmarks.md", tmp_path / "benchmarks.json"
    command = [sys.executable, "benchmarks/run.py", "--quick", "--tiny", "--output", str(output)]
    command += ["--model-dir", str(tmp_path / "model"), "--workdir", str(tmp_path / "work")]
    by_cpu = tmp_path / "cpu_results.json"
    by_cpu.write_text((ROOT / "benchmarks" / "cpu_results.json").read_text())
    command += ["--json", str(raw), "--cpu-results", str(by_cpu)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=580)
    assert done.returncode == 0, done.stderr[-3000:]
    report = output.read_text()
    results = json.loads(raw.read_text())
    assert_each_side_ran_in_a_fresh_process(results)
    assert_every_section_names_the_cpu(report, results["environment"])
    # A smoke run shows the figures by CPU and records none of its own.
    assert by_cpu.read_text() == (ROOT / "benchmarks" / "cpu_results.json").read_text()
    assert "## Results by CPU" in report
    for heading in (
        "## Machine",
        "## Throughput, end to end",
        "## Agreement",
        "## Cost of `save()`",
    ):
        assert heading in report
    assert "## A real worker" in report
    assert "## Tuning workers" in report
    assert "**Advice (not measured by this script):**" in report
    assert "| worker path, transformers int8 |" in report
    assert "upload to verdict p50" in report
    assert "| worker peak RSS | worker RSS at the end |" in report
    if importlib.util.find_spec("openvino"):
        assert "| worker path, openvino int8 |" in report
        assert "## The OpenVINO runtime" in report
        assert "## Two workers against one process" in report
        # A backlog of 6 rounds' files (2 files a round in a quick run).
        assert "12 different 1024×768 JPEG files queued at once" in report


def assert_each_side_ran_in_a_fresh_process(results: dict) -> None:
    """The card and the worker path never share a process, with each other or the benchmark.

    In one process, OpenVINO's thread pool slowed the card by about 35% on an AMD
    EPYC (Zen 4): openvino int8 read 6.8x the card there, 4.1x in processes of their own.
    """
    sides = [p for p in results["processes"] if p["section"] == "throughput"]
    pids = [p["pid"] for p in sides]
    assert results["main_pid"] not in pids, "a side ran in the benchmark's own process"
    assert len(set(pids)) == len(pids), "a process measured two sides or two rounds"
    assert {p["side"] for p in sides} == {"card", "worker"}
    assert len(sides) == 2 * len(results["rates"]) * results["rounds"]
    # Alternating: card, worker, card, worker … for every configuration.
    assert [p["side"] for p in sides] == ["card", "worker"] * (len(sides) // 2)
    # The same threads on both sides, as each side read them in its own process.
    assert {p["threads"] for p in sides} == {results["threads"]}
    # Every other timed comparison runs its sides away from the benchmark's process too.
    others = [p for p in results["processes"] if p["section"] != "throughput"]
    assert {p["section"] for p in others} >= {"decoding", "save()"}
    assert results["main_pid"] not in {p["pid"] for p in others}


def assert_every_section_names_the_cpu(report: str, environment: dict) -> None:
    from benchmarks.measure import cpu_named

    named = cpu_named(environment["cpu"], environment["cpu flags"])
    assert "family" in named or "unknown" in named
    sections = report.split("\n## ")[2:]  # after the header and "Machine"
    assert len(sections) >= 8
    for section in sections:
        if not section.startswith("Results by CPU"):
            assert f"*Measured on {named};" in section, section[:60]


def test_the_report_keeps_the_sections_other_scripts_wrote():
    from benchmarks.run import other_sections

    previous = (
        "# Old\n\n<!-- uploads:start -->\n## Uploads\n| a |\n<!-- uploads:end -->\nold tail\n"
    )
    assert (
        other_sections(previous)
        == "\n<!-- uploads:start -->\n## Uploads\n| a |\n<!-- uploads:end -->\n"
    )
    assert other_sections("# Old, nothing kept\n") == ""


@pytest.mark.timeout(120)
def test_scaling_benchmark_writes_its_section(tmp_path: Path):
    """``benchmarks/scale.py`` on a small size, in a PostgreSQL database of its own."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        pytest.skip("the scaling benchmark runs on PostgreSQL (DATABASE_URL)")
    output = tmp_path / "benchmarks.md"
    output.write_text("# Benchmarks\n\nKept.\n")
    database = urlparse(url)._replace(path=f"/nsfw_scale_smoke_{os.getpid()}").geturl()
    command = [sys.executable, "benchmarks/scale.py", "--sizes", "300,600", "--rounds", "3"]
    command += ["--database-url", database, "--output", str(output)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=110)
    assert done.returncode == 0, done.stderr[-3000:]
    report = output.read_text()
    assert report.startswith("# Benchmarks\n\nKept.\n")
    assert "## At scale" in report
    assert "| 300 rows | 600 rows |" in report
    assert "review queue, first page (flagged)" in report
    assert "Index Scan" in report


def test_a_benchmark_section_replaces_its_own_and_keeps_the_others(tmp_path):
    from benchmarks.report import write_section

    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Results\n\n<!-- a:start -->\nold a\n<!-- a:end -->\n\ntail\n")
    write_section(doc, "<!-- a:start -->\nnew a\n<!-- a:end -->\n")
    write_section(doc, "<!-- b:start -->\nb\n<!-- b:end -->")
    assert doc.read_text() == (
        "# Results\n\n<!-- a:start -->\nnew a\n<!-- a:end -->\n\ntail\n\n"
        "<!-- b:start -->\nb\n<!-- b:end -->\n"
    )


CPUINFO = """processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 26
model\t\t: 2
model name\t: AMD EPYC
flags\t\t: fpu avx2 avx512f avx512_vnni

processor\t: 1
model name\t: another
"""


def test_the_machine_is_named_with_its_cpu_family(monkeypatch: pytest.MonkeyPatch):
    # A virtual machine may call every generation "AMD EPYC"; the family and
    # model tell them apart, and their figures differ several-fold.
    from benchmarks import measure

    monkeypatch.setattr(measure, "cpuinfo", lambda: measure.first_processor(CPUINFO))
    assert measure.cpu_model() == "AMD EPYC (family 26, model 2)"
    assert measure.cpu_flags() == ["avx2", "avx512f", "avx512_vnni"]


def test_the_scaling_target_takes_the_ratio_within_each_round_as_the_table_does():
    from benchmarks import report
    from benchmarks.measure import Results

    results = Results(quick=False, model="ViT-B/16")
    # Alternating rounds: the machine was slower in the second, for both sides.
    results.scale["openvino int8"] = {
        "one process": [10.0, 5.0, 10.0],
        "qcluster, 2 workers": [9.5, 4.75, 8.0],
    }
    # Per round 0.95, 0.95, 0.8: median 0.95. The medians' ratio would say 0.8.
    assert "| openvino int8 | 10.00 (5.00–10.00) | 8.00 (4.75–9.50) | 0.95 (0.80–0.95) |" in (
        report.scale(results)
    )
    assert "- openvino int8: 2 workers ÷ one process ≥ 0.9: met (0.95)" in report.targets(results)


def test_a_target_says_when_the_cpu_lacks_the_instructions_it_was_stated_for():
    from benchmarks import report
    from benchmarks.measure import Results

    results = Results(quick=False, model="ViT-B/16", threads=2)
    results.environment = {"cpu": "AMD EPYC (family 23, model 49)", "cpu flags": "avx2"}
    results.rates = {"openvino int8": {"1024×768": [2.0]}, "openvino fp32": {"1024×768": [3.0]}}
    results.card_rates = {
        "openvino int8": {"1024×768": [1.6]},
        "openvino fp32": {"1024×768": [2.0]},
    }
    text = report.targets(results)
    assert "Checked on this run's CPU only" in text
    assert (
        "- openvino int8, 1024×768: ≥ 4.5× the card: **missed** (1.25) — not stated for this "
        "CPU (none of avx512_vnni, avx_vnni, amx_int8)"
    ) in text
    assert "- openvino fp32, 1024×768: ≥ 1.35× the card: met (1.50)\n" in text


def test_a_full_run_replaces_its_own_cpus_line_and_keeps_the_others(tmp_path: Path):
    from benchmarks import report
    from benchmarks.measure import Results

    path = tmp_path / "cpu_results.json"
    path.write_text((ROOT / "benchmarks" / "cpu_results.json").read_text())
    seeded = json.loads(path.read_text())
    results = Results(quick=False, model="ViT-B/16", threads=2)
    results.environment = {"cpu": "AMD EPYC (family 25, model 17)", "cpu flags": "avx2 avx512f"}
    results.rates = {"openvino int8": {"1024×768": [12.0, 12.5, 13.0]}}
    results.card_rates = {"openvino int8": {"1024×768": [3.0, 3.0, 3.25]}}
    record = report.cpu_record(results)
    assert record["ratios"] == {"openvino int8, 1024×768": 4.0}
    assert record["card"] == 3.0
    assert record["sides"] == "separate processes"
    assert report.update_cpu_results(path, record) == [*seeded, record]
    again = {**record, "card": 3.1}
    assert report.update_cpu_results(path, again) == [*seeded, again]
    results.by_cpu = json.loads(path.read_text())
    table = report.by_cpu(results)
    assert "| AMD EPYC (family 25, model 17) | avx2 avx512f; without avx512_vnni" in table
    assert "| separate processes | 3.10 images/s |" in table
    assert "openvino int8, 1024×768: 4.00 < 4.5 (not stated for this CPU)" in table
    # The runs measured in one process stay, marked as such.
    assert table.count("| same process |") == 4
