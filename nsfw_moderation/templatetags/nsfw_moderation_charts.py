"""Small inline-SVG charts for the moderation dashboard: no JavaScript, no CDN.

Colours come from CSS classes, so the charts follow the admin's light and
dark themes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal
from typing import Any

from django import template
from django.utils import formats
from django.utils.translation import gettext as _

register = template.Library()

WIDTH = 440
HEIGHT = 200
LEFT = 36
RIGHT = 8
TOP = 16
BOTTOM = 28
#: At most this many x-axis labels, so they never overlap.
MAX_X_LABELS = 10


@dataclass(frozen=True)
class Column:
    label: str
    count: int
    x: float
    y: float
    width: float
    height: float
    show_label: bool

    @property
    def centre(self) -> float:
        return self.x + self.width / 2

    @property
    def tick(self) -> str:
        # A range label ("0.3–0.4") is ticked by its start; the tooltip has it all.
        return self.label.split("–")[0]

    @property
    def value_y(self) -> float:
        return self.y - 4


def columns(data: Sequence[tuple[str, int]]) -> list[Column]:
    """Lay out one column per ``(label, count)`` in the plot area."""
    plot_width = WIDTH - LEFT - RIGHT
    plot_height = HEIGHT - TOP - BOTTOM
    slot = plot_width / max(len(data), 1)
    peak = max((count for _, count in data), default=0) or 1
    every = math.ceil(len(data) / MAX_X_LABELS) or 1
    result = []
    for i, (label, count) in enumerate(data):
        height = plot_height * count / peak
        result.append(
            Column(
                label=label,
                count=count,
                x=LEFT + i * slot + slot * 0.1,
                y=TOP + plot_height - height,
                width=slot * 0.8,
                height=height,
                show_label=i % every == 0,
            )
        )
    return result


@register.inclusion_tag("nsfw_moderation/charts/columns.html")
def column_chart(
    data: Sequence[tuple[str, int]], title: str, css_class: str = ""
) -> dict[str, Any]:
    """``{% column_chart pairs title %}``: a bar chart of ``(label, count)`` pairs."""
    peak = max((count for _, count in data), default=0)
    return {
        "title": title,
        "css_class": css_class,
        "columns": columns(data),
        "width": WIDTH,
        "height": HEIGHT,
        "left": LEFT,
        "right": WIDTH - RIGHT,
        "top": TOP,
        "baseline": HEIGHT - BOTTOM,
        "label_y": HEIGHT - 8,
        "peak": peak,
        "total": sum(count for _, count in data),
        "show_values": len(data) <= 12,
    }


@register.inclusion_tag("nsfw_moderation/charts/bars.html")
def bar_list(data: Sequence[tuple[str, str, int]], title: str) -> dict[str, Any]:
    """``{% bar_list triples title %}``: horizontal bars of ``(value, label, count)``."""
    peak = max((count for _, _, count in data), default=0) or 1
    bars = [
        {"value": value, "label": label, "count": count, "percent": round(100 * count / peak, 1)}
        for value, label, count in data
    ]
    return {"title": title, "bars": bars}


@register.filter
def nsfw_duration(value: timedelta) -> str:
    """A short, rounded duration: ``"45 s"``, ``"12 min"``, ``"3 h 5 min"``, ``"2 d 4 h"``."""
    seconds = max(int(value.total_seconds()), 0)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    if days:
        return _("%(days)d d %(hours)d h") % {"days": days, "hours": hours}
    if hours:
        return _("%(hours)d h %(minutes)d min") % {"hours": hours, "minutes": minutes}
    if minutes:
        return _("%(minutes)d min") % {"minutes": minutes}
    return _("%(seconds)d s") % {"seconds": seconds}


@register.filter
def nsfw_percent(value: float | None, digits: int = 1) -> str:
    """A share as a percentage, ``"97.5 %"`` in the active locale; ``"–"`` when undefined.

    Rounded half-up, as people round by hand and as ``floatformat`` does
    (``number_format`` alone would cut 6.273 % to 6.2 %).
    """
    return _percent(value, digits, ROUND_HALF_UP)


@register.filter
def nsfw_percent_low(value: float | None, digits: int = 1) -> str:
    """The lower bound of an interval as a percentage, rounded down.

    Bounds round outwards, so that the printed interval still contains the
    computed one: a rounded-up lower bound would claim more than was measured.
    """
    return _percent(value, digits, ROUND_FLOOR)


@register.filter
def nsfw_percent_high(value: float | None, digits: int = 1) -> str:
    """The upper bound of an interval as a percentage, rounded up (see :func:`nsfw_percent_low`)."""
    return _percent(value, digits, ROUND_CEILING)


@register.filter
def nsfw_count_low(value: float | None) -> str:
    """The lower bound of an estimated count, rounded down to a whole number."""
    return _count(value, ROUND_FLOOR)


@register.filter
def nsfw_count_high(value: float | None) -> str:
    """The upper bound of an estimated count, rounded up to a whole number."""
    return _count(value, ROUND_CEILING)


def _count(value: float | None, rounding: str) -> str:
    return "–" if value is None else formats.number_format(_rounded(_exact(value), 0, rounding))


def _percent(value: float | None, digits: int, rounding: str) -> str:
    if value is None:
        return "–"
    # From the share's decimal form: the float 0.06 * 100 is 6.000000000000001,
    # which a bound rounded up would print as 6.1 %.
    number = _rounded(_exact(value) * 100, digits, rounding)
    return _("%(number)s %%") % {"number": formats.number_format(number, digits)}


def _exact(value: float) -> Decimal:
    """The shortest decimal that reads back as ``value``: what ``str(value)`` shows."""
    return Decimal(repr(float(value)))


def _rounded(value: Decimal, digits: int, rounding: str) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-digits), rounding=rounding)
