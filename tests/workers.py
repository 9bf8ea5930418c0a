"""Start and stop real ``manage.py qcluster`` processes for end-to-end tests."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent


class Cluster:
    """One ``qcluster`` process (and the workers it forks), in its own session."""

    def __init__(self, log_path: Path, base_env: dict[str, str] | None = None, **env: str) -> None:
        """``base_env``: the whole environment (default: this one, pointed at the test run's)."""
        self.log_path = log_path
        self.env = {**(base_env or {**os.environ, **worker_env()}), **env}
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self) -> Cluster:
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "qcluster", "--settings=tests.settings"],
            cwd=ROOT,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def stop(self, timeout: float = 20) -> None:
        """SIGTERM the main process only, then sweep its process group.

        Signalling the whole group at once makes django-q2 hang while its
        workers and its parent each try to shut the other down.
        """
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout)
        self.kill()

    def kill(self) -> None:
        """SIGKILL the cluster and every worker at once: a machine dying."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)
        if self._log:
            self._log.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:]

    def __enter__(self) -> Cluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def worker_env() -> dict[str, str]:
    """Point a worker at this test run's database, media and model."""
    return {
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "NSFW_TEST_DB_NAME": str(connection.settings_dict["NAME"]),
        "NSFW_TEST_MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "NSFW_TEST_MODEL_DIR": str(settings.TINY_MODEL_DIR),
        "NSFW_TEST_QUEUE": "django_q",
        "PYTHONUNBUFFERED": "1",
    }


def wait_until(condition: Callable[[], Any], timeout: float, interval: float = 0.25) -> Any:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(interval)
