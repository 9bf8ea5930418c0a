"""The moderator's admin for :class:`ModeratedImage`: rows, review queue, decisions, dashboard.

The extra views are methods of :class:`ModeratedImageAdmin`, mounted through
``get_urls()`` and wrapped by ``admin_site.admin_view`` (so the admin's login,
CSRF and site context apply). They work on any admin site, not only the
default one: every URL is reversed in ``request.current_app``, and every row
they show or change comes from :meth:`ModeratedImageAdmin.get_queryset`, so
an admin that scopes rows per tenant scopes the review pages too.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_permission_codename
from django.core.exceptions import PermissionDenied
from django.db.models import F, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import URLPattern, path
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.utils.html import format_html
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.http import require_GET, require_POST

from nsfw_moderation import enqueue, formats, notices, params, previews, review, stats
from nsfw_moderation.admin import decisions
from nsfw_moderation.admin.base import CSS, CleanLookupsMixin, admin_url, deny_framing
from nsfw_moderation.admin.display import (
    HostLabelsMixin,
    format_score,
    label_all,
    object_label,
    scores_table,
)
from nsfw_moderation.admin.forms import queue_filters
from nsfw_moderation.admin.listing import ContentTypeFilter, CountingPaginator, ModelNameFilter
from nsfw_moderation.admin.records import ModerationEventInline
from nsfw_moderation.conf import conf
from nsfw_moderation.models import Appeal, ModeratedImage, ModerationEvent, Verdict, VideoFrame

PAGE_SIZE = 24
#: Where a moderator's display preferences live in their session.
PREFERENCES_KEY = "nsfw_moderation.review"
PREFERENCES = ("reveal_all", "grayscale")


@dataclass
class Card:
    """One image in the review grid."""

    row: ModeratedImage
    preview_url: str | None
    change_url: str | None
    object_url: str | None
    object_label: str
    #: Why the verdict is what it is, where the score does not say it ("" where it does).
    reason: str = ""
    #: A video's sampled frames, worst first (empty for an image).
    frames: list[FrameLink] = field(default_factory=list)


@dataclass
class FrameLink:
    """A sampled frame of a video, as the strip on a card shows it."""

    time: float
    score: float | None
    url: str

    @property
    def clock(self) -> str:
        return notices.clock_time(self.time)


def verdict_reason(row: ModeratedImage) -> str:
    """Why ``row`` got its verdict when not for its score: a hash bank, a look-alike, an error.

    Moderators may read a bank's internal name (the owner is told its public
    description only); the bank comes with ``select_related("bank_entry__bank")``.
    """
    entry = row.bank_entry
    if entry is not None:
        return _("Matched hash bank “%(bank)s” (%(distance)s of 256 bits differ).") % {
            "bank": entry.bank.name,
            "distance": "–" if row.bank_distance is None else row.bank_distance,
        }
    if row.similar_to_id is not None:
        return _("Looks like an image a moderator rejected.")
    if row.error:
        return _("Could not be classified: %(error)s") % {"error": row.error}
    return ""


class ModeratedImageAdmin(HostLabelsMixin, CleanLookupsMixin, admin.ModelAdmin):
    list_display = [
        "__str__",
        "object_link",
        "field_name",
        "verdict",
        "score_display",
        "status",
        "model_name",
        "classified_at",
    ]
    # Filters whose choices cost nothing or come from the kept counts; no
    # date_hierarchy (it lists the dates of every row: SELECT DISTINCT over
    # the table on each request). "created_at" still filters by date.
    # "audit": the audit samples waiting for a moderator (a partial index).
    list_filter = ["verdict", "status", "audit", ModelNameFilter, ContentTypeFilter, "created_at"]
    list_select_related = ["content_type"]
    search_fields = ["file_name", "object_id", "sha256", "field_name", "error"]
    # Page counts from the kept counts where they can tell, and no second
    # count of every row next to a filtered one.
    paginator = CountingPaginator
    show_full_result_count = False
    inlines = [ModerationEventInline]
    actions = ["approve", "reject", "reclassify"]
    change_list_template = "nsfw_moderation/change_list.html"
    change_form_template = "nsfw_moderation/change_form.html"
    #: Templates of the extra views; override them like the admin's own.
    review_queue_template = "nsfw_moderation/review_queue.html"
    #: The "Undo" button in a rejection's message.
    undo_template = "nsfw_moderation/undo_rejection.html"
    dashboard_template = "nsfw_moderation/dashboard.html"
    readonly_fields = [
        "content_type",
        "object_id",
        "object_link",
        "field_name",
        "file_name",
        "file_format_display",
        "sha256",
        "status",
        "verdict",
        "audit",
        "score_display",
        "scores_display",
        "reason_display",
        "frame",
        "model_name",
        "reused_from",
        "similar_to",
        "pdq",
        "pdq_quality",
        "bank_entry",
        "bank_distance",
        "attempts",
        "error",
        "classified_at",
        "reviewed_by",
        "reviewed_at",
        "created_at",
        "updated_at",
    ]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "object_link",
                    "field_name",
                    "file_name",
                    "file_format_display",
                    "verdict",
                    "audit",
                    "status",
                ]
            },
        ),
        (
            gettext_lazy("Classification"),
            {
                "fields": [
                    "score_display",
                    "scores_display",
                    "reason_display",
                    "frame",
                    "model_name",
                    "sha256",
                    "reused_from",
                    "similar_to",
                    "pdq",
                    "pdq_quality",
                    "bank_entry",
                    "bank_distance",
                    "classified_at",
                    "attempts",
                    "error",
                ]
            },
        ),
        (gettext_lazy("Review"), {"fields": ["reviewed_by", "reviewed_at"]}),
        (
            gettext_lazy("Record"),
            {
                "fields": ["content_type", "object_id", "created_at", "updated_at"],
                "classes": ["collapse"],
            },
        ),
    ]

    @property
    def media(self) -> forms.Media:
        return super().media + forms.Media(css={"all": [CSS]})

    # --- Permissions ---------------------------------------------------------

    def has_review_permission(
        self, request: HttpRequest, obj: ModeratedImage | None = None
    ) -> bool:
        """May the user see previews and decide (``obj``: one row, or ``None`` for any)?

        Backs ``@admin.action(permissions=["review"])`` and every review view.
        Override it (with :meth:`get_queryset`) to scope reviewing, e.g. per tenant.
        """
        codename = get_permission_codename("review", self.opts)
        return request.user.has_perm(f"{self.opts.app_label}.{codename}")

    def has_view_permission(self, request: HttpRequest, obj: object = None) -> bool:
        # A reviewer needs the row's page (its history) to decide well.
        row = obj if isinstance(obj, ModeratedImage) else None
        return super().has_view_permission(request, obj) or self.has_review_permission(request, row)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        # Deleting a row would erase its audit trail and un-hide nothing safely.
        return False

    def _require_reviewer(self, request: HttpRequest) -> None:
        if not self.has_review_permission(request):
            raise PermissionDenied
        request.current_app = self.admin_site.name

    # --- URLs ----------------------------------------------------------------

    def get_urls(self) -> list[URLPattern]:
        # Named like the admin's own views: "<app>_<model>_<view>".
        prefix = f"{self.opts.app_label}_{self.opts.model_name}"
        return [
            path("review/", self._view(self.review_queue_view), name=f"{prefix}_review"),
            path("review/decide/", self._view(self.decide_view), name=f"{prefix}_decide"),
            path("review/undo/", self._view(self.undo_view), name=f"{prefix}_undo"),
            path(
                "review/preferences/",
                self._view(self.preferences_view),
                name=f"{prefix}_review_preferences",
            ),
            path("dashboard/", self._view(self.dashboard_view), name=f"{prefix}_dashboard"),
            path(
                "<int:pk>/frames/<int:frame>/",
                self._view(self.frame_view, cacheable=True),
                name=f"{prefix}_frame",
            ),
            path(
                "<int:pk>/preview/",
                # cacheable: the view sets its own, stricter, Cache-Control.
                self._view(self.preview_view, cacheable=True),
                name=f"{prefix}_preview",
            ),
            *super().get_urls(),
        ]

    def _view(self, view: Callable[..., HttpResponse], *, cacheable: bool = False) -> Any:
        return self.admin_site.admin_view(deny_framing(view), cacheable=cacheable)

    def _url(self, view: str, *args: Any) -> str:
        url = admin_url(self.admin_site.name, self.model, view, *args)
        assert url is not None, f"{view} is one of this admin's own views"
        return url

    def review_urls(self) -> dict[str, str]:
        names = ("review", "decide", "undo", "dashboard", "review_preferences")
        return {f"{name}_url": self._url(name) for name in names}

    def _context(self, request: HttpRequest, title: str, **extra: Any) -> dict[str, Any]:
        return {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": title,
            **self.review_urls(),
            **extra,
        }

    # --- Review queue ----------------------------------------------------------

    @staticmethod
    def _preferences(request: HttpRequest) -> dict[str, bool]:
        stored = request.session.get(PREFERENCES_KEY, {})
        return {name: bool(stored.get(name)) for name in PREFERENCES}

    @method_decorator(require_GET)
    def review_queue_view(self, request: HttpRequest) -> TemplateResponse:
        self._require_reviewer(request)
        visible = self.get_queryset(request)
        form = queue_filters(request, visible)
        related = ("content_type", "reviewed_by", "bank_entry__bank")
        rows = form.filter(visible.select_related(*related))
        page = CountingPaginator(rows, PAGE_SIZE).get_page(request.GET.get("p"))
        context = self._context(
            request,
            _("Review queue"),
            form=form,
            page=page,
            cards=self._cards(label_all(list(page.object_list))),
            preferences=self._preferences(request),
            decisions=review.DECISIONS,
        )
        return TemplateResponse(request, self.review_queue_template, context)

    def _cards(self, rows: Sequence[ModeratedImage]) -> list[Card]:
        frames = self._frame_links(rows)
        return [self._card(row, frames.get(row.pk, [])) for row in rows]

    def _card(self, row: ModeratedImage, frames: list[FrameLink]) -> Card:
        return Card(
            row=row,
            preview_url=f"{self._url('preview', row.pk)}?{urlencode({'sha256': row.sha256})}",
            change_url=self._url("change", row.pk),
            object_url=self._object_url(row),
            object_label=object_label(row),
            reason=verdict_reason(row),
            frames=frames,
        )

    def _frame_links(self, rows: Sequence[ModeratedImage]) -> dict[int, list[FrameLink]]:
        """The sampled frames of the videos among ``rows``, worst first: one query, no JPEG."""
        current = {row.pk: row.sha256 for row in rows}
        found = (
            VideoFrame.objects.filter(image__in=list(current))
            .order_by(F("score").desc(nulls_last=True), "time")
            .values_list("pk", "image_id", "sha256", "time", "score")
        )
        links: dict[int, list[FrameLink]] = {}
        for pk, image_id, sha256, time, score in found:
            if sha256 == current[image_id]:
                query = urlencode({"sha256": sha256})
                url = f"{self._url('frame', image_id, pk)}?{query}"
                links.setdefault(image_id, []).append(FrameLink(time, score, url))
        return links

    def _object_url(self, row: ModeratedImage) -> str | None:
        """The host object's change page in this admin site, if it has one."""
        model = row.content_type.model_class()
        return (
            None
            if model is None
            else admin_url(self.admin_site.name, model, "change", row.object_id)
        )

    # --- Decisions and preferences ---------------------------------------------

    @method_decorator(require_POST)
    def decide_view(self, request: HttpRequest) -> HttpResponseRedirect:
        """Approve or reject the posted rows.

        A per-image button posts ``decide_one=<decision>:<pk>``; the bulk buttons
        post ``decision=<decision>`` with the ticked ``ids``.
        """
        self._require_reviewer(request)
        rows = self.get_queryset(request)
        decisions.decide_posted(request, rows, functools.partial(self._decide, request))
        return HttpResponseRedirect(self._next_url(request))

    def _next_url(self, request: HttpRequest) -> str:
        target = request.POST.get("next", "")
        if target and url_has_allowed_host_and_scheme(
            target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        ):
            return target
        return self._url("review")

    @method_decorator(require_POST)
    def preferences_view(self, request: HttpRequest) -> HttpResponseRedirect:
        """Remember "reveal all" and "grayscale" for this moderator's session."""
        self._require_reviewer(request)
        request.session[PREFERENCES_KEY] = {name: name in request.POST for name in PREFERENCES}
        return HttpResponseRedirect(self._next_url(request))

    # --- Previews ----------------------------------------------------------------

    @method_decorator(require_GET)
    def preview_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        row = self._reviewable(request, pk)
        return self._jpeg(*previews.row_preview(row, request.GET.get("sha256")))

    @method_decorator(require_GET)
    def frame_view(self, request: HttpRequest, pk: int, frame: int) -> HttpResponse:
        """One sampled frame of a video, as the worker stored it (behind the same checks)."""
        row = self._reviewable(request, pk)
        jpeg = (
            VideoFrame.objects.filter(pk=frame, image=row, sha256=row.sha256)
            .values_list("jpeg", flat=True)
            .first()
        )
        if request.GET.get("sha256") != row.sha256 or jpeg is None:
            return self._jpeg(previews.placeholder_jpeg(), "changed")
        return self._jpeg(bytes(jpeg), "image")

    def _reviewable(self, request: HttpRequest, pk: int) -> ModeratedImage:
        self._require_reviewer(request)
        row = get_object_or_404(self.get_queryset(request), pk=pk)
        if not self.has_review_permission(request, row):
            raise PermissionDenied
        return row

    @staticmethod
    def _jpeg(data: bytes, kind: str) -> HttpResponse:
        response = HttpResponse(data, content_type="image/jpeg")
        response["Cache-Control"] = "private, no-store"
        response["X-Content-Type-Options"] = "nosniff"
        response["Content-Disposition"] = 'inline; filename="preview.jpg"'
        response["Content-Security-Policy"] = "default-src 'none'; sandbox"
        response["X-Moderation-Preview"] = kind
        return response

    # --- Dashboard ---------------------------------------------------------------

    @method_decorator(require_GET)
    def dashboard_view(self, request: HttpRequest) -> TemplateResponse:
        self._require_reviewer(request)
        rows = self.get_queryset(request)
        context = self._context(
            request,
            _("Moderation dashboard"),
            # None where this admin site does not register appeals.
            appeal_queue_url=admin_url(self.admin_site.name, Appeal, "queue"),
            **stats.dashboard_stats(timezone.now(), rows),
        )
        return TemplateResponse(request, self.dashboard_template, context)

    # --- Pages -------------------------------------------------------------------
    # The admin's own pages of these rows show previews and decisions too.

    @method_decorator(deny_framing)
    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        extra = {"can_review": self.has_review_permission(request), **self.review_urls()}
        return super().changelist_view(request, {**extra, **(extra_context or {})})

    @method_decorator(deny_framing)
    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        extra = {
            "can_review": self.has_review_permission(request),
            "decisions": review.DECISIONS,
            "video_frames": self._frames_of_object(request, object_id),
            **self.review_urls(),
        }
        return super().change_view(request, object_id, form_url, {**extra, **(extra_context or {})})

    def render_change_form(
        self, request: HttpRequest, context: dict[str, Any], *args: Any, **kwargs: Any
    ) -> HttpResponse:
        # Every field is the worker's or a decision's: no Save buttons on a page with
        # nothing to save (decisions have their own buttons).
        context["nothing_to_save"] = not editable(context)
        return super().render_change_form(request, context, *args, **kwargs)

    def _frames_of_object(self, request: HttpRequest, object_id: str) -> list[FrameLink]:
        row = (
            self.get_queryset(request).filter(pk=object_id).first() if object_id.isdigit() else None
        )
        return self._frame_links([row]).get(row.pk, []) if row is not None else []

    @method_decorator(deny_framing)
    def history_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        return super().history_view(request, object_id, extra_context)

    # --- Actions -----------------------------------------------------------------

    @admin.action(permissions=["review"], description=gettext_lazy("Approve selected images"))
    def approve(self, request: HttpRequest, queryset: QuerySet[ModeratedImage]) -> None:
        self._decide(request, queryset, Verdict.APPROVED)

    @admin.action(permissions=["review"], description=gettext_lazy("Reject selected images"))
    def reject(self, request: HttpRequest, queryset: QuerySet[ModeratedImage]) -> None:
        self._decide(request, queryset, Verdict.REJECTED)

    @admin.action(
        permissions=["review"], description=gettext_lazy("Classify selected images again")
    )
    def reclassify(self, request: HttpRequest, queryset: QuerySet[ModeratedImage]) -> None:
        allowed = [row.pk for row in queryset if self.has_review_permission(request, row)]
        count = enqueue.requeue(queryset.filter(pk__in=allowed), user=request.user)
        message = ngettext(
            "%(count)d image queued for classification.",
            "%(count)d images queued for classification.",
            count,
        )
        self.message_user(request, message % {"count": count}, messages.SUCCESS)

    def _decide(
        self,
        request: HttpRequest,
        queryset: QuerySet[ModeratedImage],
        verdict: str,
        *,
        note: str = "",
        user_note: str = "",
        seen: dict[int, str] | None = None,
    ) -> int:
        """Decide the rows the user may review; reports and returns how many were decided.

        A rejection's message offers to undo it (:meth:`undo_view`).
        """
        rows = [row for row in queryset if self.has_review_permission(request, row)]
        events = review.decide_many(
            rows, verdict, user=request.user, note=note, user_note=user_note, seen=seen
        )
        if events:
            message = decisions.decided_message(len(events), verdict)
            if verdict == Verdict.REJECTED and not conf.ON_REJECT:
                message = self._with_undo(request, message, events)
            self.message_user(request, message, messages.SUCCESS)
        return len(events)

    def _with_undo(self, request: HttpRequest, message: str, events: list[ModerationEvent]) -> str:
        """``message`` and a button that undoes ``events`` (a POST of its own, with CSRF)."""
        undo_url = admin_url(self.admin_site.name, self.model, "undo")
        if undo_url is None:  # this admin is not mounted on its site (a test, a script)
            return message
        context = {
            "message": message,
            "undo_url": undo_url,
            "events": events,
            # Back where the decision was made: the queue's page, or an action's list.
            "next": self._next_url(request) if "next" in request.POST else request.get_full_path(),
            "minutes": int(review.UNDO_WINDOW.total_seconds() // 60),
        }
        return render_to_string(self.undo_template, context, request)

    @method_decorator(require_POST)
    def undo_view(self, request: HttpRequest) -> HttpResponseRedirect:
        """Take back the posted rejections (``event=<pk>``), each a new audited decision."""
        self._require_reviewer(request)
        pks = params.parse_ids(request.POST.getlist("event"))
        rows = self.get_queryset(request)
        rejections = ModerationEvent.objects.filter(pk__in=pks, image__in=rows.values("pk"))
        undone = 0
        for rejection in rejections.select_related("image"):
            if not self.has_review_permission(request, rejection.image):
                continue
            try:
                review.undo_rejection(rejection, user=request.user)
            except review.NotUndoable as refused:
                messages.error(request, str(refused))
            else:
                undone += 1
        if undone:
            message = ngettext(
                "%(count)d rejection undone: the image is back as it was.",
                "%(count)d rejections undone: the images are back as they were.",
                undone,
            )
            messages.success(request, message % {"count": undone})
        elif not pks or not rejections:
            messages.error(request, _("Nothing to undo."))
        return HttpResponseRedirect(self._next_url(request))

    # --- Columns -----------------------------------------------------------------

    @admin.display(description=gettext_lazy("object"))
    def object_link(self, obj: ModeratedImage) -> str:
        url = self._object_url(obj)
        label = object_label(obj)
        return label if url is None else format_html('<a href="{}">{}</a>', url, label)

    @admin.display(description=gettext_lazy("format"))
    def file_format_display(self, obj: ModeratedImage) -> str:
        """The format read from the bytes, and the name's extension where it claims another."""
        if not obj.file_format:
            return "–"
        extension = formats.named_as_another_format(obj.file_format, obj.file_name)
        if not extension:
            return obj.file_format
        return _("%(format)s, named %(extension)s") % {
            "format": obj.file_format,
            "extension": extension,
        }

    @admin.display(description=gettext_lazy("score"), ordering="score")
    def score_display(self, obj: ModeratedImage) -> str:
        return format_score(obj.score)

    @admin.display(description=gettext_lazy("scores"))
    def scores_display(self, obj: ModeratedImage) -> str:
        return scores_table(obj.scores)

    @admin.display(description=gettext_lazy("why"))
    def reason_display(self, obj: ModeratedImage) -> str:
        return verdict_reason(obj) or "–"


def editable(context: dict[str, Any]) -> bool:
    """Does a change page's ``context`` hold a field that can be changed and saved?"""
    form = context.get("adminform")
    inlines = context.get("inline_admin_formsets", [])
    return bool(form is not None and form.form.fields) or any(
        inline.has_add_permission or inline.has_change_permission for inline in inlines
    )
