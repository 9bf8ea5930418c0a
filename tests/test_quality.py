"""The statistics of :mod:`nsfw_moderation.quality` on synthetic decision histories.

Intervals are checked against published values, against an independent
implementation (SciPy's) and by a seeded simulation of their coverage.
"""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from nsfw_moderation import quality
from nsfw_moderation.quality import Decision, DecisionEvent, Proportion
from tests.workers import ROOT

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def decision(
    score: float | None,
    rejected: bool,
    *,
    before: str = "flagged",
    audit: bool = False,
    model: str = "m",
    key: Any = None,
    **extra: Any,
) -> Decision:
    key = key if key is not None else (1, str(random.random()), "image", "0" * 64)
    return Decision(
        key=key,
        rejected=rejected,
        before=before,
        audit=audit,
        score=score,
        model=model,
        **extra,
    )


def many(count: int, score: float, rejected: bool, **options: Any) -> list[Decision]:
    return [
        decision(score, rejected, key=(1, f"{score}-{rejected}-{i}-{options}", "f", ""), **options)
        for i in range(count)
    ]


# --- The Wilson interval -------------------------------------------------------------


def test_wilson_matches_published_values():
    # Wilson (1927); e.g. Brown, Cai & DasGupta (2001), and every statistics package.
    low, high = quality.wilson(10, 100)
    assert (low, high) == (pytest.approx(0.0552, abs=5e-5), pytest.approx(0.1744, abs=5e-5))
    low, high = quality.wilson(0, 100)
    assert low == 0.0
    assert high == pytest.approx(0.0370, abs=5e-5)
    assert quality.wilson(100, 100) == (pytest.approx(1 - 0.0370, abs=5e-5), 1.0)
    assert quality.wilson(0, 0) is None


@pytest.mark.parametrize(("k", "n"), [(0, 1), (1, 1), (3, 200), (17, 40), (199, 200), (5, 7)])
def test_wilson_agrees_with_scipy(k, n):
    stats = pytest.importorskip("scipy.stats")
    expected = stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    low, high = quality.wilson(k, n)
    assert low == pytest.approx(expected.low, abs=1e-9)
    assert high == pytest.approx(expected.high, abs=1e-9)


def test_wilson_refuses_impossible_counts():
    with pytest.raises(ValueError, match="successes <= trials"):
        quality.wilson(5, 4)


@pytest.mark.parametrize(("p", "n"), [(0.02, 400), (0.1, 100), (0.5, 60)])
def test_wilson_covers_the_true_rate_about_95_percent_of_the_time(p, n):
    rng = random.Random(12)
    rounds = 3000
    covered = 0
    for _ in range(rounds):
        k = sum(rng.random() < p for _ in range(n))
        low, high = quality.wilson(k, n)
        covered += low <= p <= high
    # 3,000 rounds: the standard error of the coverage is about 0.004.
    assert 0.93 <= covered / rounds <= 0.975


def test_trials_for_a_lower_bound_is_the_fewest_that_reach_it():
    needed = quality.trials_for_lower_bound(0.99)
    assert needed == 381  # 0.99 · 1.96² / 0.01 = 380.3
    assert quality.wilson(needed, needed)[0] >= 0.99
    assert quality.wilson(needed - 1, needed - 1)[0] < 0.99
    with pytest.raises(ValueError, match="target"):
        quality.trials_for_lower_bound(1.0)


def test_the_docs_table_of_interval_widths_is_the_wilson_interval():
    readme = (ROOT / "docs" / "measuring.md").read_text()
    table = re.search(
        r"<!-- wilson-table:start -->\n(.*?)\n<!-- wilson-table:end -->", readme, re.S
    )
    rows = [line.strip("|").split("|") for line in table[1].splitlines()[2:]]
    assert len(rows) >= 5
    for samples, *cells in rows:
        n = int(samples.replace(",", ""))
        for rate, cell in zip((0, 0.01, 0.05), cells, strict=True):
            low, high = quality.wilson(round(rate * n), n)
            assert cell.strip() == f"{low * 100:.1f}–{high * 100:.1f} %"


# --- Latest decision per bytes -----------------------------------------------------


def event(at: int, rejected: bool, *, key: Any = "a", before: str = "flagged", **extra: Any):
    found = decision(0.8, rejected, key=key, before=before, decided_at=T0, **extra)
    return DecisionEvent(order=(T0 + timedelta(minutes=at), at), decision=found)


