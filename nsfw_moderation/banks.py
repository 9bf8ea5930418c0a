"""Hash banks: named lists of PDQ hashes of known images, matched on upload and after the fact.

Each bank has an action (:class:`HashBank.Action`):

- ``block``: a matching image is blocked without review;
- ``flag``: it is flagged for a moderator, whatever the model says;
- ``allow``: it is never blocked or flagged by the model or by another bank
  (known-safe pictures that trip the model). Bytes a moderator rejected stay
  blocked.

The built-in bank of images rejected by our moderators is fed by
:func:`nsfw_moderation.blocklist.remember_decision`. Others come from files
(``manage.py nsfw_bank_import``).

Each worker process loads the matcher index lazily, on its first batch, and
keeps it until the banks change (:func:`current_index` compares a version
checked once per batch). New hashes of a block or flag bank are matched against
every stored image in a worker (:func:`match_stored`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.db import transaction
from django.db.models import Count, Max, Q, Sum
from django.utils import timezone
from django.utils.translation import gettext, gettext_lazy

from nsfw_moderation import enqueue, hashing, hashlists, notices, signals
from nsfw_moderation.conf import conf
from nsfw_moderation.db import moderation_db, write_transaction
from nsfw_moderation.models import (
    BankEntry,
    HashBank,
    ModeratedImage,
    ModerationEvent,
    Status,
    Verdict,
)

logger = logging.getLogger(__name__)

#: The stable task path of retroactive matching.
MATCH_TASK = "nsfw_moderation.tasks.match_stored"

BUILT_IN_NAME = "Rejected by our moderators"

#: Stored images indexed and compared with new hashes at a time.
CHUNK = 100_000

#: Which verdicts a bank action may overturn, after the fact.
_OVERTURNS: dict[str, list[str]] = {
    HashBank.Action.BLOCK: [Verdict.ALLOWED, Verdict.FLAGGED],
    HashBank.Action.FLAG: [Verdict.ALLOWED],
}
#: An allow bank's match decides first, then a block bank's, then a flag bank's.
_RANK: dict[str, int] = {
    HashBank.Action.ALLOW: 0,
    HashBank.Action.BLOCK: 1,
    HashBank.Action.FLAG: 2,
}


@dataclass(frozen=True)
class Match:
    """Which entry of which bank an image matched, and how closely."""

    entry_id: int
    bank_name: str
    action: str
    distance: int
    image_id: int | None = None

    @property
    def note(self) -> str:
        note = (
            f'Matched entry #{self.entry_id} of hash bank "{self.bank_name}" '
            f"({self.action}; PDQ distance {self.distance})."
        )
        if self.image_id:
            note += f" Looks like rejected image #{self.image_id}."
        return note


@dataclass
class BankIndex:
    """Every active entry's hash, with its bank and rejected image in arrays, not Python objects."""

    index: hashing.Index
    bank_of: np.ndarray  # bank pk, per position
    image_of: np.ndarray  # rejected image pk (0: none), per position
    banks: dict[int, tuple[str, str]]  # bank pk → name, action


_cache: tuple[Any, BankIndex] | None = None


def builtin_bank() -> HashBank:
    bank, _ = HashBank.objects.get_or_create(
        built_in=True, defaults={"name": BUILT_IN_NAME, "action": HashBank.Action.BLOCK}
    )
    return bank


def usable(quality: int | None) -> bool:
    return quality is None or quality >= hashing.MIN_QUALITY


def active_entries() -> Any:
    return BankEntry.objects.filter(removed_at__isnull=True).filter(
        Q(quality__isnull=True) | Q(quality__gte=hashing.MIN_QUALITY)
    )


def version() -> tuple[Any, ...]:
    """Changes whenever an entry is added or removed, or a bank is changed or deleted."""
    state = HashBank.objects.aggregate(n=Count("pk"), v=Sum("version"), at=Max("updated_at"))
    return (state["n"], state["v"], state["at"])


def current_index() -> BankIndex:
    """This process's index of every active entry, rebuilt only when the banks changed."""
    global _cache
    now = version()
    if _cache is None or _cache[0] != now:
        _cache = (now, _build())
    return _cache[1]


def forget_index() -> None:
    global _cache
    _cache = None


def _build() -> BankIndex:
    rows = active_entries().values_list("pk", "pdq", "bank_id", "image_id")
    pks, hexes, bank_of, image_of = zip(*rows, strict=True) if rows else ((), (), (), ())
    banks = {
        pk: (name, action)
        for pk, name, action in HashBank.objects.values_list("pk", "name", "action")
    }
    return BankIndex(
        hashing.Index.of(list(hexes), list(pks)),
        np.asarray(bank_of, dtype=np.int64),
        np.asarray([image or 0 for image in image_of], dtype=np.int64),
        banks,
    )


