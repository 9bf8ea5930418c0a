"""Repeat offenders: identical bytes, and images that look like rejected ones.

- Identical bytes (same SHA-256) are classified once per model: later copies
  reuse the scores (``DEDUPLICATE``, on by default).
- Every image a moderator rejects joins the blocklist (:class:`BlockedImage`):
  the same bytes uploaded again are blocked at once, even after the rejected
  object and its row are gone.
- Its PDQ hash joins the built-in hash bank of rejected images
  (:mod:`nsfw_moderation.banks`): look-alikes are blocked too, uploaded later
  or already stored.
"""

from __future__ import annotations

from nsfw_moderation import banks
from nsfw_moderation.conf import conf
from nsfw_moderation.models import BankEntry, BlockedImage, ModeratedImage, Status, Verdict


def identical(sha256: str, model_name: str, exclude: int) -> ModeratedImage | None:
    """An earlier row with the same bytes classified by the same model, if any."""
    if not conf.DEDUPLICATE:
        return None
    return (
        ModeratedImage.objects.filter(sha256=sha256, model_name=model_name, status=Status.DONE)
        .exclude(pk=exclude)
        .exclude(reused_from__isnull=False)
        .order_by("pk")
        .first()
    )


def rejected_bytes(sha256: str) -> bool:
    """Whether a moderator rejected these exact bytes before."""
    return bool(sha256) and BlockedImage.objects.filter(sha256=sha256).exists()


def _label(row: ModeratedImage) -> str:
    # An upload's name may be long or hold control characters: one line, within the field.
    text = " ".join(f"{row} ({row.file_name})".split())
    most = BankEntry._meta.get_field("label").max_length or len(text)
    return text if len(text) <= most else text[: most - 1] + "…"


def remember_decision(row: ModeratedImage, *, taken_back: bool = False) -> None:
    """A rejection joins the blocklist and the built-in bank; approving the image lifts both.

    ``taken_back``: the decision replaced a rejection (an undo puts back a
    flag, a block…); it lifts both too.
    """
    if not (row.sha256 or row.pdq):
        return  # never decoded: nothing to recognise it by
    if row.verdict == Verdict.REJECTED:
        BlockedImage.objects.get_or_create(
            image=row, sha256=row.sha256, defaults={"file_name": row.file_name}
        )
        if row.pdq and banks.usable(row.pdq_quality):
            entry = (row.pdq, row.pdq_quality, _label(row))
            banks.add_entries(banks.builtin_bank(), [entry], image=row)
    elif row.verdict == Verdict.APPROVED or taken_back:
        BlockedImage.objects.filter(image=row, sha256=row.sha256).delete()
        banks.remove_entries(BankEntry.objects.filter(bank__built_in=True, image=row, pdq=row.pdq))
