"""The metrics behind nsfw_evaluate, checked against values computed by hand."""

from __future__ import annotations

import itertools
import random
import xml.etree.ElementTree as ET

import pytest

from nsfw_moderation.evaluation import (
    Confusion,
    Sample,
    average_ranks,
    confusion,
    histogram,
    roc_auc,
    svg_plot,
    threshold_table,
    thresholds,
)


def samples(*pairs: tuple[bool, float]) -> list[Sample]:
    return [Sample("nsfw" if unsafe else "normal", unsafe, score) for unsafe, score in pairs]


# Unsafe: 0.9, 0.7, 0.4. Safe: 0.6, 0.2, 0.1, 0.0.
MIXED = samples(
    (True, 0.9), (True, 0.7), (True, 0.4), (False, 0.6), (False, 0.2), (False, 0.1), (False, 0.0)
)


def test_confusion_at_half():
    result = confusion(MIXED, 0.5)
    # Predicted unsafe: 0.9, 0.7 (right), 0.6 (wrong). Missed: 0.4.
    assert (result.tp, result.fp, result.tn, result.fn) == (2, 1, 3, 1)
    assert result.accuracy == pytest.approx(5 / 7)
    assert result.precision == pytest.approx(2 / 3)
    assert result.recall == pytest.approx(2 / 3)
    assert result.f1 == pytest.approx(2 / 3)


def test_score_equal_to_threshold_counts_as_unsafe():
    result = confusion(samples((True, 0.5), (False, 0.5)), 0.5)
    assert (result.tp, result.fp, result.tn, result.fn) == (1, 1, 0, 0)


def test_f1_is_harmonic_mean_of_precision_and_recall():
    result = Confusion(threshold=0.3, tp=3, fp=1, tn=5, fn=3)
    p, r = 3 / 4, 3 / 6
    assert result.f1 == pytest.approx(2 * p * r / (p + r))


def test_undefined_ratios_are_none():
    nothing_flagged = confusion(samples((True, 0.2), (False, 0.1)), 0.9)
    assert nothing_flagged.precision is None
    assert nothing_flagged.recall == 0.0
    no_unsafe = confusion(samples((False, 0.1)), 0.5)
    assert (no_unsafe.precision, no_unsafe.recall, no_unsafe.f1) == (None, None, None)
    assert no_unsafe.accuracy == 1.0
    assert Confusion(0.5, 0, 0, 0, 0).accuracy is None


def test_roc_auc_by_hand():
    # 12 (unsafe, safe) pairs; the unsafe one scores higher in all but 0.4 < 0.6.
    assert roc_auc(MIXED) == pytest.approx(11 / 12)


def test_roc_auc_ties_count_half():
    # Pairs: (0.5, 0.5) tie = ½, (0.5, 0.2) = 1, (0.8, 0.5) = 1, (0.8, 0.2) = 1.
    data = samples((True, 0.5), (False, 0.5), (True, 0.8), (False, 0.2))
    assert roc_auc(data) == pytest.approx(3.5 / 4)


def test_roc_auc_extremes():
    assert roc_auc(samples((True, 0.9), (False, 0.1))) == 1.0
    assert roc_auc(samples((True, 0.1), (False, 0.9))) == 0.0
    assert roc_auc(samples((True, 0.3), (False, 0.3), (True, 0.3))) == 0.5


def test_roc_auc_undefined_with_one_class():
    assert roc_auc(samples((True, 0.9), (True, 0.1))) is None
    assert roc_auc([]) is None


def test_roc_auc_matches_pair_counting_on_random_data():
    rng = random.Random(7)
    # Scores on a coarse grid so that ties are frequent.
    data = samples(*((rng.random() < 0.4, rng.randint(0, 10) / 10) for _ in range(60)))
    pos = [s.score for s in data if s.unsafe]
    neg = [s.score for s in data if not s.unsafe]
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in itertools.product(pos, neg))
    assert roc_auc(data) == pytest.approx(wins / (len(pos) * len(neg)))


def test_average_ranks_share_ties():
    assert average_ranks([0.3, 0.1, 0.3, 0.9, 0.3]) == [3.0, 1.0, 3.0, 5.0, 3.0]
    assert average_ranks([]) == []


def test_thresholds_are_clean_steps():
    steps = thresholds(0.05)
    assert len(steps) == 21
    assert (steps[0], steps[3], steps[10], steps[-1]) == (0.0, 0.15, 0.5, 1.0)
    assert thresholds(0.25) == [0.0, 0.25, 0.5, 0.75, 1.0]
    with pytest.raises(ValueError, match="step"):
        thresholds(0)


def test_threshold_table_rows_match_confusion():
    table = threshold_table(MIXED, 0.25)
    assert [row.threshold for row in table] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert table[0] == Confusion(0.0, tp=3, fp=4, tn=0, fn=0)
    assert table[2] == confusion(MIXED, 0.5)
    assert table[3] == Confusion(0.75, tp=1, fp=0, tn=4, fn=2)
    assert table[4] == Confusion(1.0, tp=0, fp=0, tn=4, fn=3)


def test_histogram_puts_one_in_the_last_bin():
    counts = histogram([0.0, 0.04, 0.05, 0.5, 0.999, 1.0], bins=20)
    assert counts[0] == 2
    assert counts[1] == 1
    assert counts[10] == 1
    assert counts[19] == 2
    assert sum(counts) == 6


def test_svg_plot_is_valid_svg_with_one_curve_per_label_and_metric():
    svg = svg_plot([*MIXED, Sample("drawings & <art>", False, 0.3)], threshold=0.5)
    root = ET.fromstring(svg)
    ns = "{http://www.w3.org/2000/svg}"
    assert root.tag == f"{ns}svg"
    titles = [el.findtext(f"{ns}title") for el in root.iter(f"{ns}polyline")]
    assert titles == [
        "label drawings & <art>",
        "label normal",
        "label nsfw",
        "precision",
        "recall",
    ]
    legend = [el.text for el in root.iter(f"{ns}text")]
    assert "nsfw (3)" in legend
    assert "threshold 0.5" in [el.findtext(f"{ns}title") for el in root.iter(f"{ns}line")]


def test_svg_plot_skips_undefined_precision_points():
    svg = svg_plot(samples((True, 0.2), (False, 0.1)), threshold=0.5, step=0.5)
    root = ET.fromstring(svg)
    ns = "{http://www.w3.org/2000/svg}"
    curves = {el.findtext(f"{ns}title"): el.get("points") for el in root.iter(f"{ns}polyline")}
    # Precision is defined at threshold 0 only (nothing is flagged at 0.5 or 1).
    assert len(curves["precision"].split()) == 1
    assert len(curves["recall"].split()) == 3
