"""Moderation in a Wagtail site: add ``"nsfw_moderation.contrib.wagtail"`` to ``INSTALLED_APPS``.

- :mod:`.withheld`: which Wagtail images must not be shown (by :mod:`nsfw_moderation.query`).
- :mod:`.guards`: their renditions are neither made nor served; editors cannot insert them.
- :mod:`.wagtail_hooks`: the chooser, the review pages' menu item and URLs.
- :mod:`.views`: the review queue and its decisions in Wagtail's admin.
"""

from __future__ import annotations

try:
    import wagtail  # noqa: F401
except ImportError as error:  # pragma: no cover - exercised in a venv without Wagtail
    raise ImportError(
        "nsfw_moderation.contrib.wagtail needs Wagtail: pip install 'nsfw-moderation[wagtail]'."
    ) from error
