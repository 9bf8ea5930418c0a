"""For host apps' admins: a moderation column for changelists and a read-only inline.

``class PhotoAdmin(ModerationStatusMixin, admin.ModelAdmin)`` and
``inlines = [ModeratedImageInline]`` show each moderated field's verdict on the
host model's own admin pages, linking to the row in the same admin site.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.admin.views.main import ChangeList
from django.contrib.contenttypes.admin import GenericTabularInline
from django.db import models
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _

from nsfw_moderation import registry
from nsfw_moderation.admin.base import (
    CSS,
    ReadOnlyForReviewersMixin,
    ScopedByImageMixin,
    admin_url,
)
from nsfw_moderation.models import ModeratedImage, object_id_for


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
    url = admin_url(site_name, ModeratedImage, "change", row.pk)
    if url is None:
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
    rows = ModeratedImage.objects.of(model, [obj.pk for obj in objects], fields)
    found = {(row.object_id, row.field_name): row for row in rows}
    for obj in objects:
        obj._nsfw_moderation = {  # type: ignore[attr-defined]
            name: found.get((object_id_for(model, obj.pk), name)) for name in fields
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


class ModeratedImageInline(ScopedByImageMixin, ReadOnlyForReviewersMixin, GenericTabularInline):
    """Read-only moderation state of the object's files, on its change page.

    Only the rows the site's ``ModeratedImageAdmin`` shows the user are listed.
    """

    image_path = "pk"

    model = ModeratedImage
    extra = 0
    can_delete = False
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
        url = (
            None
            if obj.pk is None
            else admin_url(self.admin_site.name, ModeratedImage, "change", obj.pk)
        )
        if url is None:
            return "–"
        return format_html('<a href="{}">{}</a>', url, _("Review"))
