from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from demo_site.gallery.models import Photo


@admin.register(Photo)
class PhotoAdmin(admin.ModelAdmin):
    list_display = ["title", "uploaded_by", "created", "verdict", "score"]
    list_select_related = ["uploaded_by"]
    search_fields = ["title"]
    date_hierarchy = "created"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Photo]:
        return super().get_queryset(request).with_moderation()  # type: ignore[attr-defined]

    @admin.display(description="verdict", ordering="moderation_verdict")
    def verdict(self, obj: Photo) -> str:
        return getattr(obj, "moderation_verdict", None) or "–"

    @admin.display(description="unsafe score", ordering="moderation_score")
    def score(self, obj: Photo) -> str:
        value = getattr(obj, "moderation_score", None)
        return "–" if value is None else f"{value:.3f}"
