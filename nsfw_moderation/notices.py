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
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from asgiref.sync import async_to_sync
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import FieldDoesNotExist
from django.core.mail import send_mail
from django.db import models, router, transaction
from django.template.loader import render_to_string
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.module_loading import import_string
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from nsfw_moderation import signals
from nsfw_moderation.conf import conf
from nsfw_moderation.db import moderation_db, retry_when_locked, write_transaction
from nsfw_moderation.models import (
    Appeal,
    AppealOutcome,
    HashBank,
    ModeratedImage,
    ModerationEvent,
    Notice,
    Statement,
    Verdict,
    object_id_for,
)

logger = logging.getLogger(__name__)

# --- Statements, in the decision's transaction ----------------------------------------


def owed_by_machine(row: ModeratedImage) -> bool:
    """Whether a worker's or a bank's verdict on ``row`` restricts it and so needs a statement.

    Not when the owner was told of this restriction of these bytes already and
    nothing lifted it since (the same file classified again, by a rescan).
    """
    restricts = row.verdict == Verdict.BLOCKED or (
        row.verdict == Verdict.FLAGGED and conf.NOTIFY_FLAGGED
    )
    return restricts and not _told_already(row)


def _told_already(row: ModeratedImage) -> bool:
    last = row.statements.order_by("-created_at", "-pk").first()
    if last is None or (last.sha256, last.verdict) != (row.sha256, row.verdict):
        return False
    lifting = row.events.filter(
        created_at__gte=last.created_at, verdict_after__in=[Verdict.ALLOWED, Verdict.APPROVED]
    )
    return not lifting.exists()


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
            frame_time=row.frame_time,
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
        # Robust: the decision has committed; a delivery that fails is the outbox's.
        later = functools.update_wrapper(functools.partial(deliver, pk), deliver)
        transaction.on_commit(later, using=moderation_db(), robust=True)


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
    """The user ``OWNER`` names for ``row``'s object, or ``None`` (unset, object gone, failed).

    The object is read from its own model's database (the moderation tables
    may live in another one), inside a savepoint there: a query that fails must
    not abort the transaction of the decision this is part of.
    """
    model = row.content_type.model_class() if conf.OWNER else None
    if model is None or not conf.OWNER:
        return None
    using = router.db_for_read(model)
    try:
        with transaction.atomic(using=using):
            obj = model._default_manager.db_manager(using).filter(pk=row.object_id).first()
            return None if obj is None else owner_of_object(obj)
    except Exception:
        logger.exception("OWNER %s failed for moderated image %s", conf.OWNER, row.pk)
        return None


def owner_of_object(obj: models.Model) -> Any:
    """The user ``OWNER`` names for ``obj``, or ``None`` when ``OWNER`` is unset."""
    return import_string(conf.OWNER)(obj) if conf.OWNER else None


def reasons(statement: Statement, *, public: bool = False) -> str:
    """The facts and circumstances of the decision, in the current language, for the owner.

    Built from what the owner may read: never the internal note, nor a hash
    bank's name (its public description, if it has one). ``public`` leaves
    out the moderator's note to the owner too, which may name people: for the
    Transparency Database, whose statements must hold no personal data. For a
    video, a last sentence says so and names the time of its worst frame.
    """
    text = _reasons(statement, public=public)
    if statement.frame_time is None:
        return text
    where = _("The file is a video; the frame that decided is at %(time)s.") % {
        "time": clock_time(statement.frame_time)
    }
    return f"{text} {where}"


def clock_time(seconds: float) -> str:
    """``seconds`` as a video player shows them: ``0:37``, ``1:02:05``."""
    minutes, second = divmod(int(seconds), 60)
    hours, minute = divmod(minutes, 60)
    return f"{hours}:{minute:02}:{second:02}" if hours else f"{minute}:{second:02}"


def _reasons(statement: Statement, *, public: bool) -> str:
    if not statement.automated:
        text = _("A moderator looked at the image and decided that it breaks the rules.")
        return text if public else f"{text} {statement.user_note}".strip()
    if statement.note.startswith(BANK_NOTE_PREFIX):
        text = _(
            "The image matches an image on a list of known images that are restricted on this "
            "site without the classifier."
        )
        return f"{text} {statement.bank_description}".strip()
    if statement.threshold is not None and statement.score is None:
        return _(
            "The image could not be examined automatically (it could not be read, or it is "
            "over a limit). It is hidden until a moderator has looked at it."
        )
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


# --- What the owner is shown ----------------------------------------------------------


