"""How many moderated images there are per state, without counting a million rows per page.

The dashboard, the filters of the review queue and of the changelist, and
their page counts need the number of rows per verdict, status, tenth of the
score, content type and model. Counting them costs a read of the whole table
per page view. Instead, database triggers (migration ``0008_scale``; PostgreSQL and
SQLite) keep :class:`~nsfw_moderation.models.ModeratedImageCount`: a row of
+n or −n per group for every insert, update and delete of moderated images,
written in the transaction that makes the change. Summing ``n`` per group is
therefore exact in any transaction, however many workers write at once, and
costs a read of the groups plus the changes since the last :func:`fold`.

Where no triggers keep the counts (another database), or for a queryset that
is narrowed by more than equalities on those columns (an admin scoped per
tenant, a search), the rows are counted instead.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from typing import Any

from django.db import DatabaseError, connections, models, transaction
from django.db.models import Count, F, Max, Min, Sum
from django.db.models.expressions import Col
from django.db.models.functions import Floor
from django.db.models.lookups import Exact
from django.db.models.sql.where import AND

from nsfw_moderation.db import moderation_db, retry_when_locked
from nsfw_moderation.models import ModeratedImage, ModeratedImageCount

logger = logging.getLogger(__name__)

#: The databases whose triggers keep the counts (see migration 0008_scale).
KEPT_ON = ("postgresql", "sqlite")
#: Columns a queryset may be filtered on (with ``=``) and still be answered from the counts.
COUNTED_COLUMNS = ("content_type_id", "model_name", "verdict", "status")
#: A read folds the count rows first when there may be more than this many.
FOLD_ABOVE = 10_000
HISTOGRAM_BINS = 10
# pg_try_advisory_xact_lock key: one fold at a time.
_FOLD_LOCK = 0x6E73_6677  # "nsfw"

_TABLE = ModeratedImageCount._meta.db_table
_COLUMNS = "content_type_id, model_name, verdict, status, score_bucket"
_ROWS = ModeratedImage._meta.db_table
_BUCKET = {
    "postgresql": "CASE WHEN score IS NULL THEN NULL "
    "ELSE LEAST(GREATEST(FLOOR(score * 10), 0), 9) END",
    "sqlite": "CASE WHEN score IS NULL THEN NULL "
    "ELSE MIN(MAX(CAST(score * 10 AS INTEGER), 0), 9) END",
}
_PG_FOLD = f"""
    WITH folded AS (DELETE FROM {_TABLE} RETURNING {_COLUMNS}, n),
    summed AS (
        INSERT INTO {_TABLE} ({_COLUMNS}, n)
        SELECT {_COLUMNS}, sum(n) FROM folded GROUP BY {_COLUMNS} HAVING sum(n) <> 0
    )
    SELECT count(*) FROM folded
