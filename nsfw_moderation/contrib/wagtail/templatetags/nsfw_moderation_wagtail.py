"""``{% nsfw_image_badge image %}``: an image's moderation verdict, in Wagtail's status style."""

from __future__ import annotations

from typing import Any

from django import template
from django.utils.html import format_html
from django.utils.safestring import SafeString

from nsfw_moderation.contrib.wagtail.withheld import is_moderated, verdict_of
from nsfw_moderation.models import Verdict
from nsfw_moderation.query import shown_verdicts

register = template.Library()


@register.simple_tag
def nsfw_image_badge(image: Any) -> SafeString:
    """The verdict of ``image``: marked as withheld when it is; nothing for unmoderated models."""
    if image is None or not is_moderated(image):
        return SafeString("")
    verdict = verdict_of(image)
    label = Verdict(verdict).label if verdict else Verdict.PENDING.label
    withheld = verdict not in shown_verdicts()
    return format_html(
        '<span class="w-status{} nsfw-verdict nsfw-verdict-{}" data-nsfw-verdict="{}">{}</span>',
        "" if withheld else " w-status--primary",
        verdict or "unseen",
        verdict or "unseen",
        label,
    )
