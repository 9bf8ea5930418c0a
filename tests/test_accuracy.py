"""The accuracy guard's figures, computed by hand."""

from __future__ import annotations

import pytest

from nsfw_moderation.accuracy import Agreement
from tests.conftest import moderation


def scores(*nsfw: float) -> list[dict[str, float]]:
    return [{"normal": 1 - p, "nsfw": p} for p in nsfw]


REFERENCE = scores(0.10, 0.49, 0.51, 0.90, 0.97)
CANDIDATE = scores(0.11, 0.505, 0.50, 0.90, 0.955)


def test_max_difference_is_over_every_label_and_image():
    assert Agreement(REFERENCE, CANDIDATE).max_difference == pytest.approx(0.015)
    assert Agreement([], []).max_difference == 0.0


def test_flips_follow_the_current_thresholds():
    agreement = Agreement(REFERENCE, CANDIDATE)
    # 0.49 → 0.505 is flagged now, 0.51 → 0.50 stays flagged.
    assert agreement.flips() == 1
    with moderation(FLAG_THRESHOLD=0.505):
        assert agreement.flips() == 2
    with moderation(BLOCK_THRESHOLD=0.96):
        # 0.97 → 0.955 goes from blocked to flagged.
        assert agreement.flips() == 2


def test_flips_use_the_unsafe_labels():
    reference = [{"neutral": 0.6, "porn": 0.2, "hentai": 0.2}]
    candidate = [{"neutral": 0.4, "porn": 0.3, "hentai": 0.3}]
    with moderation(UNSAFE_LABELS=["porn", "hentai"]):
        assert Agreement(reference, candidate).flips() == 1
    with moderation(UNSAFE_LABELS=["porn"]):
        assert Agreement(reference, candidate).flips() == 0


def test_problems_at_the_default_limits():
    assert Agreement(REFERENCE, REFERENCE).problems() == []
    (flip,) = Agreement(REFERENCE, CANDIDATE).problems()
    assert flip == (
        "1 verdict(s) of 5 change at FLAG_THRESHOLD 0.5 / BLOCK_THRESHOLD None, "
        "over MAX_VERDICT_FLIPS 0"
    )
    with moderation(MAX_VERDICT_FLIPS=1, MAX_SCORE_DIFFERENCE=0.01):
        (difference,) = Agreement(REFERENCE, CANDIDATE).problems()
    assert difference == "max |Δp| 0.0150 is over MAX_SCORE_DIFFERENCE 0.01"
    with moderation(MAX_VERDICT_FLIPS=1):
        assert Agreement(REFERENCE, CANDIDATE).problems() == []
    assert Agreement([], []).problems() == ["no images were compared"]


def test_json_round_trip_and_mismatched_lists():
    agreement = Agreement(REFERENCE, CANDIDATE)
    assert Agreement.from_json(agreement.to_json()) == agreement
    with pytest.raises(ValueError, match="same images"):
        Agreement(REFERENCE, CANDIDATE[:2])
