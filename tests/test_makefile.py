"""`make test` runs the Django 6 suite on any Python 3.12+, and never loses it silently."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.workers import ROOT

FIND_PYTHON = ROOT / ".ci" / "find-python"
MAKE = shutil.which("make")


def find_python(home: Path, path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["/bin/sh", str(FIND_PYTHON), *args],
        env={"HOME": str(home), "PATH": str(path)},
        capture_output=True,
        text=True,
        timeout=60,
    )


def real_python(minimum: str) -> str:
    found = subprocess.run([str(FIND_PYTHON), minimum], capture_output=True, text=True)
    if found.returncode != 0:
        pytest.skip(f"no Python {minimum}+ on this machine")
    return found.stdout.strip()


@pytest.fixture
def older_python_only(tmp_path: Path) -> tuple[Path, Path]:
    """A home with pyenv's 3.11 and a PATH whose python3 is 3.11: no 3.12."""
    if sys.version_info >= (3, 12):
        pytest.skip("needs the suite to run on Python < 3.12")
    home, bin_dir = tmp_path / "home", tmp_path / "bin"
    versions = home / ".pyenv" / "versions" / "3.11.9" / "bin"
    versions.mkdir(parents=True)
    bin_dir.mkdir()
    (versions / "python3").symlink_to(sys.executable)
    (bin_dir / "python3").symlink_to(sys.executable)
    # A pyenv shim for a version that is not active: found on PATH, fails to run.
    shim = bin_dir / "python3.12"
    shim.write_text("#!/bin/sh\necho 'pyenv: python3.12: command not found' >&2\nexit 127\n")
    shim.chmod(0o755)
    return home, bin_dir


def test_find_python_refuses_older_pythons_and_shims(older_python_only: tuple[Path, Path]):
    result = find_python(*older_python_only)
    assert (result.returncode, result.stdout) == (1, "")


def test_find_python_finds_a_pyenv_version(tmp_path: Path):
    python = real_python("3.12")
    versions = tmp_path / ".pyenv" / "versions" / "3.12.99" / "bin"
    versions.mkdir(parents=True)
    (versions / "python3").symlink_to(python)
    result = find_python(tmp_path, tmp_path / "no-bin")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(versions / "python3")


def test_find_python_finds_one_on_path(tmp_path: Path):
    python = real_python("3.12")
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "python3.13").symlink_to(python)
    result = find_python(tmp_path, tmp_path / "bin")
    assert result.stdout.strip() == str(tmp_path / "bin" / "python3.13")
    assert find_python(tmp_path, tmp_path / "bin", "3.99").returncode == 1


def make_django6(home: Path, bin_dir: Path, **env: str) -> subprocess.CompletedProcess[str]:
    assert MAKE is not None
    return subprocess.run(
        [MAKE, "--no-print-directory", "pytest-django6"],
        cwd=ROOT,
        env={"HOME": str(home), "PATH": str(bin_dir), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.skipif(MAKE is None, reason="needs make")
def test_without_python_312_the_suite_is_skipped_loudly(older_python_only: tuple[Path, Path]):
    result = make_django6(*older_python_only)
    assert result.returncode == 0, result.stderr
    assert "SKIPPED: the Django 6 suite (make pytest-django6)" in result.stderr
    assert "Python 3.12" in result.stderr


@pytest.mark.skipif(MAKE is None, reason="needs make")
def test_without_python_312_ci_fails(older_python_only: tuple[Path, Path]):
    result = make_django6(*older_python_only, CI="true")
    assert result.returncode != 0
    assert "SKIPPED: the Django 6 suite (make pytest-django6)" in result.stderr
    assert "CI=true" in result.stderr


def pytest_timm_file(**env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k != "NSFW_TEST_REQUIRE_TIMM"}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_timm.py"],
        cwd=ROOT,
        env={**environment, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.slow
def test_without_timm_its_tests_skip_here_and_fail_the_timm_suite():
    if importlib.util.find_spec("timm"):
        pytest.skip("timm is installed here")
    skipped = pytest_timm_file()
    # 5: every test skipped as the module was collected.
    assert skipped.returncode in (0, 5), skipped.stdout[-2000:]
    assert "1 skipped" in skipped.stdout
    assert "needs timm" in skipped.stdout
    required = pytest_timm_file(NSFW_TEST_REQUIRE_TIMM="1")
    assert required.returncode not in (0, 5), required.stdout[-2000:]
    assert "No module named 'timm'" in required.stdout


@pytest.mark.skipif(MAKE is None, reason="needs make")
def test_the_timm_suite_requires_timm():
    assert MAKE is not None
    planned = subprocess.run(
        [MAKE, "--dry-run", "--no-print-directory", "pytest-timm"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert planned.returncode == 0, planned.stderr
    (command,) = [line for line in planned.stdout.splitlines() if " -m pytest " in line]
    assert "NSFW_TEST_REQUIRE_TIMM=1" in command
    assert "tests/test_timm.py" in command
