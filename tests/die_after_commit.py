"""Classify one row in this process, and die right after the commit that stores its verdict.

A worker killed between committing a block and whatever it does next (signals,
notices, e-mail): ``python -m tests.die_after_commit PK '{"BLOCK_THRESHOLD": 0.9}'``,
with the environment of :func:`tests.workers.worker_env`. The JSON is merged
into ``NSFW_MODERATION``. Exits 9 when it died there, 0 when no such commit came.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any


def main(pk: int, overrides: dict[str, Any]) -> None:
    import django

    django.setup()
    from django.conf import settings
    from django.db.backends.base.base import BaseDatabaseWrapper

    from nsfw_moderation.models import ModeratedImage, Status
    from nsfw_moderation.worker import tasks

    settings.NSFW_MODERATION = {**settings.NSFW_MODERATION, **overrides}
    run_hooks = BaseDatabaseWrapper.run_and_clear_commit_hooks

    def die_once_stored(connection: BaseDatabaseWrapper) -> None:
        # Django runs this after every commit: the claim's commit must go on.
        if ModeratedImage.objects.filter(pk=pk, status=Status.DONE).exists():
            os._exit(9)
        run_hooks(connection)

    BaseDatabaseWrapper.run_and_clear_commit_hooks = die_once_stored  # type: ignore[method-assign]
    tasks.classify(pk)


if __name__ == "__main__":
    main(int(sys.argv[1]), json.loads(sys.argv[2]))