"""


@dataclass(frozen=True)
class Group:
    """``n`` rows share these values."""

    content_type_id: int
    model_name: str
    verdict: str
    status: str
    score_bucket: int | None  # floor(score × 10) within 0–9; None: no score
    n: int


def groups(rows: models.QuerySet[ModeratedImage]) -> list[Group]:
    """How many of ``rows`` there are in each group; groups without rows are left out."""
    equal = _equalities(rows)
    if equal is None or not kept(rows.db):
        return _counted(rows)
    return [g for g in _kept(rows.db) if all(getattr(g, k) == v for k, v in equal.items())]


def count(rows: models.QuerySet[ModeratedImage]) -> int | None:
    """``rows.count()`` from the kept counts, or ``None`` where they cannot tell."""
    if _equalities(rows) is None or not kept(rows.db):
        return None
    return sum(group.n for group in groups(rows))


def kept(using: str) -> bool:
    """Whether triggers keep the counts on database ``using``."""
    return connections[using].vendor in KEPT_ON


def fold(using: str | None = None) -> dict[str, int]:
    """Fold the count rows into one per group; returns how many rows were folded.

    Part of the periodic maintenance job, and done by a read that finds many.
    Safe beside writers and other folds: on PostgreSQL one statement deletes
    the rows it sums (rows committed meanwhile stay for the next fold), on
    SQLite the only writer folds the rows up to the last one it saw.
    """
    using = using or moderation_db()
    if not kept(using):
        return {"counts_folded": 0}
    return {"counts_folded": retry_when_locked(lambda: _fold(using))}


def _fold(using: str) -> int:
    vendor = connections[using].vendor
    with transaction.atomic(using=using), connections[using].cursor() as cursor:
        if vendor == "postgresql":
            cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [_FOLD_LOCK])
            if not cursor.fetchone()[0]:
                return 0  # another fold is at it
            cursor.execute(_PG_FOLD)
            return int(cursor.fetchone()[0])
        cursor.execute(f"SELECT MAX(id) FROM {_TABLE}")
        (last,) = cursor.fetchone()
        cursor.execute(
            f"INSERT INTO {_TABLE} ({_COLUMNS}, n) SELECT {_COLUMNS}, SUM(n) FROM {_TABLE} "
            f"WHERE id <= %s GROUP BY {_COLUMNS} HAVING SUM(n) <> 0",
            [last],
        )
        cursor.execute(f"DELETE FROM {_TABLE} WHERE id <= %s", [last])
        return int(cursor.rowcount)


def recount(using: str | None = None) -> None:
    """Replace the kept counts by a fresh count of every row (reads the whole table).

    For counts that went wrong behind the triggers' back: rows restored or
    changed with triggers disabled, or the counts emptied before their rows
    (``manage.py flush`` on SQLite deletes tables in no set order).
    """
    using = using or moderation_db()
    vendor = connections[using].vendor
    with transaction.atomic(using=using), connections[using].cursor() as cursor:
        if vendor == "postgresql":  # no writes between the delete and the count
            cursor.execute(f"LOCK TABLE {_ROWS} IN SHARE ROW EXCLUSIVE MODE")
        cursor.execute(f"DELETE FROM {_TABLE}")
        cursor.execute(
            f"INSERT INTO {_TABLE} ({_COLUMNS}, n) "
            f"SELECT {', '.join(COUNTED_COLUMNS)}, {_BUCKET[vendor]}, count(*) FROM {_ROWS} "
            "GROUP BY 1, 2, 3, 4, 5"
        )


def _kept(using: str) -> list[Group]:
    _fold_if_long(using)
    found = _sums(using)
    if any(group.n < 0 for group in found):  # no sum of real rows is negative
        logger.warning("The moderated image counts were off; counting every row again.")
        try:
            recount(moderation_db())
        except DatabaseError:  # e.g. SQLite busy: count for this read, recount on the next
            logger.warning("Could not recount the moderated image counts", exc_info=True)
            return _counted(ModeratedImage.objects.using(using).all())
        found = _sums(using)
    return found


def _sums(using: str) -> list[Group]:
    sums = (
        ModeratedImageCount.objects.using(using)
        .order_by()
        .values_list(*COUNTED_COLUMNS, "score_bucket")
        .annotate(total=Sum("n"))
    )
    return [Group(*values) for values in sums if values[-1]]


def _fold_if_long(using: str) -> None:
    span = ModeratedImageCount.objects.using(using).aggregate(first=Min("id"), last=Max("id"))
    if span["last"] is None or span["last"] - span["first"] < FOLD_ABOVE:
        return
    try:
        fold(moderation_db())
    except DatabaseError:  # e.g. another writer on SQLite: the next read or job folds
        logger.warning("Could not fold the moderated image counts", exc_info=True)


def _counted(rows: models.QuerySet[ModeratedImage]) -> list[Group]:
    found = (
        rows.order_by()
        .annotate(bucket=Floor(F("score") * HISTOGRAM_BINS))
        .values_list(*COUNTED_COLUMNS, "bucket")
        .annotate(n=Count("pk"))
    )
    totals: Counter[tuple[Any, ...]] = Counter()
    for *values, bucket, n in found:
        # A score of exactly 1.0 belongs in the top tenth, as the triggers have it.
        clipped = None if bucket is None else min(max(int(bucket), 0), HISTOGRAM_BINS - 1)
        totals[(*values, clipped)] += n
    return [Group(*(*key, n)) for key, n in totals.items()]


def _equalities(rows: models.QuerySet[ModeratedImage]) -> dict[str, Any] | None:
    """``{column: value}`` when ``rows`` is every row narrowed by ``=`` on counted columns."""
    query = rows.query
    where = query.where
    if rows.model is not ModeratedImage or query.is_sliced or query.distinct or query.combinator:
        return None
    if where.negated or (where.connector != AND and len(where.children) > 1):
        return None
    equal = {}
    for lookup in where.children:
        if not (isinstance(lookup, Exact) and isinstance(lookup.lhs, Col)):
            return None
        column = lookup.lhs.target.column
        value = lookup.rhs.pk if isinstance(lookup.rhs, models.Model) else lookup.rhs
        if lookup.lhs.alias != query.base_table or column not in COUNTED_COLUMNS:
            return None
        if hasattr(value, "resolve_expression"):
            return None
        equal[column] = value
    return equal
