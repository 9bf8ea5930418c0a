"""Moderation in Django REST framework APIs: image fields, a filter, the owner's endpoints.

Install with ``pip install "nsfw-moderation[drf]"``; see docs/drf.md. The
parts, by module: :mod:`.fields` (an image's URL only while it may be shown),
:mod:`.filters` (visible-only listings), :mod:`.urls` (the owner's status,
statements and appeals, to mount under the site's API).
"""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured

try:
    import rest_framework  # noqa: F401
except ImportError as missing:
    raise ImproperlyConfigured(
        "nsfw_moderation.contrib.rest_framework needs Django REST framework: "
        'pip install "nsfw-moderation[drf]" (or djangorestframework).'
    ) from missing
