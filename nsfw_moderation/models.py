"""The moderation state of each moderated file, and its permanent record."""

from __future__ import annotations

import functools
import operator
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from django.conf import settings
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.db.models import CharField, TextField, Value
from django.db.models.expressions import BaseExpression, Expression
from django.db.models.functions import Cast, Concat, Replace, Substr
from django.utils.translation import gettext_lazy as _


class Status(models.TextChoices):
    """Where a row is in the machine pipeline."""

    QUEUED = "queued", _("Queued")
    PROCESSING = "processing", _("Processing")
    DONE = "done", _("Done")
    FAILED = "failed", _("Failed")


class Verdict(models.TextChoices):
    """What the policy, then a human, decided."""

    PENDING = "pending", _("Pending")
    ALLOWED = "allowed", _("Allowed")
    FLAGGED = "flagged", _("Flagged")
    BLOCKED = "blocked", _("Blocked")
    APPROVED = "approved", _("Approved")
    REJECTED = "rejected", _("Rejected")


def object_id_for(model: type[models.Model], pk: Any) -> str:
    """``pk`` of a ``model`` object as ``ModeratedImage.object_id`` stores it.

    Canonical, whatever the caller's spelling: Django accepts
    ``Upload(id="0123…CDEF")`` for a UUID key, which must be stored as
    ``str(UUID)``, the way the object reads back from the database.
    """
    pk_field = model._meta.pk
    assert pk_field is not None
    return str(pk_field.to_python(pk))


class ObjectId(Expression):
    """:func:`object_id_for` in SQL: a primary key expression (e.g. ``OuterRef("pk")``) as text.

    Spelled on the outer object's side, so that comparing it with
    ``object_id`` probes the unique (content type, object id, field) index
    once per object instead of converting every row of the table.
    """

    output_field = CharField()

    def __init__(self, model: type[models.Model], pk: Any) -> None:
        super().__init__()
        self.pk = pk
        pk_field = model._meta.pk
        while pk_field is not None and pk_field.is_relation:  # a multi-table subclass's parent link
            pk_field = pk_field.target_field  # type: ignore[attr-defined]
        self.is_uuid = isinstance(pk_field, models.UUIDField)

    def get_source_expressions(self) -> list[Any]:
        return [self.pk]

    def set_source_expressions(self, exprs: Sequence[Any]) -> None:
        (self.pk,) = exprs

    def as_sql(self, compiler: Any, connection: Any) -> Any:
        text = Cast(self.pk, CharField())
        # SQLite and MySQL store UUIDs as 32 hex digits: put the dashes back
        # where str(uuid) has them.
        return compiler.compile(_dashed(text) if self.is_uuid else text)

    def as_postgresql(self, compiler: Any, connection: Any) -> Any:
        # PostgreSQL's text form of a uuid is already str(uuid)'s.
        return compiler.compile(Cast(self.pk, TextField() if self.is_uuid else CharField()))


def _dashed(text: Any) -> Any:
    hex_digits = Replace(text, Value("-"), Value(""))
    groups = [Substr(hex_digits, start, length) for start, length in _UUID_GROUPS]
    spelled: list[Any] = [groups[0]]
    for group in groups[1:]:
        spelled += [Value("-"), group]
    return Concat(*spelled, output_field=CharField())


_UUID_GROUPS = ((1, 8), (9, 4), (13, 4), (17, 4), (21, 12))


def moderated_model(model: type[models.Model], field_name: str) -> type[models.Model]:
    """The concrete model whose table holds ``field_name`` (a parent, for subclasses)."""
    field = model._meta.get_field(field_name)
    owner = field.model
    return owner._meta.concrete_model or owner


def row_key(model: type[models.Model], pk: Any, field_name: str) -> dict[str, Any]:
    """The unique key of the row of one object's field, as field lookups."""
    owner = moderated_model(model, field_name)
    return {
        "content_type": ContentType.objects.get_for_model(owner),
        "object_id": object_id_for(owner, pk),
        "field_name": field_name,
    }


