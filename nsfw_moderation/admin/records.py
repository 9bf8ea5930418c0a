"""Admin pages of the permanent record: events, statements of reasons, the blocklist, hash banks."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from nsfw_moderation import banks, hashlists
from nsfw_moderation.admin.base import CleanLookupsMixin, ReadOnlyForReviewersMixin, ReadOnlyMixin
from nsfw_moderation.models import BankEntry, HashBank, ModerationEvent


class ModerationEventInline(ReadOnlyForReviewersMixin, admin.TabularInline):
    model = ModerationEvent
    extra = 0
    can_delete = False
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


class ModerationEventAdmin(ReadOnlyMixin, admin.ModelAdmin):
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


class StatementAdmin(ReadOnlyForReviewersMixin, admin.ModelAdmin):
    """Statements of reasons as written: what the owner was told."""

    list_display = ["created_at", "verdict", "automated", "model_name", "decided_by", "owner"]
    list_filter = ["verdict", "automated", "created_at"]
    list_select_related = ["decided_by", "owner"]
    search_fields = ["public_id", "object_id", "file_name", "note"]
    date_hierarchy = "created_at"


class BlockedImageAdmin(CleanLookupsMixin, admin.ModelAdmin):
    """The blocklist: rejected images' bytes (SHA-256). Delete an entry to lift it."""

    list_display = ["created_at", "sha256", "file_name", "image"]
    list_select_related = ["image__content_type"]
    search_fields = ["sha256", "file_name"]
    readonly_fields = ["sha256", "image", "file_name", "created_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class HashBankForm(forms.ModelForm):
    hash_list = forms.FileField(
        label=_("Import hashes"),
        required=False,
        help_text=_(
            "A list of PDQ hashes to add: one hex hash per line, or a ThreatExchange TSV/CSV "
            "signal file. Stored images are matched against them by a worker."
        ),
    )

    class Meta:
        model = HashBank
        fields = ["name", "action", "description"]

    def clean_hash_list(self) -> list[hashlists.Entry]:
        upload = self.cleaned_data.get("hash_list")
        if not upload:
            return []
        try:
            entries = list(hashlists.read(upload.read().decode("utf-8-sig")))
        except (UnicodeDecodeError, ValueError) as exc:
            raise forms.ValidationError(
                _("Not a list of PDQ hashes: %(reason)s"), params={"reason": exc}
            ) from exc
        if not entries:
            raise forms.ValidationError(_("The file holds no PDQ hash."))
        return entries


class HashBankAdmin(CleanLookupsMixin, admin.ModelAdmin):
    """Banks of known images' hashes. Entries come from rejections and from imported lists."""

    form = HashBankForm

    list_display = ["name", "action", "active_entries", "built_in", "updated_at"]
    list_filter = ["action", "built_in"]
    search_fields = ["name", "description"]
    readonly_fields = ["built_in", "created_at", "updated_at"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[HashBank]:
        active = Count("entries", filter=Q(entries__removed_at__isnull=True))
        return super().get_queryset(request).annotate(active_entries=active)

    @admin.display(description=_("entries"), ordering="active_entries")
    def active_entries(self, bank: Any) -> int:
        return bank.active_entries

    def save_model(self, request: HttpRequest, obj: HashBank, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        entries = form.cleaned_data.get("hash_list") or []
        if entries:
            # Matching stored images is left to a worker (banks.add_entries dispatches it).
            added = banks.add_entries(obj, entries)
            message = ngettext(
                "%(count)d hash added to the bank.", "%(count)d hashes added to the bank.", added
            )
            self.message_user(request, message % {"count": added}, messages.SUCCESS)

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        # The built-in bank is the record of the moderators' rejections.
        return not getattr(obj, "built_in", False) and super().has_delete_permission(request, obj)


class BankEntryAdmin(CleanLookupsMixin, admin.ModelAdmin):
    """Each hash, what it matched, and who removed it. Entries are removed, never deleted."""

    list_display = ["pdq", "bank", "label", "quality", "created_at", "removed_at", "removed_by"]
    list_filter = ["bank", ("removed_at", admin.EmptyFieldListFilter)]
    list_select_related = ["bank", "removed_by"]
    search_fields = ["pdq", "label"]
    readonly_fields = [
        "bank",
        "pdq",
        "quality",
        "label",
        "image",
        "created_at",
        "removed_at",
        "removed_by",
    ]
    actions = ["remove_entries"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    @admin.action(description=_("Remove selected entries from matching"), permissions=["change"])
    def remove_entries(self, request: HttpRequest, queryset: QuerySet[BankEntry]) -> None:
        count = banks.remove_entries(queryset, request.user)
        message = ngettext(
            "%(count)d entry removed: it no longer matches.",
            "%(count)d entries removed: they no longer match.",
            count,
        )
        self.message_user(request, message % {"count": count}, messages.SUCCESS)
