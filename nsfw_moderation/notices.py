"""Statements of reasons: written with the restriction they explain, then delivered to the owner.

A :class:`~nsfw_moderation.models.Statement` is written in the same
transaction as the verdict it explains: when a worker or a hash bank blocks an
image, when a moderator rejects one and, with ``NOTIFY_FLAGGED``, when one is
flagged and hidden pending review. Beside it goes a
:class:`~nsfw_moderation.models.Notice` (the outbox), also written for an
appeal's outcome. After the commit, :func:`deliver` announces each notice with
:data:`~nsfw_moderation.signals.decision_notice`, whose receiver
:func:`email_owner` (connected by default) e-mails the owner that ``OWNER``
finds. A process killed between the commit and the delivery leaves the notice
waiting, never lost: the periodic maintenance delivers it (:func:`deliver_waiting`).

What a moderator writes as the internal ``note`` never reaches the owner; only
``user_note`` does.
"""

from __future__ import annotations

import functools
import logging
import uuid
from datetime import timedelta
from typing import Any

from django.core.mail import send_mail
from django.db import models, transaction
from django.template.loader import render_to_string
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.module_loading import import_string
from django.utils.translation import gettext as _

from nsfw_moderation import signals
from nsfw_moderation.conf import conf
from nsfw_moderation.db import moderation_db, retry_when_locked, write_transaction
from nsfw_moderation.models import (
    AppealOutcome,
    HashBank,
    ModeratedImage,
    ModerationEvent,
    Notice,
    Statement,
    Verdict,
)

logger = logging.getLogger(__name__)

#: Verdicts that restrict an image, and so need a statement of reasons.
RESTRICTIONS = (Verdict.BLOCKED, Verdict.REJECTED, Verdict.FLAGGED)


# --- Statements, in the decision's transaction ----------------------------------------


def owed_by_machine(row: ModeratedImage) -> bool:
    """Whether a worker's or a bank's verdict on ``row`` restricts it and so needs a statement."""
    return row.verdict == Verdict.BLOCKED or (
        row.verdict == Verdict.FLAGGED and conf.NOTIFY_FLAGGED
    )


def write(
    row: ModeratedImage,
    *,
    automated: bool,
    user: Any = None,
    note: str = "",
    user_note: str = "",
) -> Statement:
    """Write the statement of reasons for ``row``'s current verdict, audited, with its notice.

    Call it inside the transaction that stored the verdict (it opens one of
    its own otherwise), then :func:`deliver_on_commit` the statement's notice.
    ``note`` is internal (colleagues, the audit log); ``user_note`` is shown
    to the owner.
    """
    kinds = (
        [ModerationEvent.Kind.CLASSIFIED, ModerationEvent.Kind.MATCHED]
        if automated
        else [ModerationEvent.Kind.REVIEWED]
    )
    bank = matched_bank(row) if automated else None
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
            threshold=threshold(row) if automated and bank is None else None,
            decided_by=user if user is not None and user.is_authenticated else None,
            note=note or (BANK_NOTE_PREFIX + bank.name if bank is not None else ""),
            user_note=user_note,
            bank_description=bank.public_description if bank is not None else "",
            owner=owner_of(row),
            content_created_at=row.created_at,
        )
        ModerationEvent.record(
            row,
            ModerationEvent.Kind.NOTIFIED,
            verdict_before=row.verdict,
            note=str(statement.public_id),
        )
        Notice.objects.create(statement=statement)
    return statement


def issue(
    row: ModeratedImage, *, automated: bool, user: Any = None, note: str = "", user_note: str = ""
) -> Statement:
    """Write the statement of reasons for ``row``'s verdict; deliver it once committed."""
    with write_transaction():
        statement = write(row, automated=automated, user=user, note=note, user_note=user_note)
        deliver_on_commit(statement)
    return statement


def deliver_on_commit(statement: Statement, outcome: AppealOutcome | None = None) -> None:
    """Deliver the notice of ``statement`` (or of its appeal's ``outcome``) once committed."""
    waiting = Notice.objects.filter(statement=statement, outcome=outcome, sent_at__isnull=True)
    for pk in waiting.values_list("pk", flat=True):
        transaction.on_commit(functools.partial(deliver, pk), using=moderation_db())


#: How an automated statement's note names the hash bank that decided.
BANK_NOTE_PREFIX = "bank:"


def matched_bank(row: ModeratedImage) -> HashBank | None:
    """The block or flag hash bank whose match decided ``row``'s verdict, or ``None``."""
    entry = row.bank_entry
    if entry is None:
        return None
    decided: dict[str, str] = {
        HashBank.Action.BLOCK: Verdict.BLOCKED,
        HashBank.Action.FLAG: Verdict.FLAGGED,
    }
    return entry.bank if decided.get(entry.bank.action) == row.verdict else None


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