class ModeratedImageQuerySet(models.QuerySet["ModeratedImage"]):
    def of(
        self,
        model: type[models.Model],
        object_ids: Iterable[Any] | BaseExpression | models.F,
        field_name: str | Iterable[str],
    ) -> ModeratedImageQuerySet:
        """The rows of ``model`` objects with these pks (or a pk expression: ``OuterRef("pk")``).

        The one place that spells "the row of this object's field": the
        content type of the model that holds the field (a parent, for a
        subclass; the concrete model, for a proxy; its id, cached by Django),
        the object id as stored (:class:`ObjectId` for a pk expression), the
        field.
        """
        names = [field_name] if isinstance(field_name, str) else list(field_name)
        by_owner: dict[type[models.Model], list[str]] = {}
        for name in names:
            by_owner.setdefault(moderated_model(model, name), []).append(name)
        matches = [
            models.Q(
                content_type=ContentType.objects.get_for_model(owner),
                field_name__in=owned,
                **self._object_ids(owner, object_ids),
            )
            for owner, owned in by_owner.items()
        ]
        return self.filter(functools.reduce(operator.or_, matches)) if matches else self.none()

    @staticmethod
    def _object_ids(model: type[models.Model], object_ids: Any) -> dict[str, Any]:
        if isinstance(object_ids, BaseExpression | models.F):  # e.g. OuterRef("pk")
            return {"object_id": ObjectId(model, object_ids)}
        return {"object_id__in": [object_id_for(model, pk) for pk in object_ids]}

    def of_object(
        self, obj: models.Model, field_name: str | Iterable[str]
    ) -> ModeratedImageQuerySet:
        """The rows of one object's fields."""
        return self.of(type(obj), [obj.pk], field_name)


