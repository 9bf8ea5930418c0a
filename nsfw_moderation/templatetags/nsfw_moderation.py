"""Template filters for host apps: show an image only when moderation allows it.

::

    {% load nsfw_moderation %}
    {% for photo in photos %}
      {% if photo|nsfw_visible:"image" %}
        <img src="{{ photo.image.url }}" alt="">
      {% else %}
        <div class="placeholder">Awaiting review ({{ photo|nsfw_verdict:"image" }})</div>
      {% endif %}
    {% endfor %}

And a tag for the owner's "why / appeal" link under a restricted image::

    {% moderation_decision_url photo "image" as why %}
    {% if why %}<a href="{{ why }}">Why? Appeal</a>{% endif %}

Each filter costs one query per object unless the queryset was annotated with
:func:`nsfw_moderation.query.with_verdict` for that field, which makes the
whole loop one query. The rules are those of :mod:`nsfw_moderation.query`.
"""

from __future__ import annotations

from typing import Any

from django import template
from django.db import models

from nsfw_moderation import notices, query

register = template.Library()


@register.filter
def nsfw_visible(obj: models.Model, field_name: str) -> bool:
    """``True`` when ``obj``'s image in ``field_name`` may be shown (or the field is empty)."""
    return query.is_visible(obj, field_name)


@register.filter
def nsfw_hidden(obj: models.Model, field_name: str) -> bool:
    """The opposite of ``nsfw_visible``."""
    return not query.is_visible(obj, field_name)


@register.filter
def nsfw_verdict(obj: models.Model, field_name: str) -> str:
    """The verdict (``allowed``, ``flagged``, ``pending``…) or ``""`` if there is none yet."""
    return query.verdict_of(obj, field_name)


@register.simple_tag(takes_context=True)
def moderation_decision_url(context: dict[str, Any], obj: models.Model, field_name: str) -> str:
    """The path of the latest statement about ``obj``'s image, for its owner only; else ``""``.

    The owner is the requesting user (``request.user``) as ``OWNER`` named them
    when the statement was written; anyone else gets ``""``. One query.
    """
    request = context.get("request")
    statement = notices.owners_statement(obj, field_name, getattr(request, "user", None))
    return (notices.statement_path(statement) or "") if statement is not None else ""
