"""Statements of reasons: written when an image is restricted, handed to the host, e-mailed.

A :class:`~nsfw_moderation.models.Statement` is written, after the decision
commits, when a worker blocks an image (``image_blocked``), when a moderator
rejects one (``image_reviewed``) and, with ``NOTIFY_FLAGGED``, when one is
flagged and hidden pending review (``image_flagged``). Each is recorded as a
``notified`` event and announced with
:data:`~nsfw_moderation.signals.decision_notice`; :func:`email_owner`, connected
by default, e-mails the owner that ``OWNER`` finds. None of this ever fails the
worker or the decision: a failure is logged.

The receivers here are connected in :meth:`NsfwModerationConfig.ready`.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import NoReverseMatch, reverse
from django.utils.module_loading import import_string
from django.utils.translation import gettext as _

from nsfw_moderation import signals
from nsfw_moderation.conf import conf
from nsfw_moderation.db import moderation_db, write_transaction
from nsfw_moderation.models import (
    AppealOutcome,
    ModeratedImage,
    ModerationEvent,
    Statement,
    Verdict,
)

logger = logging.getLogger(__name__)

#: Verdicts that restrict an image, and so need a statement of reasons.
RESTRICTIONS = (Verdict.BLOCKED, Verdict.REJECTED, Verdict.FLAGGED)


# --- Receivers ------------------------------------------------------------------


def on_blocked(sender: Any, instance: ModeratedImage, **kwargs: Any) -> None:
    _after_commit(instance.pk, automated=True)


def on_flagged(sender: Any, instance: ModeratedImage, **kwargs: Any) -> None:
    if conf.NOTIFY_FLAGGED:
        _after_commit(instance.pk, automated=True)


def on_reviewed(
    sender: Any,
    instance: ModeratedImage,
    user: Any = None,
    note: str = "",
    previous_verdict: str = "",
    **kwargs: Any,
) -> None:
    # A repeated rejection changes nothing for the owner: no second statement.
    if instance.verdict == Verdict.REJECTED and previous_verdict != Verdict.REJECTED:
        _after_commit(instance.pk, automated=False, user=user, note=note)


def on_appeal_decided(sender: Any, outcome: AppealOutcome, **kwargs: Any) -> None:
    statement = outcome.appeal.statement
    _safely(
        signals.decision_notice.send,
        sender=ModeratedImage,
        instance=statement.image,
        statement=statement,
        owner=statement.owner,
        outcome=outcome,
    )


def _after_commit(pk: int, **how: Any) -> None:
    transaction.on_commit(functools.partial(_safely, _issue_for, pk, **how), using=moderation_db())


def _safely(func: Any, *args: Any, **kwargs: Any) -> None:
    # A notice must never fail the worker or the moderator's decision.
    try:
        func(*args, **kwargs)
    except Exception:
        logger.exception("Could not write or send a statement of reasons (%s)", args or kwargs)


def _issue_for(pk: int, **how: Any) -> None:
    row = ModeratedImage.objects.filter(pk=pk).first()
    if row is not None and row.verdict in RESTRICTIONS:
        issue(row, **how)


# --- Statements -------------------------------------------------------------------


def issue(row: ModeratedImage, *, automated: bool, user: Any = None, note: str = "") -> Statement:
    """Write the statement of reasons for ``row``'s current verdict, audited, and announce it."""
    kinds = (
        [ModerationEvent.Kind.CLASSIFIED, ModerationEvent.Kind.MATCHED]
        if automated
        else [ModerationEvent.Kind.REVIEWED]
    )
    bank = matched_bank(row) if automated else None
    note = note or (BANK_NOTE_PREFIX + bank if bank else "")
    with write_transaction():
        statement = Statement.objects.create(
            image=row,
            event=row.events.filter(kind__in=kinds).order_by("-created_at", "-pk").first(),
            content_type_id=row.content_type_id,
            object_id=row.object_id,
            field_name=row.field_name,
            file_name=row.file_name,
            sha256=row.sha256,
            verdict=row.verdict,
            automated=automated,
            model_name=row.model_name,
            score=row.score,
            threshold=threshold(row) if automated and not bank else None,
            decided_by=user if user is not None and user.is_authenticated else None,
            note=note,
            owner=owner_of(row),
            content_created_at=row.created_at,
        )
        ModerationEvent.record(
            row,
            ModerationEvent.Kind.NOTIFIED,
            verdict_before=row.verdict,
            note=str(statement.public_id),
        )
    owner = statement.owner
    signals.decision_notice.send(
        sender=ModeratedImage, instance=row, statement=statement, owner=owner, outcome=None
    )
    return statement


