"""Admin pages of the permanent record: events, statements of reasons, the blocklist, hash banks.

Each record about a moderated row is scoped like that row
(:class:`~nsfw_moderation.admin.base.ScopedByImageMixin`). Hash banks act on
every row: only a moderator who sees every row may open them.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from nsfw_moderation import banks, hashlists, notices
from nsfw_moderation.admin.base import (
    CleanLookupsMixin,
    DenyFramingMixin,
    ReadOnlyForReviewersMixin,
    ReadOnlyMixin,
    ScopedByImageMixin,
    StylesheetMixin,
    sees_every_row,
    visible_rows,
)
from nsfw_moderation.admin.display import HostLabelsMixin, cut, format_score, object_label
from nsfw_moderation.models import BankEntry, HashBank, ModerationEvent, Notice


class ScoreMixin:
    """A record's unsafe score, as moderators read it (``0.076``)."""

    @admin.display(description=_("unsafe score"), ordering="score")
    def score_display(self, obj: Any) -> str:
        return format_score(obj.score)

    @admin.display(description=_("shadow model's unsafe score"))
    def shadow_score_display(self, obj: Any) -> str:
        return format_score(obj.shadow_score)


class ObjectMixin:
    """A record's host object, by its own name (read in bulk by :class:`HostLabelsMixin`)."""

    @admin.display(description=_("object"))
    def object_display(self, obj: Any) -> str:
        return object_label(obj)


class ModerationEventInline(
    ScoreMixin, ScopedByImageMixin, ReadOnlyForReviewersMixin, admin.TabularInline
):
    model = ModerationEvent
    extra = 0
    can_delete = False
    readonly_fields = (
        "created_at",
        "kind",
        "actor",
        "verdict_before",
        "verdict_after",
        "score_display",
        "note",
    )
    fields = readonly_fields
    ordering = ["-created_at", "-pk"]


class ModerationEventAdmin(
    StylesheetMixin,
    HostLabelsMixin,
    ScoreMixin,
    ObjectMixin,
    ScopedByImageMixin,
    DenyFramingMixin,
    ReadOnlyMixin,
    admin.ModelAdmin,
):
    list_display = [
        "created_at",
        "object_display",
        "field_name",
        "kind",
        "actor",
        "verdict_before",
        "verdict_after",
        "score_display",
    ]
    list_filter = ["kind", "verdict_after", "created_at"]
    list_select_related = ["actor"]
    # The page of one event: its scores rounded, as in the list.
    exclude = ["score", "shadow_score"]
    readonly_fields = ["score_display", "shadow_score_display"]
    search_fields = ["note", "file_name", "image__object_id"]
    date_hierarchy = "created_at"


class StatementAdmin(
    StylesheetMixin,
    HostLabelsMixin,
    ScoreMixin,
    ObjectMixin,
    ScopedByImageMixin,
    DenyFramingMixin,
    ReadOnlyForReviewersMixin,
    admin.ModelAdmin,
):
    """Statements of reasons as written: what the owner was told, about which object, to whom."""

    list_display = [
        "created_at",
        "object_display",
        "owner",
        "verdict",
        "automated",
        "decided_by",
    ]
    exclude = ["score"]
    readonly_fields = ["object_display", "score_display"]
    list_filter = ["verdict", "automated", "created_at"]
    list_select_related = ["decided_by", "owner"]
    search_fields = ["public_id", "object_id", "file_name", "note"]
    date_hierarchy = "created_at"


