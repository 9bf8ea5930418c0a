"""Keep explicit images off Django sites."""

from __future__ import annotations

from nsfw_moderation.registry import register, unregister

__all__ = ["register", "unregister"]
__version__ = "0.1.0.dev0"
