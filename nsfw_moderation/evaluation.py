"""Metrics for judging a classifier on labelled images, and an SVG plot of them.

Pure Python, independent of Django and of the classifier, so that every number
``manage.py nsfw_evaluate`` prints can be checked by hand. An image counts as
*predicted unsafe* when its unsafe score is **at or above** the threshold, the
same rule the policy applies when it flags an upload.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape


@dataclass(frozen=True)
class Sample:
    """One labelled image: its folder (``label``), whether that label is unsafe, its score."""

    label: str
    unsafe: bool
    score: float


@dataclass(frozen=True)
class Confusion:
    """Counts at one threshold. Undefined ratios (0/0) are ``None``, not 0."""

    threshold: float
    tp: int
    fp: int
    tn: int
    fn: int

    @property
    def total(self) -> int:
        return self.tp + self.fp + self.tn + self.fn

    @property
    def accuracy(self) -> float | None:
        return _ratio(self.tp + self.tn, self.total)

    @property
    def precision(self) -> float | None:
        return _ratio(self.tp, self.tp + self.fp)

    @property
    def recall(self) -> float | None:
        return _ratio(self.tp, self.tp + self.fn)

    @property
    def f1(self) -> float | None:
        # 2·TP / (2·TP + FP + FN): the harmonic mean of precision and recall,
        # written so that it is defined whenever either of them is.
        return _ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn)


def _ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def confusion(samples: Iterable[Sample], threshold: float) -> Confusion:
    """Count true/false positives/negatives when ``score >= threshold`` means unsafe."""
    tp = fp = tn = fn = 0
    for sample in samples:
        predicted = sample.score >= threshold
        if sample.unsafe:
            tp, fn = (tp + 1, fn) if predicted else (tp, fn + 1)
        else:
            fp, tn = (fp + 1, tn) if predicted else (fp, tn + 1)
    return Confusion(threshold=threshold, tp=tp, fp=fp, tn=tn, fn=fn)


def roc_auc(samples: Sequence[Sample]) -> float | None:
    """Area under the ROC curve, by the rank (Mann–Whitney U) formula.

    It is the probability that a random unsafe image scores higher than a
    random safe one, a tie counting one half. Tied scores share their average
    rank. ``None`` when either class is missing: the area is undefined.
    """
    positives = sum(1 for s in samples if s.unsafe)
    negatives = len(samples) - positives
    if not positives or not negatives:
        return None
    ranks = average_ranks([s.score for s in samples])
    rank_sum = sum(rank for rank, s in zip(ranks, samples, strict=True) if s.unsafe)
    u = rank_sum - positives * (positives + 1) / 2
    return u / (positives * negatives)


def average_ranks(values: Sequence[float]) -> list[float]:
    """1-based ranks of ``values`` in ascending order; tied values get their mean rank."""
    order = sorted(range(len(values)), key=values.__getitem__)
    ranks = [0.0] * len(values)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        mean_rank = (start + end) / 2 + 1
        for position in range(start, end + 1):
            ranks[order[position]] = mean_rank
        start = end + 1
    return ranks


def thresholds(step: float = 0.05) -> list[float]:
    """0, step, 2·step, … 1, rounded so that 0.15 prints (and compares) as 0.15."""
    if not 0 < step <= 1:
        raise ValueError(f"The threshold step must be in (0, 1], not {step}.")
    count = round(1 / step)
    return [round(min(i * step, 1.0), 6) for i in range(count + 1)]


def threshold_table(samples: Sequence[Sample], step: float = 0.05) -> list[Confusion]:
    """A :class:`Confusion` at every threshold from 0 to 1 in ``step`` steps."""
    return [confusion(samples, t) for t in thresholds(step)]


def histogram(scores: Iterable[float], bins: int = 20) -> list[int]:
    """How many scores fall in each of ``bins`` equal slices of [0, 1] (1.0 in the last)."""
    counts = [0] * bins
    for score in scores:
        counts[min(max(int(score * bins), 0), bins - 1)] += 1
    return counts


# --- SVG plot ---------------------------------------------------------------

WIDTH = 720
PANEL_HEIGHT = 240
MARGIN_LEFT = 56
MARGIN_RIGHT = 150
MARGIN_TOP = 36
GAP = 72
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2")


def svg_plot(samples: Sequence[Sample], threshold: float, step: float = 0.05) -> str:
    """A standalone SVG: score distributions per label, then precision/recall by threshold."""
    height = MARGIN_TOP + 2 * PANEL_HEIGHT + GAP + 40
    top2 = MARGIN_TOP + PANEL_HEIGHT + GAP
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12">',
        f'<rect width="{WIDTH}" height="{height}" fill="white"/>',
        *_distribution_panel(samples, threshold, MARGIN_TOP),
        *_curve_panel(threshold_table(samples, step), threshold, top2),
        "</svg>",
    ]
    return "\n".join(parts) + "\n"


def _distribution_panel(samples: Sequence[Sample], threshold: float, top: int) -> list[str]:
    labels = sorted({s.label for s in samples})
    shares = {label: _shares([s.score for s in samples if s.label == label]) for label in labels}
    peak = max((v for values in shares.values() for v in values), default=0.0) or 1.0
    parts = _axes(top, "Score distribution per label (share of the label's images)", peak)
    for index, label in enumerate(labels):
        colour = PALETTE[index % len(PALETTE)]
        points = _step_points(shares[label], top, peak)
        parts.append(_polyline(points, colour, f"label {label}"))
        parts.append(_legend(index, top, colour, f"{label} ({len(_of(samples, label))})"))
    parts.append(_threshold_line(threshold, top))
    return parts


def _curve_panel(table: Sequence[Confusion], threshold: float, top: int) -> list[str]:
    parts = _axes(top, "Precision and recall against the threshold", 1.0)
    for index, (name, colour) in enumerate((("precision", "#1f77b4"), ("recall", "#d62728"))):
        points = [
            (_x(row.threshold), _y(value, top, 1.0))
            for row in table
            if (value := getattr(row, name)) is not None
        ]
        parts.append(_polyline(points, colour, name))
        parts.append(_legend(index, top, colour, name))
    parts.append(_threshold_line(threshold, top))
    return parts


def _of(samples: Sequence[Sample], label: str) -> list[Sample]:
    return [s for s in samples if s.label == label]


def _shares(scores: Sequence[float]) -> list[float]:
    counts = histogram(scores)
    return [c / len(scores) for c in counts] if scores else [0.0] * len(counts)


def _step_points(values: Sequence[float], top: int, peak: float) -> list[tuple[float, float]]:
    width = 1 / len(values)
    points = []
    for index, value in enumerate(values):
        y = _y(value, top, peak)
        points += [(_x(index * width), y), (_x((index + 1) * width), y)]
    return points


def _x(fraction: float) -> float:
    return MARGIN_LEFT + fraction * (WIDTH - MARGIN_LEFT - MARGIN_RIGHT)


def _y(value: float, top: int, peak: float) -> float:
    return top + PANEL_HEIGHT - (value / peak) * PANEL_HEIGHT


def _axes(top: int, title: str, peak: float) -> list[str]:
    bottom = top + PANEL_HEIGHT
    parts = [
        f'<text x="{MARGIN_LEFT}" y="{top - 12}" font-weight="bold">{escape(title)}</text>',
        f'<line x1="{_x(0)}" y1="{bottom}" x2="{_x(1)}" y2="{bottom}" stroke="#333"/>',
        f'<line x1="{_x(0)}" y1="{top}" x2="{_x(0)}" y2="{bottom}" stroke="#333"/>',
    ]
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        x, y = _x(tick), _y(tick * peak, top, peak)
        parts.append(f'<text x="{x}" y="{bottom + 16}" text-anchor="middle">{tick:g}</text>')
        parts.append(
            f'<text x="{_x(0) - 6}" y="{y + 4}" text-anchor="end">{tick * peak:.2g}</text>'
        )
    parts.append(f'<text x="{_x(0.5)}" y="{bottom + 32}" text-anchor="middle">unsafe score</text>')
    return parts


def _polyline(points: Sequence[tuple[float, float]], colour: str, name: str) -> str:
    coordinates = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
    return (
        f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{coordinates}">'
        f"<title>{escape(name)}</title></polyline>"
    )


def _legend(index: int, top: int, colour: str, text: str) -> str:
    x, y = WIDTH - MARGIN_RIGHT + 16, top + 12 + index * 18
    return (
        f'<rect x="{x}" y="{y - 9}" width="12" height="12" fill="{colour}"/>'
        f'<text x="{x + 18}" y="{y + 1}">{escape(text)}</text>'
    )


def _threshold_line(threshold: float, top: int) -> str:
    x = _x(min(max(threshold, 0.0), 1.0))
    return (
        f'<line x1="{x}" y1="{top}" x2="{x}" y2="{top + PANEL_HEIGHT}" stroke="#555" '
        f'stroke-dasharray="4 3"><title>threshold {threshold:g}</title></line>'
    )