def lookup(hashes: Iterable[hashing.Hash], index: BankIndex | None = None) -> Match | None:
    """The match that decides: an allow bank's first, then block, then flag; nearest first."""
    index = index or current_index()
    if not len(index.index):
        return None
    found = []
    for value in hashes:
        if not usable(value.quality):
            continue
        positions, distances = index.index.hits(value.hex, conf.PDQ_DISTANCE)
        for position, distance in zip(positions.tolist(), distances.tolist(), strict=True):
            name, action = index.banks[int(index.bank_of[position])]
            image = int(index.image_of[position]) or None
            entry = int(index.index.ids[position])
            found.append(Match(entry, name, action, distance, image))
    return min(found, key=lambda m: (_RANK[m.action], m.distance), default=None)


def read_list(data: bytes | str) -> hashlists.Parsed:
    """A hash list's entries and bad lines, a label held to what a :class:`BankEntry` stores."""
    max_label = BankEntry._meta.get_field("label").max_length
    assert max_label is not None
    return hashlists.parse(data, max_label=max_label)


def import_entries(bank: HashBank, entries: list[hashlists.Entry]) -> int:
    """Add ``entries`` to ``bank``, saving it first if it is new, in one transaction.

    A bank is created only with its list: an import that fails leaves no empty bank.
    Returns how many entries were added.
    """
    with write_transaction():
        if bank._state.adding:
            bank.save()
        return add_entries(bank, entries)


def describe(problem: hashlists.Problem) -> str:
    """A bad line of a hash list, in words: ``"line 3: not a PDQ hash (64 hex digits)"``."""
    reason = _REASONS[problem.reason] % {"limit": problem.limit}
    if problem.first == problem.last:
        return gettext("line %(line)d: %(reason)s") % {"line": problem.first, "reason": reason}
    where = {"first": problem.first, "last": problem.last, "reason": reason}
    return gettext("lines %(first)d to %(last)d: %(reason)s") % where


_REASONS = {
    hashlists.NOT_PDQ: gettext_lazy("not a PDQ hash (64 hex digits)"),
    hashlists.NOT_PDQ_NOR_HEADER: gettext_lazy(
        "not a PDQ hash (64 hex digits), nor a header naming a column of hashes "
        "(signal, signal_value, hash, pdq or indicator)"
    ),
    hashlists.NO_HASH_COLUMN: gettext_lazy(
        "the header names no column of hashes (signal, signal_value, hash, pdq or indicator)"
    ),
    hashlists.BAD_QUALITY: gettext_lazy("the quality is not a whole number from 0 to 100"),
    hashlists.CONTROL_CHARACTER: gettext_lazy(
        "the label holds a control character (a NUL byte, a tab, a line break…)"
    ),
    hashlists.LABEL_TOO_LONG: gettext_lazy("the label is longer than %(limit)s characters"),
    hashlists.FIELD_TOO_LONG: gettext_lazy("a field is longer than %(limit)s characters"),
    hashlists.MALFORMED: gettext_lazy("not a row of the table (a quote out of place?)"),
    hashlists.NOT_UTF8: gettext_lazy("not UTF-8 text"),
}


def add_entries(
    bank: HashBank, hashes: Iterable[tuple[str, int | None, str]], *, image: Any = None
) -> int:
    """Add ``(hex, quality, label)`` hashes to ``bank``; stored images are matched afterwards.

    Returns how many entries were added. Hashes the bank already holds are skipped.
    """
    known = set(bank.entries.filter(removed_at__isnull=True).values_list("pdq", flat=True))
    new = []
    for hex_value, quality, label in hashes:
        value = hex_value.lower()
        if not hashing.is_pdq(value) or value in known:
            continue
        known.add(value)
        new.append(BankEntry(bank=bank, pdq=value, quality=quality, label=label, image=image))
    if not new:
        return 0
    with write_transaction():
        after = bank.entries.aggregate(last=Max("pk"))["last"] or 0
        BankEntry.objects.bulk_create(new, batch_size=1000)
        _touch(bank)
    if bank.action != HashBank.Action.ALLOW:
        transaction.on_commit(
            lambda: enqueue.dispatch(MATCH_TASK, bank.pk, after), using=moderation_db()
        )
    return len(new)


def remove_entries(entries: Iterable[BankEntry], user: Any = None) -> int:
    """Take entries out of matching; they stay on record with who removed them, and when."""
    pks = [entry.pk for entry in entries]
    who = user if user is not None and user.is_authenticated else None
    removed = BankEntry.objects.filter(pk__in=pks, removed_at__isnull=True)
    banks = set(removed.values_list("bank_id", flat=True))
    count = removed.update(removed_at=timezone.now(), removed_by=who)
    for bank in HashBank.objects.filter(pk__in=banks):
        _touch(bank)
    return count


def _touch(bank: HashBank) -> None:
    bank.version += 1
    bank.save(update_fields=["version", "updated_at"])


def match_stored(bank_pk: int, after: int = 0) -> dict[str, int]:
    """Block or flag stored images that match entries of ``bank_pk`` newer than ``after``.

    Only machine verdicts are overturned (allowed, and flagged for a block
    bank): human decisions stand. An image that matches an allow bank is left
    alone. Each change is recorded as a ``matched`` event naming the entry.
    """
    bank = HashBank.objects.filter(pk=bank_pk).first()
    if bank is None or bank.action not in _OVERTURNS:
        return {"matched": 0}
    entries = list(
        active_entries().filter(bank=bank, pk__gt=after).values_list("pk", "pdq", "image_id")
    )
    if not entries:
        return {"matched": 0}
    matched = 0
    for chunk in _stored(_OVERTURNS[bank.action]):
        for position, (distance, entry) in _nearest(chunk, [pdq for _, pdq, _ in entries]).items():
            row_pk, pdq = chunk[position]
            entry_pk, _, image_id = entries[entry]
            match = Match(entry_pk, bank.name, bank.action, distance, image_id)
            matched += _apply(row_pk, pdq, match)
    return {"matched": matched}