def test_a_changed_mind_counts_once_with_the_last_word_and_the_first_verdict_before():
    events = [
        event(2, True, before="approved"),  # changed their mind
        event(1, False, before="allowed", audit=True),  # the audit decision came first
        event(3, True, key="b"),
    ]
    found = {d.key: d for d in quality.latest_per_bytes(events)}
    assert set(found) == {"a", "b"}
    assert (found["a"].rejected, found["a"].before, found["a"].audit) == (True, "allowed", True)
    assert found["b"].rejected


# --- Per model ------------------------------------------------------------------------


def flag_history() -> list[Decision]:
    """Flags at 0.6–0.95: mostly overturned low, upheld high; plus an audit sample."""
    return [
        *many(8, 0.62, False),
        *many(2, 0.65, True),
        *many(5, 0.81, False),
        *many(15, 0.84, True),
        *many(20, 0.97, True),
        decision(0.05, True, before="allowed", audit=True),
    ]


def test_precision_of_flagging_counts_upheld_flags_with_its_interval():
    figures = quality.model_quality("m", flag_history(), flag_threshold=0.6, block_threshold=0.9)
    assert figures.flags == Proportion(37, 50)
    assert figures.overturned == 13
    assert figures.flags.interval == quality.wilson(37, 50)
    assert figures.decided == 51  # the audit sample is decided, but not a flag


def test_score_distributions_of_upheld_and_overturned_flags():
    figures = quality.model_quality("m", flag_history(), flag_threshold=0.6, block_threshold=0.9)
    assert figures.overturned_histogram == [0, 0, 0, 0, 0, 0, 8, 0, 5, 0]
    assert figures.upheld_histogram == [0, 0, 0, 0, 0, 0, 2, 0, 15, 20]
    assert figures.upheld_pairs[9] == ("0.9–1.0", 20)


def test_the_threshold_table_counts_decisions_at_or_above_each_threshold():
    history = flag_history()
    figures = quality.model_quality("m", history, flag_threshold=0.62, block_threshold=0.9)
    rows = {row.threshold: row for row in figures.table}
    # Every 0.05 step and the configured thresholds, once each, in order.
    assert list(rows) == sorted({round(i * 0.05, 6) for i in range(21)} | {0.62})
    assert (rows[0.62].current, rows[0.9].current, rows[0.5].current) == ("flag", "block", "")
    flags = [d for d in history if d.before == "flagged" and not d.audit]
    for t, row in rows.items():
        at = [d for d in flags if d.score >= t]
        assert (row.decided, row.rejected) == (len(at), sum(d.rejected for d in at))
    # The audit sample (0.05, rejected) is in the audit estimates, not in the table.
    assert (rows[0.0].decided, rows[0.0].rejected) == (50, 37)
    assert rows[0.85].rejected_share == Proportion(20, 20)
    assert rows[0.8].rejected_share.low == quality.wilson(35, 40)[0]
    # The review workload: flags decided scoring at or above the threshold.
    assert rows[0.8].workload == 40 / 50
    assert rows[0.0].workload == 1.0


def test_a_block_threshold_is_suggested_where_the_lower_bound_reaches_the_target():
    history = [
        *many(400, 0.95, True),
        *many(50, 0.85, True),
        *many(3, 0.85, False),
        *many(5, 0.8, False),
        *many(20, 0.3, True, before="allowed", audit=True),
    ]
    figures = quality.model_quality("m", history, flag_threshold=0.8, block_threshold=None)
    # At 0.85: 450 of 453 rejected, lower bound 0.981 < 0.99; at 0.9: 400/400, 0.9905.
    assert figures.block.threshold == 0.9
    lower_target = quality.model_quality(
        "m", history, flag_threshold=0.8, block_threshold=None, target=0.98
    )
    assert lower_target.block.threshold == 0.85
    # Never below the flag threshold: nothing under it was reviewed but the samples.
    lenient = quality.model_quality(
        "m", history, flag_threshold=0.8, block_threshold=None, target=0.9
    )
    assert lenient.block.threshold == 0.8


def test_no_block_threshold_without_enough_decisions_and_how_many_it_takes():
    history = many(380, 0.95, True)  # all rejected, one short of a 0.99 lower bound
    figures = quality.model_quality("m", history, flag_threshold=0.9, block_threshold=None)
    assert figures.block.threshold is None
    assert figures.block.needed == 381
    figures = quality.model_quality(
        "m", [*history, *many(1, 0.96, True)], flag_threshold=0.9, block_threshold=None
    )
    assert figures.block.threshold == 0.9


