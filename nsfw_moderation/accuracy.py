"""The accuracy guard: a converted model's scores against the original model's at fp32.

A lower precision (or another runtime) changes every probability a little.
What matters to a site is how much, and whether any verdict changes at the
thresholds it uses. :class:`Agreement` keeps both models' scores on the same
images, so its figures can be recomputed whenever the thresholds change; a
converted model is only used while they stay within ``MAX_SCORE_DIFFERENCE``
and ``MAX_VERDICT_FLIPS``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from nsfw_moderation import policy
from nsfw_moderation.conf import conf

Scores = Mapping[str, float]


@dataclass(frozen=True)
class Agreement:
    """The same images scored by the fp32 reference and by a candidate model."""

    reference: Sequence[Scores]
    candidate: Sequence[Scores]

    def __post_init__(self) -> None:
        if len(self.reference) != len(self.candidate):
            raise ValueError("Both models must score the same images.")

    @property
    def images(self) -> int:
        return len(self.reference)

    @property
    def max_difference(self) -> float:
        """The largest difference in any label's probability, over every image."""
        return max(
            (abs(ref[label] - cand[label]) for ref, cand in self._pairs() for label in ref),
            default=0.0,
        )

    def flips(self) -> int:
        """Images whose verdict differs between the two models at the current thresholds."""
        return sum(_verdict(ref) != _verdict(cand) for ref, cand in self._pairs())

    def problems(self) -> list[str]:
        """Why the candidate may not be used at the current limits; empty when it may."""
        found = []
        if not self.images:
            found.append("no images were compared")
        if self.max_difference > conf.MAX_SCORE_DIFFERENCE:
            found.append(
                f"max |Δp| {self.max_difference:.4f} is over MAX_SCORE_DIFFERENCE "
                f"{conf.MAX_SCORE_DIFFERENCE}"
            )
        flips = self.flips()
        if flips > conf.MAX_VERDICT_FLIPS:
            found.append(
                f"{flips} verdict(s) of {self.images} change at FLAG_THRESHOLD "
                f"{conf.FLAG_THRESHOLD} / BLOCK_THRESHOLD {conf.BLOCK_THRESHOLD}, over "
                f"MAX_VERDICT_FLIPS {conf.MAX_VERDICT_FLIPS}"
            )
        return found

    def summary(self) -> str:
        return (
            f"{self.images} images, max |Δp| {self.max_difference:.4f}, "
            f"{self.flips()} verdict flip(s) at the current thresholds"
        )

    def to_json(self) -> dict[str, Any]:
        return {"reference": list(self.reference), "candidate": list(self.candidate)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Agreement:
        return cls(reference=data["reference"], candidate=data["candidate"])

    def _pairs(self) -> zip[tuple[Scores, Scores]]:
        return zip(self.reference, self.candidate, strict=True)


def _verdict(scores: Scores) -> str:
    return policy.verdict_for(policy.unsafe_score(scores))