def reasons(statement: Statement, *, public: bool = False) -> str:
    """The facts and circumstances of the decision, in the current language, for the owner.

    Built from what the owner may read: never the internal note, nor a hash
    bank's name (its public description, if it has one). ``public`` leaves
    out the moderator's note to the owner too, which may name people: for the
    Transparency Database, whose statements must hold no personal data.
    """
    if not statement.automated:
        text = _("A moderator looked at the image and decided that it breaks the rules.")
        return text if public else f"{text} {statement.user_note}".strip()
    if statement.note.startswith(BANK_NOTE_PREFIX):
        text = _(
            "The image matches an image on a list of known images that are restricted on this "
            "site without the classifier."
        )
        return f"{text} {statement.bank_description}".strip()
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


# --- Delivery: the outbox ------------------------------------------------------------

#: Deliveries of one notice whose receivers raised, before it is left undelivered
#: (logged, with its error kept on the notice).
DELIVERY_ATTEMPTS = 5

#: Notices delivered by one run of the periodic maintenance, at most.
DELIVERY_BATCH = 500


def deliver(pk: int) -> bool:
    """Announce notice ``pk`` with ``decision_notice`` once: returns whether it was announced now.

    A notice that was delivered, or that another process is delivering, is
    left alone: the claim is one conditional UPDATE. A receiver that raises
    leaves the notice undelivered, with its error; the periodic maintenance
    tries it again after ``STALE_AFTER`` seconds, ``DELIVERY_ATTEMPTS`` times
    in all. A process killed while delivering leaves a claim that runs out
    after ``STALE_AFTER``: only then, and only if the announcement did not
    finish, can the owner hear of it twice.
    """
    token = uuid.uuid4()
    if not retry_when_locked(lambda: _claim(pk, token)):
        return False
    notice = Notice.objects.select_related("statement", "statement__image", "outcome").get(pk=pk)
    statement = notice.statement
    responses = signals.decision_notice.send_robust(
        sender=ModeratedImage,
        instance=statement.image,
        statement=statement,
        owner=statement.owner,
        outcome=notice.outcome,
    )
    errors = [(receiver, error) for receiver, error in responses if isinstance(error, Exception)]
    for receiver, error in errors:
        logger.error("decision_notice: %r failed for notice %s", receiver, pk, exc_info=error)
    done = {"sent_at": timezone.now(), "error": ""}
    failed = {"error": "\n".join(f"{receiver!r}: {error!r}" for receiver, error in errors)}
    retry_when_locked(
        lambda: Notice.objects.filter(pk=pk, claim_token=token).update(
            **(failed if errors else done)
        )
    )
    return not errors


def _claim(pk: int, token: uuid.UUID) -> bool:
    return bool(
        _deliverable(Notice.objects.filter(pk=pk)).update(
            claim_token=token, claimed_at=timezone.now(), attempts=models.F("attempts") + 1
        )
    )


def _deliverable(notices: models.QuerySet[Notice]) -> models.QuerySet[Notice]:
    # Not delivered, not given up, and not claimed, or claimed by a process
    # that has had STALE_AFTER seconds (a failed try waits as long).
    lapsed = timezone.now() - timedelta(seconds=conf.STALE_AFTER)
    return notices.filter(sent_at__isnull=True, attempts__lt=DELIVERY_ATTEMPTS).filter(
        models.Q(claimed_at__isnull=True) | models.Q(claimed_at__lt=lapsed)
    )


def deliver_waiting() -> dict[str, int]:
    """Deliver the notices still waiting: the periodic maintenance's part for the outbox."""
    waiting = _deliverable(Notice.objects.order_by("created_at", "pk"))
    pks = list(waiting.values_list("pk", flat=True)[:DELIVERY_BATCH])
    return {"notices_delivered": sum(deliver(pk) for pk in pks)}


# --- E-mail -------------------------------------------------------------------------


def email_owner(
    sender: Any,
    statement: Statement,
    owner: Any = None,
    outcome: AppealOutcome | None = None,
    **kwargs: Any,
) -> None:
    """``decision_notice`` receiver: e-mail the owner, if there is one with an address.

    A failure to send (the mail server is down) raises, so :func:`deliver`
    tries the notice again later.

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
    # A failure propagates: the notice stays undelivered and is tried again.
    send_mail(" ".join(subject.split()), body, None, [owner.email])
