"""Repeat offenders: identical bytes, and images that look like rejected ones.

- Identical bytes (same SHA-256) are classified once per model: later copies
  reuse the scores (``DEDUPLICATE``, on by default).
- With ``BLOCKLIST_DISTANCE`` set, every classified image gets a perceptual hash
  (the ``imagehash`` package); a new image within that Hamming distance of a
  *rejected* image is blocked at once, linked to it for the reviewer.
"""

from __future__ import annotations

from collections.abc import Iterable

from PIL import Image

from nsfw_moderation.conf import conf
from nsfw_moderation.models import BlockedImage, ModeratedImage, Status, Verdict


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


def enabled() -> bool:
    return conf.BLOCKLIST_DISTANCE is not None


def perceptual_hash(image: Image.Image) -> str:
    import imagehash

    return str(imagehash.phash(image))


def closest_rejected(phash: str, candidates: Iterable[tuple[int, str]]) -> int | None:
    """The pk of the nearest rejected image within ``BLOCKLIST_DISTANCE``, if any."""
    limit = conf.BLOCKLIST_DISTANCE
    if limit is None or not phash:
        return None
    value = int(phash, 16)
    best: tuple[int, int] | None = None
    for pk, other in candidates:
        distance = (value ^ int(other, 16)).bit_count()
        if distance <= limit and (best is None or distance < best[0]):
            best = (distance, pk)
    return None if best is None else best[1]


def rejected_hashes() -> list[tuple[int, str]]:
    """``(row pk, hash)`` of every blocklisted image (loaded once per batch)."""
    return [
        (pk, phash)
        for pk, phash in BlockedImage.objects.values_list("image_id", "phash")
        if pk is not None
    ]


def remember_decision(row: ModeratedImage) -> None:
    """A rejection joins the blocklist; approving the same image again leaves it."""
    if not row.phash:
        return  # classified before the blocklist was switched on
    if row.verdict == Verdict.REJECTED:
        BlockedImage.objects.get_or_create(
            image=row, phash=row.phash, defaults={"file_name": row.file_name}
        )
    elif row.verdict == Verdict.APPROVED:
        BlockedImage.objects.filter(image=row, phash=row.phash).delete()