class NoticeAdmin(
    StylesheetMixin, ScopedByImageMixin, DenyFramingMixin, ReadOnlyMixin, admin.ModelAdmin
):
    """The outbox: which notices reached the owner, which wait, and why.

    A notice given up (its receivers kept failing, e.g. a mail server down for
    hours) is delivered again with the *Deliver again* action, by anyone who
    may view notices; the receivers that took it already are not called again.
    """

    image_path = "statement__image"
    list_display = ["created_at", "statement", "outcome", "sent_at", "attempts", "error"]
    list_filter = [("sent_at", admin.EmptyFieldListFilter)]
    list_select_related = ["statement", "outcome"]
    exclude = ["receivers_done"]
    readonly_fields = ["delivered_to"]
    actions = ["deliver_again"]

    @admin.display(description=_("delivered to"))
    def delivered_to(self, notice: Notice) -> str:
        """The receivers of ``decision_notice`` that took it, one after another."""
        return ", ".join(str(name) for name in notice.receivers_done) or "–"

    @admin.action(description=_("Deliver again"), permissions=["view"])
    def deliver_again(self, request: HttpRequest, queryset: QuerySet[Notice]) -> None:
        waiting = queryset.filter(sent_at__isnull=True)
        waiting.update(attempts=0, claimed_at=None, claim_token=None)
        delivered = sum(notices.deliver(pk) for pk in waiting.values_list("pk", flat=True))
        message = ngettext("%(count)d notice delivered.", "%(count)d notices delivered.", delivered)
        self.message_user(request, message % {"count": delivered}, messages.SUCCESS)


class BlockedImageAdmin(StylesheetMixin, CleanLookupsMixin, ScopedByImageMixin, admin.ModelAdmin):
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
    """A bank, and a list of hashes to add to it: every line checked before anything is saved."""

    #: Invalid lines named on the form at most; the command names them all.
    MAX_NAMED = 100

    hash_list = forms.FileField(
        label=_("Import hashes"),
        required=False,
        help_text=_(
            "A list of PDQ hashes to add: one hex hash per line, or a ThreatExchange TSV/CSV "
            "signal file. Stored images are matched against them by a worker."
        ),
    )
    skip_invalid = forms.BooleanField(
        label=_("Skip invalid lines"),
        required=False,
        help_text=_(
            "Import the valid lines of a list that has invalid ones. Unticked, a list with "
            "an invalid line imports nothing and each invalid line is named."
        ),
    )

    class Meta:
        model = HashBank
        fields = ["name", "action", "description", "public_description"]

    def clean(self) -> dict[str, Any]:
        # Here, not in clean_hash_list: skip_invalid is cleaned after hash_list.
        cleaned = super().clean() or {}
        self.skipped: list[hashlists.Problem] = []
        upload = cleaned.get("hash_list")
        skip = cleaned.get("skip_invalid", False)
        entries = self._entries(banks.read_list(upload.read()), skip) if upload else []
        if "hash_list" not in self.errors:
            cleaned["hash_list"] = entries  # what HashBankAdmin.save_model adds
        return cleaned

    def _entries(self, parsed: hashlists.Parsed, skip: bool) -> list[hashlists.Entry]:
        """The list's entries; none, with a form error, if a line is bad and may not be skipped."""
        if parsed.problems and not skip:
            self.add_error("hash_list", self._bad_lines(parsed.problems))
            return []
        self.skipped = parsed.problems  # named to the moderator once the rest is imported
        if not parsed.entries:
            self.add_error("hash_list", _("The file holds no PDQ hash."))
        return parsed.entries

    def _bad_lines(self, problems: list[hashlists.Problem]) -> list[str]:
        count = len(problems)
        head = ngettext(
            "%(count)d invalid line: nothing imported. Tick “Skip invalid lines” to "
            "import the others.",
            "%(count)d invalid lines: nothing imported. Tick “Skip invalid lines” to "
            "import the others.",
            count,
        ) % {"count": count}
        named = [banks.describe(problem) for problem in problems[: self.MAX_NAMED]]
        if count > self.MAX_NAMED:
            more = count - self.MAX_NAMED
            named.append(
                _("… and %(count)d more (the command nsfw_bank_import names them all).")
                % {"count": more}
            )
        return [head, *named]