class ModeratedImage(models.Model):
    """The moderation state of one file field of one object."""

    content_type = models.ForeignKey(
        ContentType, on_delete=models.CASCADE, verbose_name=_("content type")
    )
    object_id = models.CharField(_("object id"), max_length=255)
    content_object = GenericForeignKey("content_type", "object_id")
    field_name = models.CharField(_("field"), max_length=255)
    file_name = models.CharField(_("file name"), max_length=1024)
    sha256 = models.CharField(_("SHA-256"), max_length=64, blank=True, db_index=True)

    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.QUEUED
    )
    verdict = models.CharField(
        _("verdict"), max_length=16, choices=Verdict.choices, default=Verdict.PENDING
    )
    score = models.FloatField(_("unsafe score"), null=True, blank=True, db_index=True)
    scores = models.JSONField(_("scores"), default=dict, blank=True)
    model_name = models.CharField(_("model"), max_length=255, blank=True)
    pdq = models.CharField(
        _("PDQ hash"),
        max_length=64,
        blank=True,
        help_text=_("The perceptual hash of the image (of its first frame, if animated)."),
    )
    pdq_quality = models.PositiveSmallIntegerField(_("PDQ quality"), null=True, blank=True)
    reused_from = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("scores reused from"),
        help_text=_("An earlier image with identical bytes whose scores were reused."),
    )
    similar_to = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("similar to rejected image"),
        help_text=_("A rejected image this one looks like: it was blocked without review."),
    )
    audit = models.BooleanField(
        _("audit sample"),
        default=False,
        help_text=_(
            "Drawn at random from the automatic verdicts for a moderator to check; "
            "the verdict stands meanwhile."
        ),
    )
    shadow_score = models.FloatField(
        _("shadow model's unsafe score"),
        null=True,
        blank=True,
        help_text=_(
            "From the shadow model, which is compared with the live one but never acted on."
        ),
    )
    shadow_scores = models.JSONField(_("shadow model's scores"), default=dict, blank=True)
    shadow_model_name = models.CharField(_("shadow model"), max_length=255, blank=True)
    frame = models.PositiveIntegerField(
        _("frame"),
        null=True,
        blank=True,
        help_text=_("For animated images: the index of the frame that scored highest."),
    )
    frame_time = models.FloatField(
        _("time of the worst frame"),
        null=True,
        blank=True,
        help_text=_("For videos: seconds from the start to the frame that scored highest."),
    )

    bank_entry = models.ForeignKey(
        "BankEntry",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="matches",
        verbose_name=_("matched hash"),
        help_text=_("The entry of a hash bank this image matched."),
    )
    bank_distance = models.PositiveSmallIntegerField(
        _("hash distance"),
        null=True,
        blank=True,
        help_text=_("How many of the 256 bits differ from the matched hash (0: identical)."),
    )

    attempts = models.PositiveIntegerField(
        _("attempts"),
        default=0,
        help_text=_("Classifications tried: the file may be the reason any of them failed."),
    )
    waits = models.PositiveIntegerField(
        _("waits"),
        default=0,
        help_text=_("Retries while the model or the storage was unavailable."),
    )
    error = models.TextField(_("error"), blank=True)
    file_format = models.CharField(
        _("format"),
        max_length=16,
        blank=True,
        help_text=_("The image format read from the file's bytes, whatever its name says."),
    )
    claim_token = models.UUIDField(null=True, blank=True, editable=False)
    claimed_at = models.DateTimeField(null=True, blank=True, editable=False)
    retry_at = models.DateTimeField(_("next attempt"), null=True, blank=True, editable=False)
    classified_at = models.DateTimeField(_("classified at"), null=True, blank=True)

    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("reviewed by"),
    )
    reviewed_at = models.DateTimeField(_("reviewed at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    objects = ModeratedImageQuerySet.as_manager()

    class Meta:
        verbose_name = _("moderated image")
        verbose_name_plural = _("moderated images")
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["content_type", "object_id", "field_name"],
                name="nsfw_moderation_one_row_per_field",
            )
        ]
        indexes = [
            models.Index(fields=["status", "updated_at"], name="nsfw_mod_status_idx"),
            models.Index(fields=["verdict", "-score"], name="nsfw_mod_verdict_idx"),
            # The worker's claim: the queue in claiming order, and nothing else.
            models.Index(
                fields=["updated_at", "id"],
                condition=models.Q(status="queued"),
                name="nsfw_mod_queued_idx",
            ),
            # The dashboard's queued rows that keep waiting on the model or storage.
            models.Index(
                fields=["waits"], condition=models.Q(status="queued"), name="nsfw_mod_waiting_idx"
            ),
            # Pages of rows in the admin's orders: all of them, and one verdict's.
            models.Index(fields=["created_at", "id"], name="nsfw_mod_created_idx"),
            models.Index(fields=["verdict", "created_at", "id"], name="nsfw_mod_verdict_date_idx"),
            # The audit samples waiting for a moderator.
            models.Index(
                fields=["created_at", "id"],
                condition=models.Q(audit=True),
                name="nsfw_mod_audit_idx",
            ),
        ]
        permissions = [("review_moderatedimage", _("Can review moderated images"))]

    def __str__(self) -> str:
        ct = self.content_type
        return f"{ct.app_label}.{ct.model}:{self.object_id}.{self.field_name}"


class AppendOnlyQuerySet(models.QuerySet[Any]):
    """Records that are added, never changed or removed, in bulk either.

    These refusals say early what is wrong; the database's triggers (migration
    ``0011_append_only``) enforce it whatever code writes.
    """

    def bulk_create(self, objs: Any, *args: Any, **kwargs: Any) -> list[Any]:
        if kwargs.get("update_conflicts"):
            raise ValueError(
                f"{self.model._meta.object_name} records are append-only: never changed."
            )
        return super().bulk_create(objs, *args, **kwargs)

    def update(self, **kwargs: Any) -> int:
        raise ValueError(f"{self.model._meta.object_name} records are append-only: never changed.")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise ValueError(f"{self.model._meta.object_name} records are append-only: never deleted.")


