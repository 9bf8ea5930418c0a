"""The moderator's admin for appeals: the appeal queue, its decisions, and the records.

The queue looks and works like the review queue (blurred previews, the same
keyboard shortcuts: ``a`` upholds, ``r`` keeps the restriction). Deciding
needs the site's review permission for the image, and another moderator than
everyone who has decided on it since the statement (see
:func:`nsfw_moderation.review.appeal_refusal`). Appeals are scoped like the
images they are about, by the site's own ``ModeratedImageAdmin``; no page
here may be framed. The functions at the end (scope, cards, refusals, the
posted decision) serve every appeal queue: this admin's and Wagtail's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path
from django.utils import formats, timezone
from django.utils.decorators import method_decorator
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST

from nsfw_moderation import notices, params, review
from nsfw_moderation.admin.base import (
    CSS,
    DenyFramingMixin,
    ReadOnlyForReviewersMixin,
    ScopedByImageMixin,
    admin_url,
    deny_framing,
    may_review_on,
    scoped_by_image,
)
from nsfw_moderation.admin.display import label_all, object_label
from nsfw_moderation.models import Appeal, AppealOutcome, ModeratedImage

#: Posted decision names → "upheld?". ``approve``/``reject`` match the review queue's keys.
#: The two notes of a decision: for colleagues only, and for the owner.
NOTES = ("note", "user_note")

OUTCOMES = {"approve": True, "reject": False}
QUEUE_SIZE = 50


@dataclass
class AppealCard:
    """One appeal in the queue."""

    appeal: Appeal
    reasons: str
    preview_url: str | None
    #: Why this moderator may not decide it ("" when they may): the buttons say so, disabled.
    refusal: str


class AppealAdmin(
    ScopedByImageMixin, DenyFramingMixin, ReadOnlyForReviewersMixin, admin.ModelAdmin
):
    image_path = "statement__image"
    list_display = ["created_at", "object_display", "owner", "outcome_display"]
    list_filter = ["created_at", "outcome__upheld"]
    list_select_related = ["statement", "owner", "outcome__decided_by"]
    readonly_fields = [
        "statement",
        "object_display",
        "owner",
        "text",
        "created_at",
        "outcome_display",
        "outcome_decided_by",
        "outcome_decided_at",
        "outcome_note",
        "outcome_user_note",
    ]
    fieldsets = [
        (None, {"fields": ["statement", "object_display", "owner", "text", "created_at"]}),
        (
            gettext_lazy("Outcome"),
            {
                "fields": [
                    "outcome_display",
                    "outcome_decided_by",
                    "outcome_decided_at",
                    "outcome_note",
                    "outcome_user_note",
                ]
            },
        ),
    ]
    change_list_template = "nsfw_moderation/appeal_change_list.html"
    appeal_queue_template = "nsfw_moderation/appeal_queue.html"

    @property
    def media(self) -> forms.Media:
        return super().media + forms.Media(css={"all": [CSS]})

    def _require_reviewer(self, request: HttpRequest) -> None:
        if not may_review_on(self.admin_site, request):
            raise PermissionDenied
        request.current_app = self.admin_site.name

    def get_urls(self) -> list[URLPattern]:
        prefix = f"{self.opts.app_label}_{self.opts.model_name}"
        return [
            path("queue/", self._view(self.queue_view), name=f"{prefix}_queue"),
            path("queue/decide/", self._view(self.decide_view), name=f"{prefix}_decide"),
            *super().get_urls(),
        ]

    def _view(self, view: Callable[..., HttpResponse]) -> Any:
        return self.admin_site.admin_view(deny_framing(view))

    def _url(self, view: str) -> str:
        url = admin_url(self.admin_site.name, self.model, view)
        assert url is not None, f"{view} is one of this admin's own views"
        return url

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        may_review = may_review_on(self.admin_site, request)
        extra = {"queue_url": self._url("queue") if may_review else None}
        return super().changelist_view(request, {**extra, **(extra_context or {})})

    def get_changelist_instance(self, request: HttpRequest) -> ChangeList:
        changelist = super().get_changelist_instance(request)
        # The objects appealed about, named in bulk for the page.
        label_all([appeal.statement for appeal in changelist.result_list])
        return changelist

    # --- The queue -------------------------------------------------------------------

    def pending(self, request: HttpRequest) -> QuerySet[Appeal]:
        """Appeals not decided yet, oldest first."""
        return open_appeals(self.get_queryset(request))

    @method_decorator(require_GET)
    def queue_view(self, request: HttpRequest) -> TemplateResponse:
        self._require_reviewer(request)
        appeals = list(self.pending(request)[:QUEUE_SIZE])
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            # As the appeal list's button says.
            "title": _("Appeal queue"),
            "cards": [self._card(request, appeal) for appeal in appeals],
            "decide_url": self._url("decide"),
        }
        return TemplateResponse(request, self.appeal_queue_template, context)

    def _card(self, request: HttpRequest, appeal: Appeal) -> AppealCard:
        image_id = appeal.statement.image_id
        preview = image_id and admin_url(self.admin_site.name, ModeratedImage, "preview", image_id)
        return appeal_card(self.admin_site, request, appeal, preview or None)

    @method_decorator(require_POST)
    def decide_view(self, request: HttpRequest) -> HttpResponseRedirect:
        """Decide one appeal: ``decide_one=approve:<pk>`` upholds it, ``reject:<pk>`` does not."""
        self._require_reviewer(request)
        decide_posted(self.admin_site, request, self.pending(request))
        return HttpResponseRedirect(self._url("queue"))

    # --- Columns and the appeal's page ------------------------------------------------

    @admin.display(description=gettext_lazy("object"))
    def object_display(self, obj: Appeal) -> str:
        return object_label(obj.statement)

    @admin.display(description=gettext_lazy("outcome"))
    def outcome_display(self, obj: Appeal) -> str:
        outcome = _outcome(obj)
        if outcome is None:
            return _("waiting")
        if outcome.upheld:
            return _("upheld: the restriction was lifted")
        return _("not upheld: the restriction stays")

    @admin.display(description=gettext_lazy("decided by"))
    def outcome_decided_by(self, obj: Appeal) -> str:
        outcome = _outcome(obj)
        return "–" if outcome is None or outcome.decided_by is None else str(outcome.decided_by)

    @admin.display(description=gettext_lazy("decided at"))
    def outcome_decided_at(self, obj: Appeal) -> str:
        outcome = _outcome(obj)
        return (
            "–"
            if outcome is None
            else formats.date_format(
                timezone.localtime(outcome.created_at), "SHORT_DATETIME_FORMAT"
            )
        )

    @admin.display(description=gettext_lazy("internal note (colleagues only)"))
    def outcome_note(self, obj: Appeal) -> str:
        outcome = _outcome(obj)
        return (outcome.note if outcome is not None else "") or "–"

    @admin.display(description=gettext_lazy("note to the owner (sent with the outcome)"))
    def outcome_user_note(self, obj: Appeal) -> str:
        outcome = _outcome(obj)
        return (outcome.user_note if outcome is not None else "") or "–"


def _outcome(appeal: Appeal) -> AppealOutcome | None:
    """``appeal``'s outcome, or ``None`` while it waits."""
    try:
        return appeal.outcome
    except AppealOutcome.DoesNotExist:
        return None