def test_a_block_suggestion_needs_a_minimum_count_even_for_a_low_target():
    figures = quality.model_quality(
        "m", many(10, 0.95, True), flag_threshold=0.5, block_threshold=None, target=0.5
    )
    assert figures.block.threshold is None
    assert figures.block.needed == quality.MIN_DECISIONS


def test_a_flag_threshold_keeps_the_target_share_of_rejections_and_says_what_it_saves():
    history = [*many(1, 0.62, True), *many(99, 0.9, True), *many(60, 0.65, False)]
    figures = quality.model_quality("m", history, flag_threshold=0.6, block_threshold=None)
    # 0.9 keeps 99 of the 100 rejected (99%); 0.95 keeps none.
    assert figures.flag.threshold == 0.9
    assert figures.flag.kept == 0.99
    assert figures.flag.saved == pytest.approx(61 / 160)
    strict = quality.model_quality(
        "m", history, flag_threshold=0.6, block_threshold=None, target=0.999
    )
    assert strict.flag.threshold == 0.6


def test_no_flag_threshold_without_enough_rejections():
    figures = quality.model_quality(
        "m", many(29, 0.9, True), flag_threshold=0.6, block_threshold=None
    )
    assert figures.flag.threshold is None
    assert figures.flag.needed == quality.MIN_DECISIONS


# --- Audit samples -------------------------------------------------------------------


def test_the_miss_rate_is_the_rejected_share_of_allowed_samples_with_its_interval():
    decisions = [
        *many(3, 0.1, True, before="allowed", audit=True),
        *many(197, 0.1, False, before="allowed", audit=True),
        *many(2, 0.99, False, before="blocked", audit=True),
        *many(38, 0.99, True, before="blocked", audit=True),
        *many(50, 0.2, True, before="allowed"),  # reported by users, not drawn: left out
        *many(10, 0.8, True),  # flags
    ]
    audit = quality.audit_estimate(decisions, {"allowed": 4}, allowed_images=10_000)
    assert audit.missed == Proportion(3, 200)
    assert audit.missed.share == 0.015
    # The known binomial case, 3 of 200: Wilson 95% (0.00511, 0.04317).
    assert audit.missed.low == pytest.approx(0.00511, abs=5e-5)
    assert audit.missed.high == pytest.approx(0.04317, abs=5e-5)
    estimate, low, high = audit.estimated_missed_images
    assert estimate == pytest.approx(150)
    assert (low, high) == (pytest.approx(51.1, abs=0.5), pytest.approx(431.7, abs=0.5))
    assert audit.wrong_blocks == Proportion(2, 40)
    assert audit.waiting_total == 4


def test_no_estimate_without_decided_samples():
    audit = quality.audit_estimate(many(5, 0.8, True), {}, allowed_images=100)
    assert audit.missed.share is None
    assert audit.estimated_missed_images is None


# --- Shadow model ---------------------------------------------------------------------


def test_the_shadow_comparison_puts_each_model_at_its_own_threshold():
    def both(live: float, shadow: float, rejected: bool, audit: bool = False) -> Decision:
        return decision(
            live,
            rejected,
            audit=audit,
            shadow_score=shadow,
            shadow_model="s",
            before="allowed" if audit else "flagged",
        )

    decisions = [
        both(0.9, 0.8, True),  # both flag (live ≥ 0.7, shadow ≥ 0.5)
        both(0.75, 0.3, False),  # live flags a safe one, shadow does not
        both(0.8, 0.6, False),  # both flag a safe one
        both(0.2, 0.55, True, audit=True),  # live misses, shadow catches
        both(0.1, 0.1, False, audit=True),  # both right
        decision(0.9, True),  # no shadow score: left out
    ]
    (pair,) = quality.shadow_comparisons(decisions, 0.7, 0.5)
    assert (pair.live_model, pair.shadow_model) == ("m", "s")
    assert (pair.live.tp, pair.live.fp, pair.live.tn, pair.live.fn) == (1, 2, 1, 1)
    assert (pair.shadow.tp, pair.shadow.fp, pair.shadow.tn, pair.shadow.fn) == (2, 1, 2, 0)
    assert (pair.live_audit.recall, pair.shadow_audit.recall) == (0.0, 1.0)
    assert pair.live_audit.total == 2


def test_the_report_groups_by_model():
    decisions = [*many(3, 0.8, True, model="a"), *many(2, 0.8, False, model="b")]
    found = quality.report(
        decisions, days=90, flag_threshold=0.7, block_threshold=None, shadow_flag_threshold=0.7
    )
    assert [(m.model, m.flags.k, m.flags.n) for m in found.models] == [("a", 3, 3), ("b", 0, 2)]
    assert found.decided == 5