class AppendOnly(models.Model):
    """A record that is written once: never changed, never deleted, one by one or in bulk."""

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding or kwargs.get("force_update") or kwargs.get("update_fields"):
            raise ValueError(f"{self._meta.object_name} records are append-only: never changed.")
        # An INSERT, even for a copy that carries an existing primary key.
        super().save(*args, **{**kwargs, "force_insert": True})

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        raise ValueError(f"{self._meta.object_name} records are append-only: never deleted.")


#: The queryset of :class:`ModerationEvent` (kept by name: it predates the other records).
ModerationEventQuerySet = AppendOnlyQuerySet


class ModerationEvent(AppendOnly):
    """Append-only audit trail: every verdict change, by a worker or a person.

    An event stands alone: it names the object, field, file and bytes it is
    about, so it outlives its row, the object and the file.
    """

    class Kind(models.TextChoices):
        CLASSIFIED = "classified", _("Classified")
        FAILED = "failed", _("Failed")
        REVIEWED = "reviewed", _("Reviewed")
        REQUEUED = "requeued", _("Re-queued")
        REPLACED = "replaced", _("File replaced")
        WITHDRAWN = "withdrawn", _("Withdrawn")
        DISCOVERED = "discovered", _("Found by reconciliation")
        NOTIFIED = "notified", _("Statement of reasons issued")
        APPEALED = "appealed", _("Appealed")
        APPEAL_DECIDED = "appeal_decided", _("Appeal decided")
        FILE_REMOVED = "file_removed", _("File removed")
        MATCHED = "matched", _("Matched a hash bank")
        BANK_CHANGED = "bank_changed", _("Hash bank changed")

    image = models.ForeignKey(
        ModeratedImage,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="events",
        verbose_name=_("moderated image"),
    )
    content_type = models.ForeignKey(
        ContentType,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("content type"),
    )
    object_id = models.CharField(_("object id"), max_length=255, blank=True)
    field_name = models.CharField(_("field"), max_length=255, blank=True)
    sha256 = models.CharField(_("SHA-256"), max_length=64, blank=True)
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("actor"),
    )
    # Who, as they were called then: the user may be deleted, the record may not.
    actor_name = models.CharField(_("actor's username"), max_length=150, blank=True)
    verdict_before = models.CharField(_("verdict before"), max_length=16, choices=Verdict.choices)
    verdict_after = models.CharField(_("verdict after"), max_length=16, choices=Verdict.choices)
    score = models.FloatField(_("unsafe score"), null=True, blank=True)
    model_name = models.CharField(_("model"), max_length=255, blank=True)
    shadow_score = models.FloatField(_("shadow model's unsafe score"), null=True, blank=True)
    shadow_model_name = models.CharField(_("shadow model"), max_length=255, blank=True)
    audit = models.BooleanField(
        _("audit sample"),
        default=False,
        help_text=_(
            "Classified: the verdict was drawn for an audit. Reviewed: the decision audited it."
        ),
    )
    file_name = models.CharField(_("file name"), max_length=1024, blank=True)
    note = models.TextField(_("note"), blank=True)
    created_at = models.DateTimeField(_("when"), auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("moderation event")
        verbose_name_plural = _("moderation events")
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(
                fields=["content_type", "object_id", "field_name"], name="nsfw_mod_event_object_idx"
            ),
            # The dashboard's last 24 hours and flagged images per day.
            models.Index(fields=["created_at", "kind"], name="nsfw_event_recent_idx"),
            models.Index(
                fields=["kind", "verdict_after", "created_at"], name="nsfw_event_kind_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.verdict_before} → {self.verdict_after}"

    @classmethod
    def record(
        cls,
        row: ModeratedImage,
        kind: str,
        *,
        verdict_before: str,
        verdict_after: str | None = None,
        actor: Any = None,
        note: str = "",
        save: bool = True,
    ) -> ModerationEvent:
        """The event for a change of ``row``'s verdict, saved.

        Scores (live and shadow), models, file and audit mark come from ``row``;
        ``verdict_after`` defaults to ``row.verdict``. ``actor`` counts only when
        it is an authenticated user. With ``save=False`` the event is returned
        unsaved, for ``bulk_create``.
        """
        actor = actor if actor is not None and actor.is_authenticated else None
        event = cls(
            image=row,
            content_type_id=row.content_type_id,
            object_id=row.object_id,
            field_name=row.field_name,
            sha256=row.sha256,
            kind=kind,
            actor=actor,
            actor_name=actor.get_username() if actor is not None else "",
            verdict_before=verdict_before,
            verdict_after=row.verdict if verdict_after is None else verdict_after,
            score=row.score,
            model_name=row.model_name,
            shadow_score=row.shadow_score,
            shadow_model_name=row.shadow_model_name,
            audit=row.audit,
            file_name=row.file_name,
            note=note,
        )
        if save:
            event.save()
        return event


class Statement(AppendOnly):
    """A statement of reasons: what was restricted, why, by whom or what, and how to appeal.

    Written when an image is blocked or rejected (and, with ``NOTIFY_FLAGGED``,
    when it is flagged and hidden pending review). Like an event it stands
    alone, so it outlives the row, the object and the file.
    """

    public_id = models.UUIDField(_("public id"), default=uuid.uuid4, unique=True, editable=False)
    image = models.ForeignKey(
        ModeratedImage,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="statements",
        verbose_name=_("moderated image"),
    )
    event = models.ForeignKey(
        ModerationEvent,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("decision"),
    )
    content_type = models.ForeignKey(
        ContentType,
        on_delete=models.SET_NULL,
        null=True,
        related_name="+",
        verbose_name=_("content type"),
    )
    object_id = models.CharField(_("object id"), max_length=255)
    field_name = models.CharField(_("field"), max_length=255)
    file_name = models.CharField(_("file name"), max_length=1024, blank=True)
    sha256 = models.CharField(_("SHA-256"), max_length=64, blank=True)
    verdict = models.CharField(_("decision"), max_length=16, choices=Verdict.choices)
    automated = models.BooleanField(
        _("decided automatically"), help_text=_("By the classifier, without a person.")
    )
    model_name = models.CharField(_("model"), max_length=255, blank=True)
    score = models.FloatField(_("unsafe score"), null=True, blank=True)
    threshold = models.FloatField(_("threshold"), null=True, blank=True)
    frame_time = models.FloatField(
        _("time of the worst frame"),
        null=True,
        blank=True,
        help_text=_("For a video: seconds from its start to the frame that scored highest."),
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("decided by"),
    )
    # Never shown to the owner: for colleagues and the audit log.
    note = models.TextField(_("internal note"), blank=True)
    user_note = models.TextField(
        _("note to the owner"), blank=True, help_text=_("Shown to the owner with the statement.")
    )
    bank_description = models.TextField(
        _("hash bank, as the owner is told"),
        blank=True,
        help_text=_("The public description of the hash bank whose match decided, if any."),
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("owner"),
    )
    content_created_at = models.DateTimeField(_("uploaded at"), null=True, blank=True)
    created_at = models.DateTimeField(_("when"), auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("statement of reasons")
        verbose_name_plural = _("statements of reasons")
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.verdict}: {self.object_id}.{self.field_name} ({self.public_id})"


class Appeal(AppendOnly):
    """The owner's complaint against one statement of reasons: at most one each."""

    statement = models.OneToOneField(
        Statement, on_delete=models.PROTECT, related_name="appeal", verbose_name=_("statement")
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        related_name="+",
        verbose_name=_("owner"),
    )
    text = models.TextField(_("why the decision is wrong"), max_length=2000)
    created_at = models.DateTimeField(_("received at"), auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("appeal")
        verbose_name_plural = _("appeals")
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return f"appeal {self.pk} against statement {self.statement_id}"


class AppealOutcome(AppendOnly):
    """A moderator's decision on an appeal.

    ``upheld`` means the user was right: the restriction is lifted (the image
    is approved). Not upheld: the restriction stays.
    """

    appeal = models.OneToOneField(
        Appeal, on_delete=models.PROTECT, related_name="outcome", verbose_name=_("appeal")
    )
    upheld = models.BooleanField(
        _("upheld"), help_text=_("The user was right: the restriction is lifted.")
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        related_name="+",
        verbose_name=_("decided by"),
    )
    note = models.TextField(_("internal note"), blank=True)
    user_note = models.TextField(
        _("note to the owner"), blank=True, help_text=_("Shown to the owner with the outcome.")
    )
    event = models.ForeignKey(
        ModerationEvent,
        on_delete=models.SET_NULL,
        null=True,
        related_name="+",
        verbose_name=_("decision"),
    )
    created_at = models.DateTimeField(_("decided at"), auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("appeal outcome")
        verbose_name_plural = _("appeal outcomes")

    def __str__(self) -> str:
        return f"appeal {self.appeal_id}: {'upheld' if self.upheld else 'not upheld'}"


class Notice(models.Model):
    """The outbox: one notice to an owner, written in the decision's own transaction.

    A statement of reasons (``outcome`` empty) or an appeal's outcome waits
    here until :func:`nsfw_moderation.notices.deliver` has announced it
    (``decision_notice``) and so e-mailed it. A worker killed after its commit
    leaves the notice undelivered, never lost: the periodic maintenance
    delivers it. A claim (``claim_token``, ``claimed_at``) lets one process at
    a time deliver it.
    """

    statement = models.ForeignKey(
        Statement, on_delete=models.PROTECT, related_name="notices", verbose_name=_("statement")
    )
    outcome = models.OneToOneField(
        AppealOutcome,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="notice",
        verbose_name=_("appeal outcome"),
    )
    created_at = models.DateTimeField(_("written at"), auto_now_add=True)
    claim_token = models.UUIDField(null=True, blank=True, editable=False)
    claimed_at = models.DateTimeField(null=True, blank=True, editable=False)
    sent_at = models.DateTimeField(_("delivered at"), null=True, blank=True)
    # Each receiver of decision_notice that took it, never called for it again.
    receivers_done = models.JSONField(_("delivered to"), default=list, blank=True)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    error = models.TextField(_("last error"), blank=True)

    class Meta:
        verbose_name = _("notice")
        verbose_name_plural = _("notices")
        ordering = ["created_at", "pk"]
        indexes = [
            models.Index(
                fields=["created_at", "id"],
                condition=models.Q(sent_at__isnull=True),
                name="nsfw_notice_unsent_idx",
            )
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["statement"],
                condition=models.Q(outcome__isnull=True),
                name="nsfw_moderation_one_notice_per_statement",
            )
        ]

    def __str__(self) -> str:
        what = "outcome" if self.outcome_id else "statement"
        return f"{what} notice {self.pk} ({'sent' if self.sent_at else 'waiting'})"


class TransparencySubmission(models.Model):
    """A statement of reasons sent to the EU DSA Transparency Database, and whether it was taken.

    One per statement: its ``public_id`` is the ``puid`` the database keys on,
    so a submission that is retried can never file the statement twice.
    """

    statement = models.OneToOneField(
        Statement,
        on_delete=models.PROTECT,
        related_name="submission",
        verbose_name=_("statement"),
    )
    accepted_at = models.DateTimeField(_("accepted at"), null=True, blank=True, db_index=True)
    database_id = models.CharField(
        _("id in the database"),
        max_length=64,
        blank=True,
        help_text=_("The identifier the Transparency Database gave the statement."),
    )
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    error = models.TextField(_("last error"), blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("transparency submission")
        verbose_name_plural = _("transparency submissions")
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.statement_id}: {'accepted' if self.accepted_at else 'not yet accepted'}"


class Preview(models.Model):
    """What moderators see of a row's file: a small JPEG the worker re-encoded from its pixels.

    Made where the file was already decoded safely, so that the web process
    never decodes an upload; it holds pixels only, none of the upload's bytes
    or metadata. It shows the file it was made from (``file_name`` and
    ``sha256``): once the row holds another file, or new bytes under the same
    name, the preview waits for that file's classification.
    """

    image = models.OneToOneField(
        ModeratedImage,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="preview",
        verbose_name=_("moderated image"),
    )
    file_name = models.CharField(_("file name"), max_length=1024)
    sha256 = models.CharField(_("SHA-256"), max_length=64)
    jpeg = models.BinaryField(_("JPEG"))
    created_at = models.DateTimeField(_("made at"), auto_now=True)

    class Meta:
        verbose_name = _("preview")
        verbose_name_plural = _("previews")

    def __str__(self) -> str:
        return f"Preview of {self.file_name}"

    @classmethod
    def store(cls, row: ModeratedImage, jpeg: bytes) -> None:
        """Keep ``jpeg`` as the preview of ``row``'s current file and bytes, replacing any other."""
        cls.objects.update_or_create(
            image=row, defaults={"file_name": row.file_name, "sha256": row.sha256, "jpeg": jpeg}
        )


class VideoFrame(models.Model):
    """A frame the worker sampled from a video: when it shows, how it scored, a small JPEG of it.

    Like :class:`Preview`, the JPEG is re-encoded from decoded pixels, and the
    frames count only for the bytes they were sampled from (``sha256``): the
    review card shows them as a strip, worst first.
    """

    image = models.ForeignKey(
        ModeratedImage,
        on_delete=models.CASCADE,
        related_name="video_frames",
        verbose_name=_("moderated image"),
    )
    sha256 = models.CharField(_("SHA-256"), max_length=64)
    time = models.FloatField(_("time"), help_text=_("Seconds from the start of the video."))
    score = models.FloatField(_("unsafe score"), null=True, blank=True)
    scores = models.JSONField(_("scores"), default=dict, blank=True)
    pdq = models.CharField(_("PDQ hash"), max_length=64, blank=True)
    jpeg = models.BinaryField(_("JPEG"))

    class Meta:
        verbose_name = _("video frame")
        verbose_name_plural = _("video frames")
        ordering = ["image", "time"]
        constraints = [
            models.UniqueConstraint(
                fields=["image", "time"], name="nsfw_moderation_one_frame_per_time"
            )
        ]

    def __str__(self) -> str:
        return f"{self.image_id} at {self.time:.1f}s"

    @classmethod
    def store(cls, row: ModeratedImage, frames: Sequence[VideoFrame]) -> None:
        """Keep ``frames`` (unsaved) as the sampled frames of ``row``'s current bytes."""
        VideoFrame.objects.filter(image=row).delete()
        for frame in frames:
            frame.image, frame.sha256 = row, row.sha256
        VideoFrame.objects.bulk_create(frames)

    @classmethod
    def of(cls, row: ModeratedImage) -> models.QuerySet[VideoFrame]:
        """The frames sampled from the bytes ``row`` holds now, worst first."""
        frames = VideoFrame.objects.filter(image=row, sha256=row.sha256)
        return frames.order_by(models.F("score").desc(nulls_last=True), "time")


class ModeratedImageCount(models.Model):
    """How many ``ModeratedImage`` rows one group gained (``n`` > 0) or lost.

    A group is a (content type, model, verdict, status, tenth of the score).
    Database triggers (migration ``0008_scale``) add these rows in the same
    transaction as every insert, update and delete of moderated images, so the
    sum of ``n`` per group is exact in any transaction, however many workers
    write at once; :mod:`nsfw_moderation.counts` reads and folds them.
    """

    # Not a foreign key: counts of a deleted content type's rows must still be
    # written (and sum to zero) while its rows cascade away.
    content_type_id = models.IntegerField()
    model_name = models.CharField(max_length=255)
    verdict = models.CharField(max_length=16)
    status = models.CharField(max_length=16)
    #: ``floor(score × 10)`` within 0–9; ``None`` for rows without a score.
    score_bucket = models.SmallIntegerField(null=True)
    n = models.BigIntegerField()

    class Meta:
        # Internal bookkeeping, shown nowhere: no permissions, no translated name.
        verbose_name = "moderated image count"
        verbose_name_plural = "moderated image counts"
        default_permissions = ()

    def __str__(self) -> str:
        return f"{self.verdict}/{self.status}: {self.n:+d}"


class BlockedImage(models.Model):
    """The bytes (SHA-256) of an image a moderator rejected: identical bytes are blocked at once.

    Its look (PDQ hash) joins the built-in bank of rejected images
    (:class:`BankEntry`). Kept apart from the row, so that a new upload to the
    same field, or deleting the object, cannot wash the rejected image off the list.
    """

    sha256 = models.CharField(_("SHA-256"), max_length=64, blank=True, db_index=True)
    image = models.ForeignKey(
        ModeratedImage,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="blocklist_entries",
        verbose_name=_("rejected image"),
    )
    file_name = models.CharField(_("file name"), max_length=1024, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("blocked image")
        verbose_name_plural = _("blocked images")
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.sha256[:16]} ({self.file_name})"


class HashBank(models.Model):
    """A named list of PDQ hashes of known images, and what to do with an image that matches."""

    class Action(models.TextChoices):
        BLOCK = "block", _("Block")
        FLAG = "flag", _("Flag for review")
        ALLOW = "allow", _("Allow")

    name = models.CharField(_("name"), max_length=255, unique=True)
    action = models.CharField(_("action"), max_length=8, choices=Action.choices)
    description = models.TextField(
        _("internal description"), blank=True, help_text=_("For moderators only.")
    )
    public_description = models.CharField(
        _("public description"),
        max_length=500,
        blank=True,
        help_text=_(
            "What an owner is told about a match of this bank in a statement of reasons. "
            "Empty: a generic wording. Never the bank's name."
        ),
    )
    built_in = models.BooleanField(
        _("built in"),
        default=False,
        editable=False,
        help_text=_("Fed by the moderators' rejections."),
    )
    version = models.PositiveIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("hash bank")
        verbose_name_plural = _("hash banks")
        ordering = ["name"]
        constraints = [
            # The moderators' rejections: allowing their look-alikes would undo them.
            models.CheckConstraint(
                condition=~models.Q(built_in=True, action="allow"),
                name="nsfw_moderation_built_in_bank_never_allows",
            )
        ]

    def __str__(self) -> str:
        return self.name


class BankEntry(models.Model):
    """One hash of a bank. Removed entries are kept, with who removed them and why."""

    bank = models.ForeignKey(
        HashBank, on_delete=models.CASCADE, related_name="entries", verbose_name=_("hash bank")
    )
    pdq = models.CharField(_("PDQ hash"), max_length=64, db_index=True)
    quality = models.PositiveSmallIntegerField(_("PDQ quality"), null=True, blank=True)
    label = models.CharField(
        _("label"), max_length=255, blank=True, help_text=_("Where the hash came from.")
    )
    image = models.ForeignKey(
        ModeratedImage,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="bank_entries",
        verbose_name=_("rejected image"),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    removed_at = models.DateTimeField(_("removed at"), null=True, blank=True)
    removed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("removed by"),
    )

    class Meta:
        verbose_name = _("bank entry")
        verbose_name_plural = _("bank entries")
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.bank.name} #{self.pk}"


class ScanPosition(models.Model):
    """Where the periodic reconciliation stopped in one moderated field's objects."""

    content_type = models.ForeignKey(
        ContentType, on_delete=models.CASCADE, related_name="+", verbose_name=_("content type")
    )
    field_name = models.CharField(_("field"), max_length=255)
    last_object_id = models.CharField(
        _("last object id"),
        max_length=255,
        blank=True,
        help_text=_("The next run goes on after this object; empty: from the start."),
    )
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("scan position")
        verbose_name_plural = _("scan positions")
        constraints = [
            models.UniqueConstraint(
                fields=["content_type", "field_name"], name="nsfw_moderation_one_position_per_field"
            )
        ]

    def __str__(self) -> str:
        return f"{self.content_type}.{self.field_name} after {self.last_object_id or '–'}"
