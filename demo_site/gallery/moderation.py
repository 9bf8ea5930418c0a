"""Who owns what, for nsfw_moderation's statements of reasons and appeals (``OWNER``)."""

from __future__ import annotations

from typing import Any


def owner_of(obj: Any) -> Any:
    """The uploader of a photo, the user of a profile; ``None`` for anything else."""
    if hasattr(obj, "uploaded_by"):
        return obj.uploaded_by
    return getattr(obj, "user", None)
