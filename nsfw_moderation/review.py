"""Human decisions on moderated images: approve or reject, one or many.

Usable outside the admin (an API view, a management command, a shell). These
functions do not check permissions: callers decide who may review, e.g. with
``user.has_perm("nsfw_moderation.review_moderatedimage")``.

A decision applies to the bytes the person saw: given what they were shown
(``seen``), a row whose file changed in the meantime is left undecided.

Appeals against a restriction are decided with :func:`decide_appeal`. A
moderator takes back their own rejection, minutes later, with
:func:`undo_rejection`: a new decision, never an erased one.

Every decision, including a repeat one, is written to the append-only
:class:`~nsfw_moderation.models.ModerationEvent` log and announced with the
:data:`~nsfw_moderation.signals.image_reviewed` signal.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext as _

from nsfw_moderation import notices, signals
from nsfw_moderation.conf import conf
from nsfw_moderation.db import write_transaction
from nsfw_moderation.models import (
    Appeal,
    AppealOutcome,
    ModeratedImage,
    ModerationEvent,
    Notice,
    Statement,
    Status,
    Verdict,
)

#: Decision names (as used by forms, keyboard shortcuts and admin actions) → verdicts.
DECISIONS: dict[str, str] = {"approve": Verdict.APPROVED, "reject": Verdict.REJECTED}

# A row the worker is (re)classifying is about to get a machine verdict that
# would silently overwrite a human one, so it cannot be decided yet.
UNDECIDABLE_STATUSES = (Status.QUEUED, Status.PROCESSING)

#: How long a moderator may take back their own rejection (:func:`undo_rejection`).
UNDO_WINDOW = timedelta(minutes=5)


def approve(
    row: ModeratedImage, *, user: Any = None, note: str = "", user_note: str = ""
) -> ModerationEvent | None:
    """Mark ``row`` approved by ``user``; see :func:`decide`."""
    return decide(row, Verdict.APPROVED, user=user, note=note, user_note=user_note)


def reject(
    row: ModeratedImage, *, user: Any = None, note: str = "", user_note: str = ""
) -> ModerationEvent | None:
    """Mark ``row`` rejected by ``user``; see :func:`decide`."""
    return decide(row, Verdict.REJECTED, user=user, note=note, user_note=user_note)


def decide(
    row: ModeratedImage, verdict: str, *, user: Any = None, note: str = "", user_note: str = ""
) -> ModerationEvent | None:
    """Set ``row``'s verdict to ``approved`` or ``rejected``, audited.

    ``note`` is internal: it goes to the audit log, never to the owner.
    ``user_note`` goes to the owner with the statement of reasons of a
    rejection. Returns the event, or ``None`` when the row is waiting for (or
    in) a classification and so cannot be decided now.
    """
    rows = ModeratedImage.objects.filter(pk=row.pk)
    events = decide_many(rows, verdict, user=user, note=note, user_note=user_note)
    if not events:
        return None
    row.refresh_from_db()
    return events[0]


def decide_many(
    rows: models.QuerySet[ModeratedImage] | Iterable[ModeratedImage],
    verdict: str,
    *,
    user: Any = None,
    note: str = "",
    user_note: str = "",
    seen: Mapping[int, str] | None = None,
) -> list[ModerationEvent]:
    """Decide every decidable row of ``rows``; returns one event per decided row.

    ``seen`` maps row pks to the SHA-256 of the bytes the person was shown: a
    row whose file has changed since is not decided (see :func:`changed_since`).
    A rejection writes its statement of reasons in the same transaction.
    """
    if verdict not in DECISIONS.values():
        raise ValueError(f"A review decides 'approved' or 'rejected', not {verdict!r}.")
    seen = seen or {}
    with write_transaction():
        decided = [
            _apply(row, verdict, user, note, user_note)
            for row in _lock(rows)
            if row.sha256 == seen.get(row.pk, row.sha256)
        ]
    for row, event in decided:
        _announce(row, event, note, user_note)
    return [event for _, event in decided]


def _announce(row: ModeratedImage, event: ModerationEvent, note: str, user_note: str) -> None:
    signals.image_reviewed.send(
        sender=ModeratedImage,
        instance=row,
        user=event.actor,
        previous_verdict=event.verdict_before,
        note=note,
        user_note=user_note,
    )


def changed_since(rows: Iterable[ModeratedImage], seen: Mapping[int, str]) -> list[int]:
    """The pks of ``rows`` whose bytes are no longer those the person saw."""
    return [row.pk for row in rows if row.pk in seen and row.sha256 != seen[row.pk]]


def _lock(
    rows: models.QuerySet[ModeratedImage] | Iterable[ModeratedImage],
) -> models.QuerySet[ModeratedImage]:
    # Re-read under a row lock: the verdict "before" must be the stored one,
    # and a worker must not finish a classification half-way through.
    pks = (
        rows.values_list("pk", flat=True)
        if isinstance(rows, models.QuerySet)
        else [row.pk for row in rows]
    )
    return (
        ModeratedImage.objects.select_for_update()
        .filter(pk__in=list(pks))
        .exclude(status__in=UNDECIDABLE_STATUSES)
        .order_by("pk")
    )


def _apply(
    row: ModeratedImage, verdict: str, user: Any, note: str, user_note: str
) -> tuple[ModeratedImage, ModerationEvent]:
    before = row.verdict
    row.verdict = verdict
    row.reviewed_at = timezone.now()
    # Recorded before the mark is cleared: the event says it audited a sample.
    event = ModerationEvent.record(
        row, ModerationEvent.Kind.REVIEWED, verdict_before=before, actor=user, note=note
    )
    row.reviewed_by = event.actor
    row.audit = False
    row.save(update_fields=["verdict", "reviewed_by", "reviewed_at", "audit", "updated_at"])
    # A repeated rejection changes nothing for the owner: no second statement.
    if verdict == Verdict.REJECTED and before != Verdict.REJECTED:
        statement = notices.write(row, automated=False, user=user, note=note, user_note=user_note)
        notices.deliver_on_commit(statement)
    return row, event


class NotUndoable(Exception):
    """A rejection that cannot be taken back (now, or by this person); the message says why."""


def undo_rejection(rejection: ModerationEvent, *, user: Any, note: str = "") -> ModerationEvent:
    """Put back the verdict that ``rejection`` replaced: a new ``reviewed`` decision by ``user``.

    Only ``user``'s own rejection, within :data:`UNDO_WINDOW`, and only while
    nothing has happened to the image since: the same bytes, still rejected,
    no later event but the owner's notice (no other decision, classification,
    appeal, or file that ``ON_REJECT`` removed). Nothing is erased: the rejection, its
    statement of reasons and its notice stay on record, the undo is an event
    of its own; the image leaves the blocklist and the built-in bank again
    (:func:`nsfw_moderation.blocklist.remember_decision`), and an audit
    sample waits for its check again. Not with ``ON_REJECT``: what the hook
    did to the file is not taken back by a verdict. Raises :class:`NotUndoable`.
    """
    _check_undoable(rejection, user)
    with write_transaction():
        row = _lock(ModeratedImage.objects.filter(pk__in=[rejection.image_id])).first()
        if not _unchanged_since(row, rejection):
            raise NotUndoable(_("The image has changed since the rejection: look at it again."))
        assert row is not None
        note = note or _("Undid the rejection (event %(pk)s).") % {"pk": rejection.pk}
        _row, event = _apply(row, rejection.verdict_before, user, note, "")
        if rejection.audit:  # the rejection settled the sample; undone, it waits again
            row.audit = True
            row.save(update_fields=["audit", "updated_at"])
    _announce(row, event, note, "")
    return event


def _check_undoable(rejection: ModerationEvent, user: Any) -> None:
    """Raise :class:`NotUndoable` unless ``rejection`` is ``user``'s, recent, and undoable."""
    if conf.ON_REJECT:
        raise NotUndoable(_("ON_REJECT has acted on the file: the rejection cannot be undone."))
    own = rejection.actor_id is not None and rejection.actor_id == getattr(user, "pk", None)
    rejected = (
        rejection.kind == ModerationEvent.Kind.REVIEWED
        and rejection.verdict_after == Verdict.REJECTED
        and rejection.verdict_before != Verdict.REJECTED
    )
    if not (own and rejected):
        raise NotUndoable(_("Only the moderator who rejected an image may undo the rejection."))
    if timezone.now() - rejection.created_at > UNDO_WINDOW:
        raise NotUndoable(_("Too late to undo: decide on the image again instead."))