@dataclass(frozen=True)
class OwnerState:
    """Where a decision stands now, for its owner: a stable ``code`` and its ``label``."""

    code: str
    label: str


def owner_state(statement: Statement) -> OwnerState:
    """Where ``statement``'s decision stands now, as its owner should read it.

    An appeal's outcome comes first, then a pending appeal, then what became
    of the image since (lifted by another decision, replaced, gone); else the
    restriction as it was stated. Codes: ``appeal_pending``,
    ``restored_after_appeal``, ``upheld_after_appeal``, ``restored``,
    ``replaced``, ``superseded``, ``gone``, and the statement's verdict (``rejected``,
    ``blocked``, ``flagged``). For the owner's pages and an API alike.
    """
    appeal = _appeal_of(statement)
    outcome = _outcome_of(appeal)
    if outcome is not None and outcome.upheld:
        return OwnerState("restored_after_appeal", _("Restored after appeal"))
    row = statement.image
    if row is not None and row.sha256 == statement.sha256 and row.verdict in _LIFTED:
        return OwnerState("restored", _("Restored by a moderator"))
    if outcome is not None:
        return OwnerState("upheld_after_appeal", _("Removal upheld after appeal"))
    if appeal is not None:
        return OwnerState("appeal_pending", _("Appeal pending"))
    if row is None:
        return OwnerState("gone", _("No longer on the site"))
    if row.sha256 != statement.sha256:
        return OwnerState("replaced", _("Replaced by another image since"))
    if row.verdict != statement.verdict:  # e.g. flagged, then rejected: a newer statement says
        return OwnerState("superseded", _("Followed by a later decision"))
    return OwnerState(statement.verdict, str(_RESTRICTED.get(statement.verdict, _("Restricted"))))


_LIFTED = (Verdict.ALLOWED, Verdict.APPROVED)
_RESTRICTED: dict[str, Any] = {
    Verdict.REJECTED: gettext_lazy("Removed by a moderator"),
    Verdict.BLOCKED: gettext_lazy("Blocked automatically"),
    Verdict.FLAGGED: gettext_lazy("Hidden until a moderator has looked at it"),
}


def _appeal_of(statement: Statement) -> Appeal | None:
    try:
        return statement.appeal
    except Appeal.DoesNotExist:
        return None


def _outcome_of(appeal: Appeal | None) -> AppealOutcome | None:
    try:
        return None if appeal is None else appeal.outcome
    except AppealOutcome.DoesNotExist:
        return None


def hosted_objects(statements: Iterable[Statement]) -> dict[tuple[int | None, str], Any]:
    """The host's objects ``statements`` are about, by ``(content_type_id, object_id)``.

    One query per model, each on that model's own database; an object that is
    gone (or a model that is) is simply missing.
    """
    wanted: dict[int | None, set[str]] = {}
    for statement in statements:
        wanted.setdefault(statement.content_type_id, set()).add(statement.object_id)
    found: dict[tuple[int | None, str], Any] = {}
    for content_type_id, object_ids in wanted.items():
        model = _model_of(content_type_id)
        if model is None:
            continue
        objects = model._default_manager.db_manager(router.db_for_read(model))
        for obj in objects.filter(pk__in=object_ids):
            found[(content_type_id, str(obj.pk))] = obj
    return found


def _model_of(content_type_id: int | None) -> type[models.Model] | None:
    if content_type_id is None:
        return None
    return ContentType.objects.get_for_id(content_type_id).model_class()


def object_name(statement: Statement, obj: Any = None) -> str:
    """What the owner calls the object: its ``str()``, or words for one that is gone."""
    if obj is not None:
        return str(obj)
    model = _model_of(statement.content_type_id)
    if model is None:
        return _("An image that is no longer on the site")
    return _("A %(model)s that is no longer on the site") % {"model": model._meta.verbose_name}


def object_description(statement: Statement, obj: Any = None) -> str:
    """The restricted image in words: which field of which object (“The image of the photo …”)."""
    model = _model_of(statement.content_type_id)
    if model is None:
        return object_name(statement, obj)
    try:
        found = model._meta.get_field(statement.field_name)
    except FieldDoesNotExist:
        found = None
    field = str(found.verbose_name) if isinstance(found, models.Field) else statement.field_name
    names = {"field": field, "model": model._meta.verbose_name}
    if obj is None:
        return _("The %(field)s of a %(model)s that is no longer on the site") % names
    return _("The %(field)s of the %(model)s “%(name)s”") % {**names, "name": str(obj)}