class HashBankActionForm(HashBankForm):
    """:class:`HashBankForm`, where the built-in bank may block or flag, never allow.

    The built-in bank holds the moderators' rejections: allowing its matches
    would wave through look-alikes of rejected images. Flagging them (a person
    confirms each re-upload) stays a site's choice.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.built_in:
            action = self.fields["action"]
            action.choices = [  # type: ignore[attr-defined]
                choice
                for choice in action.choices  # type: ignore[attr-defined]
                if choice[0] != HashBank.Action.ALLOW
            ]

    def clean_action(self) -> str:
        action: str = self.cleaned_data["action"]
        if self.instance.built_in and action == HashBank.Action.ALLOW:
            raise forms.ValidationError(
                _("The bank of rejected images can block or flag its matches, never allow them.")
            )
        return action


class HashBankAdmin(CleanLookupsMixin, admin.ModelAdmin):
    """Banks of known images' hashes. Entries come from rejections and from imported lists.

    A bank acts on every moderated row, whoever's: a moderator whose site
    scopes their rows (e.g. per tenant) can neither open nor change one.
    Every change of a bank's action is a ``bank_changed`` event
    (:func:`nsfw_moderation.banks.set_action`).
    """

    form = HashBankActionForm

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

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self._unscoped(request) and super().has_module_permission(request)

    def has_view_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return self._unscoped(request) and super().has_view_permission(request, obj)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return self._unscoped(request) and super().has_add_permission(request)

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return self._unscoped(request) and super().has_change_permission(request, obj)

    def _unscoped(self, request: HttpRequest) -> bool:
        return sees_every_row(visible_rows(self.admin_site, request))

    def save_model(self, request: HttpRequest, obj: HashBank, form: Any, change: bool) -> None:
        action = obj.action
        if change and "action" in form.changed_data:
            # The action changes through banks.set_action alone, so that it is on record.
            obj.action = form.initial["action"]
        super().save_model(request, obj, form, change)
        if obj.action != action:
            banks.set_action(obj, action, request.user)
        entries = form.cleaned_data.get("hash_list") or []
        if entries:
            # Matching stored images is left to a worker (banks.add_entries dispatches it).
            added = banks.add_entries(obj, entries)
            message = ngettext(
                "%(count)d hash added to the bank.", "%(count)d hashes added to the bank.", added
            )
            self.message_user(request, message % {"count": added}, messages.SUCCESS)
        for problem in form.skipped[: form.MAX_NAMED]:
            self.message_user(request, banks.describe(problem), messages.WARNING)

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        # The built-in bank is the record of the moderators' rejections.
        if getattr(obj, "built_in", False) or not self._unscoped(request):
            return False
        return super().has_delete_permission(request, obj)


class BankEntryAdmin(StylesheetMixin, CleanLookupsMixin, ScopedByImageMixin, admin.ModelAdmin):
    """Each hash, what it matched, and who removed it. Entries are removed, never deleted.

    An entry of a rejected image is scoped like that image; an imported one
    (no image) is for moderators who see every row only.
    """

    list_display = ["pdq_display", "bank", "label", "quality", "created_at", "removed_at"]
    # Only the banks of the entries listed: other banks' names are not a scoped moderator's.
    list_filter = [
        ("bank", admin.RelatedOnlyFieldListFilter),
        ("removed_at", admin.EmptyFieldListFilter),
    ]
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

    @admin.display(description=_("PDQ hash"), ordering="pdq")
    def pdq_display(self, entry: BankEntry) -> str:
        return cut(entry.pdq)

    @admin.action(description=_("Remove selected entries from matching"), permissions=["change"])
    def remove_entries(self, request: HttpRequest, queryset: QuerySet[BankEntry]) -> None:
        count = banks.remove_entries(queryset, request.user)
        message = ngettext(
            "%(count)d entry removed: it no longer matches.",
            "%(count)d entries removed: they no longer match.",
            count,
        )
        self.message_user(request, message % {"count": count}, messages.SUCCESS)
