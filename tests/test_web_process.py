"""The web process never decodes an upload: what it imports cannot.

Decoding lives in ``imaging`` and reading uploads in ``storage``; only the
worker (and the commands run where workers run) import them. The upload form
validators are the one exception, reading a header with ``imaging.identify``.
"""

from __future__ import annotations

import pytest

from tests.test_structure import import_graph

WEB_MODULES = [
    "nsfw_moderation.admin",
    "nsfw_moderation.apps",
    "nsfw_moderation.handlers",
    "nsfw_moderation.hooks",
    "nsfw_moderation.media",
    "nsfw_moderation.previews",
    "nsfw_moderation.query",
    "nsfw_moderation.queues.celery",
    "nsfw_moderation.queues.django_q",
    "nsfw_moderation.queues.tasks",
    "nsfw_moderation.review",
    "nsfw_moderation.templatetags.nsfw_moderation",
]
DECODING = {"nsfw_moderation.imaging", "nsfw_moderation.storage"}


def imported_by(name: str) -> set[str]:
    graph = import_graph()
    seen: set[str] = set()
    stack = [name]
    while stack:
        for target in graph[stack.pop()]:
            if target not in seen:
                seen.add(target)
                stack.append(target)
    return seen


@pytest.mark.parametrize("name", WEB_MODULES)
def test_web_modules_import_no_decoder(name: str) -> None:
    reached = imported_by(name)
    assert not reached & DECODING
    assert not {module for module in reached if module.startswith("nsfw_moderation.worker")}


def test_the_measure_sees_the_worker_reach_the_decoder() -> None:
    assert imported_by("nsfw_moderation.worker.tasks") >= DECODING