# --- What every appeal queue shares (this admin's, Wagtail's) -----------------------


def in_scope(site: admin.AdminSite, request: HttpRequest) -> QuerySet[Appeal]:
    """The appeals ``request.user`` sees on ``site``: as its appeal admin (or image admin) says."""
    registered = site._registry.get(Appeal)
    if isinstance(registered, admin.ModelAdmin):
        appeals: QuerySet[Appeal] = registered.get_queryset(request)
        return appeals
    return scoped_by_image(Appeal.objects.all(), site, request, AppealAdmin.image_path)


def open_appeals(appeals: QuerySet[Appeal]) -> QuerySet[Appeal]:
    """The appeals of ``appeals`` not decided yet, oldest first, with what a card shows."""
    return (
        appeals.filter(outcome__isnull=True)
        .select_related("statement__image", "statement__content_type", "owner")
        .order_by("created_at", "pk")
    )


def appeal_card(
    site: admin.AdminSite, request: HttpRequest, appeal: Appeal, preview: str | None
) -> AppealCard:
    """``appeal``'s card; ``preview``: the URL of its row's preview (``None``: no preview)."""
    statement = appeal.statement
    return AppealCard(
        appeal=appeal,
        reasons=notices.reasons(statement),
        # The bytes the statement is about: other bytes show as "changed".
        preview_url=f"{preview}?{urlencode({'sha256': statement.sha256})}" if preview else None,
        refusal=refusal(site, request, appeal),
    )


def refusal(site: admin.AdminSite, request: HttpRequest, appeal: Appeal) -> str:
    """Why ``request.user`` may not decide ``appeal`` ("" when they may)."""
    row = appeal.statement.image
    if row is not None and not may_review_on(site, request, row):
        return _("You may not review this image: another moderator must decide the appeal.")
    if review.appeal_refusal(appeal, request.user):
        return _(
            "You have decided on this image since the statement: another moderator must "
            "decide the appeal."
        )
    return ""


def decide_posted(site: admin.AdminSite, request: HttpRequest, pending: QuerySet[Appeal]) -> None:
    """Decide the appeal of ``pending`` that the POST names, as ``request.user``; say how it went.

    ``decide_one=approve:<pk>`` upholds it, ``reject:<pk>`` does not; the notes
    are ``note-<pk>`` (colleagues only) and ``user_note-<pk>`` (the owner).
    """
    decision, pk = params.parse_pair(request.POST.get("decide_one", ""))
    appeal = pending.filter(pk=pk or 0).first()
    row = None if appeal is None else appeal.statement.image
    if row is not None and not may_review_on(site, request, row):
        appeal = None  # as if it were not there: out of this moderator's scope
    if decision not in OUTCOMES or appeal is None:
        messages.error(request, _("This appeal is gone or has been decided already."))
        return
    notes = {
        name: params.clean_text(request.POST.get(f"{name}-{appeal.pk}", "")).strip()
        for name in NOTES
    }
    try:
        outcome = review.decide_appeal(
            appeal, user=request.user, upheld=OUTCOMES[decision], **notes
        )
    except review.AppealNotDecidable as refused:
        messages.error(request, str(refused))
    else:
        messages.success(
            request,
            _("Appeal upheld: the image is visible again.")
            if outcome.upheld
            else _("Appeal not upheld: the restriction stays."),
        )
