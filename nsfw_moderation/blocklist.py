"""Repeat offenders: identical bytes, and images that look like rejected ones.

- Identical bytes (same SHA-256) are classified once per model: later copies
  reuse the scores (``DEDUPLICATE``, on by default).
- Every image a moderator rejects joins the blocklist (:class:`BlockedImage`):
  the same bytes uploaded again are blocked at once, even after the rejected
  object and its row are gone.
- With ``BLOCKLIST_DISTANCE`` set, every classified image gets a perceptual hash
  (the ``imagehash`` package); a new image within that Hamming distance of a
  *rejected* image is blocked at once, linked to it for the reviewer.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple, TypeVar

from PIL import Image

from nsfw_moderation.conf import conf
from nsfw_moderation.models import BlockedImage, ModeratedImage, Status, Verdict

_K = TypeVar("_K")


class Rejected(NamedTuple):
    """A blocklist entry, by the rejected row it came from (``None`` once that row is gone)."""

    image_id: int | None


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


def closest_rejected(phash: str, candidates: Iterable[tuple[_K, str]]) -> _K | None:
    """The key of the nearest candidate hash within ``BLOCKLIST_DISTANCE``, if any."""
    limit = conf.BLOCKLIST_DISTANCE
    if limit is None or not phash:
        return None
    value = int(phash, 16)
    best: tuple[int, _K] | None = None
    for key, other in candidates:
        distance = (value ^ int(other, 16)).bit_count()
        if distance <= limit and (best is None or distance < best[0]):
            best = (distance, key)
    return None if best is None else best[1]


def rejected_hashes() -> list[tuple[Rejected, str]]:
    """The blocklist's perceptual hashes (loaded once per batch).

    The rejected row may be gone (its object was deleted, or its field got a
    new file): the hash still blocks.
    """
    entries = BlockedImage.objects.exclude(phash="").values_list("image_id", "phash")
    return [(Rejected(image_id), phash) for image_id, phash in entries]


def rejected_bytes(sha256: str) -> bool:
    """Whether a moderator rejected these exact bytes before."""
    return bool(sha256) and BlockedImage.objects.filter(sha256=sha256).exists()


def remember_decision(row: ModeratedImage) -> None:
    """A rejection joins the blocklist; approving the same image again lifts it."""
    if not (row.sha256 or row.phash):
        return  # never decoded: nothing to recognise it by
    if row.verdict == Verdict.REJECTED:
        BlockedImage.objects.get_or_create(
            image=row,
            sha256=row.sha256,
            phash=row.phash,
            defaults={"file_name": row.file_name},
        )
    elif row.verdict == Verdict.APPROVED:
        BlockedImage.objects.filter(image=row, sha256=row.sha256, phash=row.phash).delete()