def _unchanged_since(row: ModeratedImage | None, rejection: ModerationEvent) -> bool:
    """Is ``row`` as ``rejection`` left it: same bytes, rejected, no event since?"""
    return (
        row is not None
        and row.sha256 == rejection.sha256
        and row.verdict == Verdict.REJECTED
        and not _events_since(rejection).exists()
    )


def _events_since(rejection: ModerationEvent) -> models.QuerySet[ModerationEvent]:
    """What happened to the image after ``rejection``, but for telling its owner about it."""
    later = ModerationEvent.objects.filter(image_id=rejection.image_id, pk__gt=rejection.pk)
    return later.exclude(kind=ModerationEvent.Kind.NOTIFIED)


class AppealNotDecidable(Exception):
    """An appeal that cannot be decided (now, or by this person); the message says why."""


#: Verdicts that hide an image: an appeal not upheld keeps one of them.
RESTRICTIVE = (Verdict.BLOCKED, Verdict.REJECTED, Verdict.FLAGGED)


def decide_appeal(
    appeal: Appeal, *, user: Any, upheld: bool, note: str = "", user_note: str = ""
) -> AppealOutcome:
    """Decide ``appeal``: ``upheld`` (the user was right) lifts the restriction, audited.

    An upheld appeal approves the image; one not upheld leaves the verdict as
    it is. Either way a person has looked at the image: an audit sample (a
    blocked one) is settled, its ``appeal_decided`` event marked ``audit`` (the
    block was wrong if upheld, right if not). The outcome is that event and an
    :class:`~nsfw_moderation.models.AppealOutcome`, announced with
    :data:`~nsfw_moderation.signals.appeal_decided`. Raises
    :class:`AppealNotDecidable` when it was decided already, when the image
    changed or is gone, when ``user`` has decided on the image since the
    statement (:func:`appeal_refusal`), and when it would keep a restriction
    that another decision has lifted since. ``note`` is internal; ``user_note``
    goes to the owner with the outcome, whose notice is written in the same
    transaction.
    """
    with write_transaction():
        row = _appealed_row(appeal, user)
        if not upheld and row.verdict not in RESTRICTIVE:
            raise AppealNotDecidable(
                _("The image is no longer restricted: only upholding the appeal fits.")
            )
        before, sampled = row.verdict, row.audit
        if upheld:
            row.verdict, row.reviewed_at = Verdict.APPROVED, timezone.now()
        event = ModerationEvent.record(
            row, ModerationEvent.Kind.APPEAL_DECIDED, verdict_before=before, actor=user, note=note
        )
        row.audit = False
        if upheld:
            row.reviewed_by = event.actor
            row.save(update_fields=["verdict", "reviewed_by", "reviewed_at", "audit", "updated_at"])
        elif sampled:
            row.save(update_fields=["audit", "updated_at"])
        outcome = AppealOutcome.objects.create(
            appeal=appeal,
            upheld=upheld,
            decided_by=event.actor,
            note=note,
            user_note=user_note,
            event=event,
        )
        Notice.objects.create(statement=appeal.statement, outcome=outcome)
        notices.deliver_on_commit(appeal.statement, outcome)
    signals.appeal_decided.send(sender=ModeratedImage, instance=row, appeal=appeal, outcome=outcome)
    return outcome