#: How an automated statement's note names the hash bank that decided.
BANK_NOTE_PREFIX = "bank:"


def matched_bank(row: ModeratedImage) -> str:
    """The name of the block or flag hash bank behind ``row``'s verdict ("" when none)."""
    entry = row.bank_entry
    if entry is None:
        return ""
    decided: dict[str, str] = {
        entry.bank.Action.BLOCK: Verdict.BLOCKED,
        entry.bank.Action.FLAG: Verdict.FLAGGED,
    }
    return str(entry.bank.name) if decided.get(entry.bank.action) == row.verdict else ""


def threshold(row: ModeratedImage) -> float | None:
    """The threshold ``row``'s score met, or ``None`` (e.g. blocked as a known rejected image)."""
    if row.similar_to_id is not None:
        return None
    if row.verdict == Verdict.BLOCKED:
        return conf.BLOCK_THRESHOLD
    return conf.FLAG_THRESHOLD if row.verdict == Verdict.FLAGGED else None


def owner_of(row: ModeratedImage) -> Any:
    """The user ``OWNER`` names for ``row``'s object, or ``None`` (unset, object gone, failed)."""
    if not conf.OWNER:
        return None
    obj = row.content_object
    if obj is None:
        return None
    try:
        return import_string(conf.OWNER)(obj)
    except Exception:
        logger.exception("OWNER %s failed for moderated image %s", conf.OWNER, row.pk)
        return None


def reasons(statement: Statement) -> str:
    """The facts and circumstances of the decision, in the current language."""
    if not statement.automated:
        text = _("A moderator looked at the image and decided that it breaks the rules.")
        return f"{text} {statement.note}".strip()
    if statement.note.startswith(BANK_NOTE_PREFIX):
        return _(
            "The image matches a known image in the hash bank “%(bank)s”, whose matches are "
            "restricted without the classifier."
        ) % {"bank": statement.note.removeprefix(BANK_NOTE_PREFIX)}
    if statement.threshold is None or statement.score is None:
        return _("The image is identical or very similar to an image a moderator rejected.")
    facts = {
        "model": statement.model_name,
        "score": f"{statement.score:.2f}",
        "threshold": f"{statement.threshold:.2f}",
    }
    if statement.verdict == Verdict.FLAGGED:
        return (
            _(
                "The classifier %(model)s gave the image an unsafe score of %(score)s, at or "
                "above the review threshold of %(threshold)s. It is hidden until a moderator "
                "has looked at it."
            )
            % facts
        )
    return (
        _(
            "The classifier %(model)s gave the image an unsafe score of %(score)s, at or above "
            "the threshold of %(threshold)s for blocking without review."
        )
        % facts
    )


def statement_path(statement: Statement) -> str | None:
    """The path of the owner's page for ``statement``, where the host mounts its URLs."""
    try:
        return reverse("nsfw_moderation:statement", args=[statement.public_id])
    except NoReverseMatch:
        return None


# --- E-mail -------------------------------------------------------------------------


def email_owner(
    sender: Any,
    statement: Statement,
    owner: Any = None,
    outcome: AppealOutcome | None = None,
    **kwargs: Any,
) -> None:
    """``decision_notice`` receiver: e-mail the owner, if there is one with an address.

    Templates (override them like any other): ``nsfw_moderation/email/notice_subject.txt``
    and ``notice_body.txt``; for an appeal's outcome, ``outcome_subject.txt`` and
    ``outcome_body.txt``. Their context: ``statement``, ``reasons``, ``outcome``,
    ``owner`` and ``statement_path``.
    """
    if owner is None or not getattr(owner, "email", ""):
        return
    name = "notice" if outcome is None else "outcome"
    context = {
        "statement": statement,
        "reasons": reasons(statement),
        "outcome": outcome,
        "owner": owner,
        "statement_path": statement_path(statement),
    }
    subject = render_to_string(f"nsfw_moderation/email/{name}_subject.txt", context)
    body = render_to_string(f"nsfw_moderation/email/{name}_body.txt", context)
    _safely(send_mail, " ".join(subject.split()), body, None, [owner.email])
