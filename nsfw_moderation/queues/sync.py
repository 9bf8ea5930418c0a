"""QUEUE = "sync": the work runs here and now, in the calling process (tests, development).

It loads the model in the web process: never for production.
"""

from __future__ import annotations

from typing import Any

from django.utils.module_loading import import_string


def send(task: str, *args: Any) -> None:
    import_string(task)(*args)


def send_later(task: str, delay: float, *args: Any) -> None:
    # Nothing here can wait without blocking the caller: a retry runs at once,
    # as it always has with the sync queue.
    import_string(task)(*args)