def _appealed_row(appeal: Appeal, user: Any) -> ModeratedImage:
    """The appealed row, locked, once every reason not to decide is ruled out."""
    statement = appeal.statement
    row = (
        ModeratedImage.objects.select_for_update()
        .filter(pk__in=[statement.image_id], sha256=statement.sha256)
        .exclude(status__in=UNDECIDABLE_STATUSES)
        .first()
    )
    if AppealOutcome.objects.filter(appeal=appeal).exists():
        raise AppealNotDecidable(_("This appeal has been decided already."))
    if row is None:
        raise AppealNotDecidable(_("The image is gone, changed or being classified again."))
    refusal = appeal_refusal(appeal, user)
    if refusal:
        raise AppealNotDecidable(refusal)
    return row


def appeal_refusal(appeal: Appeal, user: Any) -> str:
    """Why ``user`` may not decide ``appeal`` as a moderator ("" when they may).

    An appeal is decided by another moderator than everyone who has decided on
    the image since the statement: its author, and whoever reviewed the image
    or decided an appeal about it since (e.g. a rejection that keeps an
    automatic block in place). ``APPEAL_SAME_REVIEWER`` lifts this, for sites
    of one moderator.
    """
    if conf.APPEAL_SAME_REVIEWER or getattr(user, "pk", None) is None:
        return ""
    if user.pk in deciders_since(appeal.statement):
        return _("A moderator who has decided on this image cannot decide its appeal.")
    return ""


def deciders_since(statement: Statement) -> set[Any]:
    """The pks of the moderators who decided on ``statement``'s image since it was written."""
    found = {statement.decided_by_id} - {None}
    if statement.image_id is None:
        return found
    # Later than the statement, or than the decision it states (the same moment or after).
    since = models.Q(created_at__gte=statement.created_at)
    if statement.event_id is not None:
        since |= models.Q(pk__gt=statement.event_id)
    events = ModerationEvent.objects.filter(
        since,
        image_id=statement.image_id,
        kind__in=[ModerationEvent.Kind.REVIEWED, ModerationEvent.Kind.APPEAL_DECIDED],
        actor__isnull=False,
    )
    return found | set(events.values_list("actor_id", flat=True))
