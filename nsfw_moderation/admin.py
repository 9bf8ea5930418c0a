from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from nsfw_moderation.models import ModeratedImage, ModerationEvent


class ModerationEventInline(admin.TabularInline):
    model = ModerationEvent
    extra = 0
    can_delete = False
    fields = ["created_at", "kind", "actor", "verdict_before", "verdict_after", "score", "note"]
    readonly_fields = fields
    ordering = ["-created_at", "-pk"]

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


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
        (_("Classification"), {"fields": ["score", "scores", "frame", "model_name", "sha256",
                                          "classified_at", "attempts", "error"]}),
        (_("Review"), {"fields": ["reviewed_by", "reviewed_at"]}),
        (_("Record"), {"fields": ["content_type", "object_id", "created_at", "updated_at"],
                       "classes": ["collapse"]}),
    ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description=_("object"))
    def object_link(self, obj: ModeratedImage) -> str:
        ct = obj.content_type
        try:
            url = reverse(f"admin:{ct.app_label}_{ct.model}_change", args=[obj.object_id])
        except NoReverseMatch:
            return f"{ct.app_label}.{ct.model} {obj.object_id}"
        return format_html('<a href="{}">{}.{} {}</a>', url, ct.app_label, ct.model, obj.object_id)

    @admin.display(description=_("score"), ordering="score")
    def score_display(self, obj: ModeratedImage) -> str:
        return "–" if obj.score is None else f"{obj.score:.3f}"


@admin.register(ModerationEvent)
class ModerationEventAdmin(admin.ModelAdmin):
    list_display = ["created_at", "image", "kind", "actor", "verdict_before", "verdict_after", "score"]
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
