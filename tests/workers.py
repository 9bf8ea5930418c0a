"""Start and stop real worker processes for end-to-end tests, on each queue.

A ``kind`` of queue names both the worker (:data:`KINDS`) and the settings a
process needs to send work to it (:func:`queue_settings`):

- ``django_q``: ``manage.py qcluster`` (``NSFW_TEST_WORKERS`` workers);
- ``tasks-db``: Django's Tasks framework on django-tasks-db, ``manage.py db_worker``;
- ``tasks-rq``: the Tasks framework on django-tasks-rq, ``manage.py rqworker``
  with RQ's ``SimpleWorker`` (no fork per task: the model stays loaded) and
  django-tasks-rq's job class;
- ``celery``: ``celery worker --pool=prefork`` (``NSFW_TEST_WORKERS`` children).
"""

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


KINDS = ("django_q", "tasks-db", "tasks-rq", "celery")
#: The kinds that need Redis: run where the suite has it (NSFW_TEST_BROKER=redis).
ON_REDIS = ("tasks-rq", "celery")


def queue_settings(kind: str) -> dict[str, str]:
    """The ``NSFW_MODERATION`` keys that send work to a worker of ``kind``."""
    if kind.startswith("tasks-"):
        return {"QUEUE": "tasks", "TASKS_BACKEND": "rq" if kind == "tasks-rq" else "default"}
    return {"QUEUE": kind}


def queue_env(kind: str) -> dict[str, str]:
    """The same, for a process started on ``tests.settings``."""
    chosen = queue_settings(kind)
    env = {"NSFW_TEST_QUEUE": chosen["QUEUE"]}
    if "TASKS_BACKEND" in chosen:
        env["NSFW_TEST_TASKS_BACKEND"] = chosen["TASKS_BACKEND"]
    return env


def worker_command(kind: str, env: dict[str, str]) -> list[str]:
    """The command line of one worker of ``kind``, on the queue named in ``env``."""
    queue, workers = env.get("NSFW_TEST_QUEUE_NAME", ""), env.get("NSFW_TEST_WORKERS", "1")
    manage = [sys.executable, "manage.py"]
    if kind == "django_q":
        return [*manage, "qcluster", "--settings=tests.settings"]
    if kind == "tasks-db":
        options = ["--interval", "0.1", "--no-startup-delay", "--no-reload"]
        return [*manage, "db_worker", "--queue-name", queue, *options, "--settings=tests.settings"]
    if kind == "tasks-rq":
        # RQ forks a work horse per job by default, which would load the model
        # for every task: SimpleWorker runs them in the worker process.
        options = ["--worker-class", env.get("NSFW_TEST_RQ_WORKER", "rq.worker.SimpleWorker")]
        options += ["--job-class", "django_tasks_rq.backend.Job"]
        return [*manage, "rqworker", queue, *options, "--settings=tests.settings"]
    options = ["-Q", queue, "--pool=prefork", f"--concurrency={workers}", "--loglevel=WARNING"]
    options += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
    return [sys.executable, "-m", "celery", "-A", "tests.celery_app", "worker", *options]


def kinds_here() -> list[str]:
    """The queues this suite runs workers on: those on Redis where the suite has Redis."""
    on_redis = os.environ.get("NSFW_TEST_BROKER") == "redis"
    return [kind for kind in KINDS if on_redis or kind not in ON_REDIS]


def purge_queues() -> None:
    """Drop what an earlier test left in this run's Redis queues (RQ, Celery).

    The database is emptied between tests, Redis is not: a stale task would
    make a worker claim this test's rows too early.
    """
    import redis

    client = redis.Redis.from_url(settings.QUEUE_REDIS_URL)
    try:
        keys = list(client.scan_iter(f"*{settings.QUEUE_NAME}*"))
    except redis.ConnectionError:  # no Redis in this suite: nothing left there
        return
    if keys:
        client.delete(*keys)


class Cluster:
    """One worker process of a queue (and what it forks), in its own session."""

    def __init__(
        self,
        log_path: Path,
        base_env: dict[str, str] | None = None,
        *,
        kind: str = "django_q",
        **env: str,
    ) -> None:
        """``base_env``: the whole environment (default: this one, pointed at the test run's)."""
        self.log_path = log_path
        self.kind = kind
        self.env = {**(base_env or {**os.environ, **worker_env()}), **queue_env(kind), **env}
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self) -> Cluster:
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            worker_command(self.kind, self.env),
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
