"""The moderator's admin: rows, audit events, review queue and dashboard.

For host apps: :class:`ModerationStatusMixin` (a changelist column) and
:class:`ModeratedImageInline` (a read-only inline) show each moderated field's
verdict on the host model's own admin pages.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.contrib.auth import get_permission_codename
from django.contrib.contenttypes.admin import GenericTabularInline
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.urls import NoReverseMatch, URLPattern, path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from nsfw_moderation import queue, registry, review, views
from nsfw_moderation.models import BlockedImage, ModeratedImage, ModerationEvent, Verdict

CSS = "nsfw_moderation/admin.css"
REVIEW_PERMISSION = "nsfw_moderation.review_moderatedimage"


def can_review(user: Any) -> bool:
    """May ``user`` see previews and approve or reject images?"""
    return bool(user.has_perm(REVIEW_PERMISSION))


class ReadOnlyForReviewersMixin:
    """An inline that nobody edits and that reviewers may read."""

    extra = 0
    can_delete = False

    def has_view_permission(self, request: HttpRequest, obj: object = None) -> bool:
        # What a reviewer reads before (re-)deciding.
        return super().has_view_permission(request, obj) or can_review(request.user)  # type: ignore[misc]

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class ModerationEventInline(ReadOnlyForReviewersMixin, admin.TabularInline):
    model = ModerationEvent
    readonly_fields = (
        "created_at",
        "kind",
        "actor",
        "verdict_before",
        "verdict_after",
        "score",
        "note",
    )
    fields = readonly_fields
    ordering = ["-created_at", "-pk"]


@admin.register(ModeratedImage)
class ModeratedImageAdmin(admin.ModelAdmin):
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
    list_filter = ["verdict", "status", "model_name", "content_type", "created_at"]
    list_select_related = ["content_type"]
    search_fields = ["file_name", "object_id", "sha256", "field_name", "error"]
    date_hierarchy = "created_at"
    inlines = [ModerationEventInline]
    actions = ["approve", "reject", "reclassify"]
    change_list_template = "nsfw_moderation/change_list.html"
    change_form_template = "nsfw_moderation/change_form.html"
    readonly_fields = [
        "content_type",
        "object_id",
        "object_link",
        "field_name",
        "file_name",
        "sha256",
        "status",
        "verdict",
        "score",
        "scores",
        "frame",
        "model_name",
        "reused_from",
        "similar_to",
        "phash",
        "attempts",
        "error",
        "classified_at",
        "reviewed_by",
        "reviewed_at",
        "created_at",
        "updated_at",
    ]
    fieldsets = [
        (None, {"fields": ["object_link", "field_name", "file_name", "verdict", "status"]}),
        (
            _("Classification"),
            {
                "fields": [
                    "score",
                    "scores",
                    "frame",
                    "model_name",
                    "sha256",
                    "reused_from",
                    "similar_to",
                    "phash",
                    "classified_at",
                    "attempts",
                    "error",
                ]
            },
        ),
        (_("Review"), {"fields": ["reviewed_by", "reviewed_at"]}),
        (
            _("Record"),
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

    def has_review_permission(self, request: HttpRequest) -> bool:
        """Backs ``@admin.action(permissions=["review"])`` and the review views."""
        codename = get_permission_codename("review", self.opts)
        return request.user.has_perm(f"{self.opts.app_label}.{codename}")

    def has_view_permission(self, request: HttpRequest, obj: object = None) -> bool:
        # A reviewer needs the row's page (its history) to decide well.
        return super().has_view_permission(request, obj) or self.has_review_permission(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        # Deleting a row would erase its audit trail and un-hide nothing safely.
        return False

    # --- URLs ----------------------------------------------------------------

    def get_urls(self) -> list[URLPattern]:
        # Named like the admin's own views: "<app>_<model>_<view>".
        prefix = f"{self.opts.app_label}_{self.opts.model_name}"
        return [
            path("review/", self._view(views.review_queue), name=f"{prefix}_review"),
            path("review/decide/", self._view(views.decide), name=f"{prefix}_decide"),
            path(
                "review/preferences/",
                self._view(views.save_preferences),
                name=f"{prefix}_review_preferences",
            ),
            path("dashboard/", self._view(views.dashboard), name=f"{prefix}_dashboard"),
            path(
                "<int:pk>/preview/",
                # cacheable: the view sets its own, stricter, Cache-Control.
                self._view(views.preview, cacheable=True),
                name=f"{prefix}_preview",
            ),
            *super().get_urls(),
        ]

    def _view(self, view: Callable[..., HttpResponse], *, cacheable: bool = False) -> Any:
        def bound(request: HttpRequest, **kwargs: Any) -> HttpResponse:
            return view(request, self, **kwargs)

        return self.admin_site.admin_view(bound, cacheable=cacheable)

    def review_urls(self) -> dict[str, str]:
        prefix = f"{self.admin_site.name}:{self.opts.app_label}_{self.opts.model_name}"
        names = ("review", "decide", "dashboard", "review_preferences")
        return {name: reverse(f"{prefix}_{name}") for name in names}

    # --- Pages ---------------------------------------------------------------

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        extra = {"can_review": self.has_review_permission(request), **self.review_urls()}
        return super().changelist_view(request, {**extra, **(extra_context or {})})

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
            **self.review_urls(),
        }
        return super().change_view(request, object_id, form_url, {**extra, **(extra_context or {})})

    # --- Actions -------------------------------------------------------------

    @admin.action(permissions=["review"], description=_("Approve selected images"))
    def approve(self, request: HttpRequest, queryset: QuerySet[ModeratedImage]) -> None:
        self._decide(request, queryset, Verdict.APPROVED)

    @admin.action(permissions=["review"], description=_("Reject selected images"))
    def reject(self, request: HttpRequest, queryset: QuerySet[ModeratedImage]) -> None:
        self._decide(request, queryset, Verdict.REJECTED)

    @admin.action(permissions=["review"], description=_("Classify selected images again"))
    def reclassify(self, request: HttpRequest, queryset: QuerySet[ModeratedImage]) -> None:
        count = queue.requeue(queryset, user=request.user)
        message = ngettext(
            "%(count)d image queued for classification.",
            "%(count)d images queued for classification.",
            count,
        )
        self.message_user(request, message % {"count": count}, messages.SUCCESS)

    def _decide(
        self, request: HttpRequest, queryset: QuerySet[ModeratedImage], verdict: str
    ) -> None:
        events = review.decide_many(queryset, verdict, user=request.user)
        message = ngettext(
            "%(count)d image marked %(verdict)s.",
            "%(count)d images marked %(verdict)s.",
            len(events),
        )
        label = Verdict(verdict).label
        self.message_user(request, message % {"count": len(events), "verdict": label})

    # --- Columns -------------------------------------------------------------

    @admin.display(description=_("object"))
    def object_link(self, obj: ModeratedImage) -> str:
        ct = obj.content_type
        url = views.object_admin_url(obj, self.admin_site.name)
        if url is None:
            return f"{ct.app_label}.{ct.model} {obj.object_id}"
        return format_html('<a href="{}">{}.{} {}</a>', url, ct.app_label, ct.model, obj.object_id)

    @admin.display(description=_("score"), ordering="score")
    def score_display(self, obj: ModeratedImage) -> str:
        return "–" if obj.score is None else f"{obj.score:.3f}"


@admin.register(ModerationEvent)
class ModerationEventAdmin(admin.ModelAdmin):
    list_display = [
        "created_at",
        "image",
        "kind",
        "actor",
        "verdict_before",
        "verdict_after",
        "score",
    ]
    list_filter = ["kind", "verdict_after", "created_at"]
    list_select_related = ["image__content_type", "actor"]
    search_fields = ["note", "file_name", "image__object_id"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(BlockedImage)
class BlockedImageAdmin(admin.ModelAdmin):
    """The blocklist: rejected images' perceptual hashes. Delete an entry to lift it."""

    list_display = ["created_at", "phash", "file_name", "image"]
    list_select_related = ["image__content_type"]
    search_fields = ["phash", "file_name"]
    readonly_fields = ["phash", "image", "file_name", "created_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


# --- For host apps -----------------------------------------------------------


def moderation_badges(
    rows: Sequence[ModeratedImage | None], fields: Sequence[str], site_name: str
) -> SafeString:
    """``field: verdict score`` badges, each linking to the row's admin page."""
    return format_html_join(
        " ", "{}", ((_badge(row, name, site_name),) for row, name in zip(rows, fields, strict=True))
    )


def _badge(row: ModeratedImage | None, field_name: str, site_name: str) -> SafeString:
    if row is None:
        return format_html('<span class="nsfw-badge">{}: –</span>', field_name)
    score = "" if row.score is None else f" {row.score:.2f}"
    label = format_html(
        '<span class="nsfw-badge nsfw-verdict-{}">{}: {}{}</span>',
        row.verdict,
        field_name,
        row.get_verdict_display(),
        score,
    )
    try:
        url = reverse(f"{site_name}:nsfw_moderation_moderatedimage_change", args=[row.pk])
    except NoReverseMatch:
        return label
    return format_html('<a href="{}" title="{}">{}</a>', url, _("Review"), label)


def attach_moderation(objects: Iterable[models.Model], model: type[models.Model]) -> None:
    """Load the moderation rows of ``objects`` in one query, onto each object.

    Sets ``obj._nsfw_moderation`` to ``{field_name: ModeratedImage | None}``.
    """
    fields = registry.fields_for(model)
    objects = list(objects)
    if not fields or not objects:
        return
    found = {
        (row.object_id, row.field_name): row
        for row in ModeratedImage.objects.filter(
            content_type=ContentType.objects.get_for_model(model),
            object_id__in=[str(obj.pk) for obj in objects],
            field_name__in=fields,
        )
    }
    for obj in objects:
        obj._nsfw_moderation = {  # type: ignore[attr-defined]
            name: found.get((str(obj.pk), name)) for name in fields
        }


class ModerationStatusMixin:
    """Add a "moderation" column to a host model's changelist.

    ``class PhotoAdmin(ModerationStatusMixin, admin.ModelAdmin): ...`` shows
    each moderated field's verdict and score, linking to its review page. The
    rows of a whole page are loaded in one query.
    """

    admin_site: admin.AdminSite
    model: type[models.Model]

    @property
    def media(self) -> forms.Media:
        return super().media + forms.Media(css={"all": [CSS]})  # type: ignore[misc]

    def get_list_display(self, request: HttpRequest) -> Sequence[Any]:
        columns = list(super().get_list_display(request))  # type: ignore[misc]
        if "moderation_status" not in columns:
            columns.append("moderation_status")
        return columns

    def get_changelist_instance(self, request: HttpRequest) -> ChangeList:
        changelist = super().get_changelist_instance(request)  # type: ignore[misc]
        # Evaluating the page's queryset here fills its cache, so the template
        # renders these same objects, already carrying their rows.
        attach_moderation(changelist.result_list, self.model)
        return changelist

    @admin.display(description=_("moderation"))
    def moderation_status(self, obj: models.Model) -> SafeString:
        fields = registry.fields_for(type(obj))
        if not hasattr(obj, "_nsfw_moderation"):
            attach_moderation([obj], type(obj))
        attached = getattr(obj, "_nsfw_moderation", {})
        rows = [attached.get(name) for name in fields]
        return moderation_badges(rows, fields, self.admin_site.name)


class ModeratedImageInline(ReadOnlyForReviewersMixin, GenericTabularInline):
    """Read-only moderation state of the object's files, on its change page."""

    model = ModeratedImage
    ct_field = "content_type"
    ct_fk_field = "object_id"
    readonly_fields = (
        "field_name",
        "verdict",
        "score",
        "status",
        "reviewed_by",
        "reviewed_at",
        "review_link",
    )
    fields = readonly_fields
    verbose_name = _("moderation")
    verbose_name_plural = _("moderation")

    @admin.display(description=_("review"))
    def review_link(self, obj: ModeratedImage) -> str:
        if obj.pk is None:
            return "–"
        url = reverse(
            f"{self.admin_site.name}:nsfw_moderation_moderatedimage_change", args=[obj.pk]
        )
        return format_html('<a href="{}">{}</a>', url, _("Review"))
