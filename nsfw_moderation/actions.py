"""Deprecated alias of :mod:`nsfw_moderation.hooks`, kept for existing ``ON_REJECT`` settings.

``"nsfw_moderation.actions.clear_field"`` keeps working; new settings should
name ``"nsfw_moderation.hooks.clear_field"``.
"""

from __future__ import annotations

from nsfw_moderation.hooks import clear_field

__all__ = ["clear_field"]