def _nearest(chunk: list[tuple[int, str]], new: list[str]) -> dict[int, tuple[int, int]]:
    """Stored rows (by position) within reach of a new hash: distance to the nearest, and which."""
    # The stored rows are indexed, not the new hashes: a chunk is many times a
    # typical import, and each new hash then costs one lookup.
    index = hashing.Index.of([pdq for _, pdq in chunk], list(range(len(chunk))))
    best: dict[int, tuple[int, int]] = {}
    for entry, value in enumerate(new):
        for position, distance in index.search(value, conf.PDQ_DISTANCE):
            if position not in best or distance < best[position][0]:
                best[position] = (distance, entry)
    return best


def _stored(verdicts: list[str]) -> Iterator[list[tuple[int, str]]]:
    rows = (
        ModeratedImage.objects.filter(status=Status.DONE, verdict__in=verdicts)
        .exclude(pdq="")
        .filter(Q(pdq_quality__isnull=True) | Q(pdq_quality__gte=hashing.MIN_QUALITY))
        .order_by("pk")
    )
    last = 0
    while chunk := list(rows.filter(pk__gt=last).values_list("pk", "pdq")[:CHUNK]):
        yield chunk
        last = chunk[-1][0]


def _apply(row_pk: int, pdq: str, match: Match) -> int:
    decisive = lookup([hashing.Hash(pdq, hashing.MIN_QUALITY)])
    if decisive is not None and decisive.action == HashBank.Action.ALLOW:
        return 0
    verdict = Verdict.BLOCKED if match.action == HashBank.Action.BLOCK else Verdict.FLAGGED
    with write_transaction():
        rows = ModeratedImage.objects.select_for_update().filter(
            pk=row_pk, pdq=pdq, status=Status.DONE, verdict__in=_OVERTURNS[match.action]
        )
        row = rows.first()
        if row is None:
            return 0  # reviewed, replaced or re-queued meanwhile
        before = row.verdict
        row.verdict, row.bank_entry_id, row.bank_distance = verdict, match.entry_id, match.distance
        row.similar_to_id = match.image_id or row.similar_to_id
        # An audit sample audits the classifier's own verdict, which a bank
        # has now replaced: it leaves the sample (flagged, a person sees it anyway).
        row.audit = False
        row.save(
            update_fields=[
                "verdict",
                "bank_entry",
                "bank_distance",
                "similar_to",
                "audit",
                "updated_at",
            ]
        )
        ModerationEvent.record(
            row, ModerationEvent.Kind.MATCHED, verdict_before=before, note=match.note
        )
        if notices.owed_by_machine(row):
            notices.deliver_on_commit(notices.write(row, automated=True))
    signal = signals.image_blocked if verdict == Verdict.BLOCKED else signals.image_flagged
    signal.send(sender=ModeratedImage, instance=row)
    return 1


def set_action(bank: HashBank, action: str, user: Any = None) -> bool:
    """Give ``bank`` a new action, on record; returns whether it changed.

    Every change is a ``bank_changed`` event (about no image: only those who
    see every moderated row read it, as the bank acts on all of them). The
    built-in bank records the moderators' rejections: it may block or flag
    their look-alikes, never allow them (:class:`ValueError`). A bank that
    now blocks or flags is matched against the stored images in a worker.
    """
    if action not in HashBank.Action.values:
        raise ValueError(f"A bank's action is one of {HashBank.Action.values}, not {action!r}.")
    if bank.built_in and action == HashBank.Action.ALLOW:
        raise ValueError("The built-in bank of rejected images cannot allow its matches.")
    with write_transaction():
        stored = HashBank.objects.select_for_update().get(pk=bank.pk)
        bank.action, before = action, stored.action
        if before == action:
            return False
        stored.action = action
        stored.version += 1
        stored.save(update_fields=["action", "version", "updated_at"])
        bank.version, bank.updated_at = stored.version, stored.updated_at
        _record_change(stored, before, user)
    if action != HashBank.Action.ALLOW:
        transaction.on_commit(
            lambda: enqueue.dispatch(MATCH_TASK, bank.pk, 0), using=moderation_db()
        )
    return True


def _record_change(bank: HashBank, before: str, user: Any) -> None:
    actor = user if user is not None and user.is_authenticated else None
    ModerationEvent.objects.create(
        kind=ModerationEvent.Kind.BANK_CHANGED,
        actor=actor,
        actor_name=actor.get_username() if actor is not None else "",
        verdict_before="",
        verdict_after="",
        note=f"hash bank {bank.pk} “{bank.name}”: {before} → {bank.action}",
    )