def owners_statement(obj: models.Model, field_name: str, user: Any) -> Statement | None:
    """The latest statement about ``obj``'s ``field_name`` that ``user`` owns, or ``None``."""
    if user is None or not user.is_authenticated:
        return None
    return (
        Statement.objects.filter(
            content_type=ContentType.objects.get_for_model(obj),
            object_id=object_id_for(type(obj), obj.pk),
            field_name=field_name,
            owner_id=user.pk,
        )
        .order_by("-created_at", "-pk")
        .first()
    )


def statement_path(statement: Statement) -> str | None:
    """The path of the owner's page for ``statement``, where the host mounts its URLs."""
    try:
        return reverse("nsfw_moderation:statement", args=[statement.public_id])
    except NoReverseMatch:
        return None


# --- Delivery: the outbox ------------------------------------------------------------

#: Tries of a notice whose receivers raised, before it is left undelivered (logged).
DELIVERY_ATTEMPTS = 5

#: Seconds a delivery's claim holds: a process that died delivering, or a try
#: that failed, waits this long before the maintenance tries again. Longer than
#: any e-mail should take, so that a slow receiver is never run twice at once.
CLAIM_SECONDS = 3600

#: Notices delivered by one run of the periodic maintenance, at most.
DELIVERY_BATCH = 500


def deliver(pk: int) -> bool:
    """Announce notice ``pk`` to every ``decision_notice`` receiver once: whether it is done now.

    A notice that was delivered, or that another process is delivering, is
    left alone: the claim is one conditional UPDATE. Each receiver that
    succeeds is recorded on the notice and never called for it again; one that
    raises is tried again by the periodic maintenance after ``CLAIM_SECONDS``,
    ``DELIVERY_ATTEMPTS`` times in all. So a failing receiver of the site's
    cannot make :func:`email_owner` send twice. Only a process killed in the
    middle of a receiver can make that receiver run again.
    """
    token = uuid.uuid4()
    if not retry_when_locked(lambda: _claim(pk, token)):
        return False
    notice = Notice.objects.select_related("statement", "statement__image", "outcome").get(pk=pk)
    done, errors = list(notice.receivers_done), []
    for key, receiver in _receivers():
        if key in done:
            continue
        try:
            receiver(signal=signals.decision_notice, sender=ModeratedImage, **_told(notice))
        except Exception as error:
            logger.exception("decision_notice: %s failed for notice %s", key, pk)
            errors.append(f"{key}: {error!r}")
        else:
            done.append(key)
            _record(pk, token, receivers_done=done)
    if errors and notice.attempts >= DELIVERY_ATTEMPTS:
        logger.error("Notice %s given up after %s tries: %s", pk, notice.attempts, errors)
    _record(pk, token, error="\n".join(errors), **({} if errors else {"sent_at": timezone.now()}))
    return not errors


def _told(notice: Notice) -> dict[str, Any]:
    statement = notice.statement
    return {
        "instance": statement.image,
        "statement": statement,
        "owner": statement.owner,
        "outcome": notice.outcome,
    }


def _receivers() -> list[tuple[str, Any]]:
    """``decision_notice``'s live receivers, each with a name that every process gives it."""
    # Django gives (sync, async) lists since 5.0; a receiver is called one by one
    # here so that one that succeeded is never called again for the same notice.
    live = signals.decision_notice._live_receivers(ModeratedImage)
    sync, asynchronous = live if isinstance(live, tuple) else (live, [])
    found = [(receiver_key(r), r) for r in sync]
    return found + [(receiver_key(r), async_to_sync(r)) for r in asynchronous]


def receiver_key(receiver: Any) -> str:
    """``module.qualname`` of a receiver (a bound method by its function's name)."""
    function = getattr(receiver, "__func__", receiver)
    name = getattr(function, "__qualname__", type(function).__qualname__)
    return f"{getattr(function, '__module__', '')}.{name}"


def _record(pk: int, token: uuid.UUID, **values: Any) -> None:
    retry_when_locked(lambda: Notice.objects.filter(pk=pk, claim_token=token).update(**values))


def _claim(pk: int, token: uuid.UUID) -> bool:
    return bool(
        _deliverable(Notice.objects.filter(pk=pk)).update(
            claim_token=token, claimed_at=timezone.now(), attempts=models.F("attempts") + 1
        )
    )


def _deliverable(notices: models.QuerySet[Notice]) -> models.QuerySet[Notice]:
    # Not delivered, not given up, and not claimed, or claimed CLAIM_SECONDS ago
    # (a process that died, or a try that failed).
    lapsed = timezone.now() - timedelta(seconds=CLAIM_SECONDS)
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
