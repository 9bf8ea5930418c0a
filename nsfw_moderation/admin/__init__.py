"""The moderation admin, registered on the default admin site.

- :mod:`~nsfw_moderation.admin.moderation`: moderated images, review queue, dashboard.
- :mod:`~nsfw_moderation.admin.records`: moderation events, statements of reasons, the
  blocklist, hash banks.
- :mod:`~nsfw_moderation.admin.appeals`: the appeal queue and the appeals.
- :mod:`~nsfw_moderation.admin.host`: :class:`ModerationStatusMixin` and
  :class:`ModeratedImageInline` for host apps' own admins.

To mount the review pages on another admin site, register the same classes
there: ``moderation_site.register(ModeratedImage, ModeratedImageAdmin)``.
"""

from __future__ import annotations

from django.contrib import admin

from nsfw_moderation.admin.appeals import AppealAdmin
from nsfw_moderation.admin.host import ModeratedImageInline, ModerationStatusMixin
from nsfw_moderation.admin.moderation import ModeratedImageAdmin
from nsfw_moderation.admin.records import (
    BankEntryAdmin,
    BlockedImageAdmin,
    HashBankAdmin,
    ModerationEventAdmin,
    NoticeAdmin,
    StatementAdmin,
)
from nsfw_moderation.models import (
    Appeal,
    BankEntry,
    BlockedImage,
    HashBank,
    ModeratedImage,
    ModerationEvent,
    Notice,
    Statement,
)

__all__ = [
    "AppealAdmin",
    "BankEntryAdmin",
    "BlockedImageAdmin",
    "HashBankAdmin",
    "ModeratedImageAdmin",
    "ModeratedImageInline",
    "ModerationEventAdmin",
    "ModerationStatusMixin",
    "NoticeAdmin",
    "StatementAdmin",
]

admin.site.register(ModeratedImage, ModeratedImageAdmin)
admin.site.register(ModerationEvent, ModerationEventAdmin)
admin.site.register(BlockedImage, BlockedImageAdmin)
admin.site.register(Appeal, AppealAdmin)
admin.site.register(Statement, StatementAdmin)
admin.site.register(Notice, NoticeAdmin)
admin.site.register(HashBank, HashBankAdmin)
admin.site.register(BankEntry, BankEntryAdmin)
