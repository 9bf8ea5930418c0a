"""Admin pages of the permanent record: events, statements of reasons, the blocklist (read-only)."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from nsfw_moderation.admin.base import ReadOnlyForReviewersMixin, may_review
from nsfw_moderation.models import ModerationEvent


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


class StatementAdmin(admin.ModelAdmin):
    """Statements of reasons as written: what the owner was told."""

    list_display = ["created_at", "verdict", "automated", "model_name", "decided_by", "owner"]
    list_filter = ["verdict", "automated", "created_at"]
    list_select_related = ["decided_by", "owner"]
    search_fields = ["public_id", "object_id", "file_name", "note"]
    date_hierarchy = "created_at"

    def has_view_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return super().has_view_permission(request, obj) or may_review(request.user)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


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
