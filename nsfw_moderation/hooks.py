"""What happens when an image is blocked or rejected: ``ON_REJECT`` and the blocklist.

Set ``NSFW_MODERATION["ON_REJECT"]`` to the dotted path of a callable taking
``(row, obj)`` — the :class:`~nsfw_moderation.models.ModeratedImage` and the
host object (``None`` if it is gone). It runs after a worker blocks an image
and after a moderator rejects one. Nothing is deleted unless your callable
deletes it. The ``image_blocked`` and ``image_reviewed`` signals fire either way.

Ready-made callables:

- ``nsfw_moderation.hooks.clear_field`` empties the field (the file itself
  stays in storage, and the row stays as the record of the decision).

The receivers here are connected in :meth:`NsfwModerationConfig.ready`.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import models
from django.utils.module_loading import import_string

from nsfw_moderation import blocklist
from nsfw_moderation.conf import conf
from nsfw_moderation.models import ModeratedImage, Verdict

logger = logging.getLogger(__name__)


def on_blocked(sender: Any, instance: ModeratedImage, **kwargs: Any) -> None:
    run_reject_hook(instance)


def on_reviewed(sender: Any, instance: ModeratedImage, **kwargs: Any) -> None:
    blocklist.remember_decision(instance)
    if instance.verdict == Verdict.REJECTED:
        run_reject_hook(instance)


def on_appeal_decided(sender: Any, instance: ModeratedImage, **kwargs: Any) -> None:
    # An upheld appeal approved the image: it leaves the blocklist.
    blocklist.remember_decision(instance)


def run_reject_hook(row: ModeratedImage) -> None:
    """Call ``ON_REJECT`` for ``row``; a failing hook is logged, never raised."""
    if not conf.ON_REJECT:
        return
    try:
        hook = import_string(conf.ON_REJECT)
        hook(row, row.content_object)
    except Exception:
        logger.exception("ON_REJECT hook %s failed for moderated image %s", conf.ON_REJECT, row.pk)


def clear_field(row: ModeratedImage, obj: models.Model | None) -> None:
    """Empty the moderated field on the host object. The file stays in storage."""
    if obj is None:
        return
    setattr(obj, row.field_name, None)
    obj.save(update_fields=[row.field_name])
