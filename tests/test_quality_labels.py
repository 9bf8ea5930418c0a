"""What counts as a label: appeals on audit samples, samples drawn again, the latest word."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from nsfw_moderation import banks, hashing, labels, quality, review
from nsfw_moderation.models import HashBank, Verdict
from nsfw_moderation.quality import Decision, DecisionEvent
from tests.admin_fixtures import appealed_blocked_sample, create_row
from tests.conftest import moderation
from tests.images import picture

pytest_plugins = ["tests.admin_fixtures"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("upheld", "wrong"), [(True, 1), (False, 0)])
def test_an_appeal_that_settles_a_blocked_sample_counts_as_its_audit(
    upheld: bool, wrong: int
) -> None:
    with moderation(OWNER="tests.owners.owner_of"):
        _, appeal = appealed_blocked_sample()
        # Appealed, not yet decided: still waiting for its audit.
        assert labels.quality_report(timezone.now()).audit.waiting == {"blocked": 1}
        review.decide_appeal(appeal, user=User.objects.get(username="reviewer"), upheld=upheld)
        report = labels.quality_report(timezone.now())
    assert (report.audit.wrong_blocks.n, report.audit.waiting_total) == (1, 0)
    assert report.audit.wrong_blocks.k == wrong


def _event(at: int, before: str, audit: bool, rejected: bool) -> DecisionEvent:
    decision = Decision(
        key=(1, "1", "image", "a" * 64),
        rejected=rejected,
        before=before,
        audit=audit,
        score=0.2,
        model="m",
    )
    return DecisionEvent(order=(at, at), decision=decision)


def test_the_same_bytes_drawn_again_are_another_label_not_a_change_of_mind():
    events = [
        _event(1, "flagged", False, False),  # approved when flagged
        _event(2, "allowed", True, True),  # drawn later, rejected: a miss
        _event(3, "rejected", False, True),  # the same moderator's word again
    ]
    flagged, sample = sorted(quality.latest_per_bytes(events), key=lambda d: d.audit)
    assert (flagged.before, flagged.audit, flagged.rejected) == ("flagged", False, False)
    assert (sample.before, sample.audit, sample.rejected) == ("allowed", True, True)
    estimate = quality.audit_estimate([flagged, sample])
    assert (estimate.missed.k, estimate.missed.n) == (1, 1)


@pytest.mark.django_db
def test_a_model_keeps_only_the_images_whose_latest_decision_was_on_its_scores(reviewer):
    row = create_row(verdict=Verdict.FLAGGED, model_name="A", sha256="d" * 64)
    review.reject(row, user=reviewer)
    row.refresh_from_db()
    row.model_name, row.verdict = "B", Verdict.FLAGGED
    row.save()
    review.approve(row, user=reviewer)
    assert labels.decisions(timezone.now(), model="A") == []
    (latest,) = labels.decisions(timezone.now(), model="B")
    assert latest.rejected is False


@pytest.mark.django_db(transaction=True)
def test_a_sample_a_hash_bank_overrules_leaves_the_audit(reviewer):
    pdq, quality_ = hashing.pdq(picture(1))
    row = create_row(
        verdict=Verdict.ALLOWED,
        audit=True,
        score=0.1,
        sha256="e" * 64,
        pdq=pdq,
        pdq_quality=quality_,
    )
    banks.forget_index()
    bank = HashBank.objects.create(name="blocklist", action=HashBank.Action.BLOCK)
    banks.add_entries(bank, [(pdq, quality_, "known")])
    banks.match_stored(bank.pk)
    banks.forget_index()
    row.refresh_from_db()
    assert (row.verdict, row.audit) == (Verdict.BLOCKED, False)
    review.approve(row, user=reviewer)
    estimate = labels.quality_report(timezone.now()).audit
    assert (estimate.missed.n, estimate.wrong_blocks.n) == (0, 0)
