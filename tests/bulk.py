"""Tables of a realistic size for tests of query plans.

A planner only shows what it will do at scale on tables large enough for the
difference between probing an index and reading a whole table to matter, and
with statistics about them (``ANALYZE``). ``bulk_create`` sends no signals, so
these objects get their rows here, directly.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db import connection, models
from django.utils import timezone

from nsfw_moderation import append_only
from nsfw_moderation.models import ModeratedImage, ModerationEvent, Status, Verdict

#: Every twentieth row flagged, a few queued, the rest allowed.
VERDICTS = [Verdict.FLAGGED] + [Verdict.ALLOWED] * 17 + [Verdict.PENDING] * 2


def many_objects(
    model: type[models.Model], field: str, count: int, *, doublings: int = 0
) -> list[Any]:
    """``count`` objects of ``model`` with a file in ``field``, each with its row; analysed.

    ``doublings`` doubles the moderation table that many times more with rows
    of objects that do not exist: a table much larger than a page.
    """
    objects = model._default_manager.bulk_create(
        [model(**{field: f"bulk/{i}.png"}, **_pk(model, i)) for i in range(count)],
        batch_size=1000,
    )
    content_type = ContentType.objects.get_for_model(model)
    ModeratedImage.objects.bulk_create(
        [_row(content_type, obj, field, i) for i, obj in enumerate(objects)], batch_size=1000
    )
    spread_over_a_year(ModeratedImage, timezone.now())
    for copy in range(doublings):
        _double_the_rows(copy)
    analyze()
    return objects


def _double_the_rows(copy: int) -> None:
    columns = [f.column for f in ModeratedImage._meta.concrete_fields if not f.primary_key]
    copied = [f"object_id || '~{copy}'" if c == "object_id" else c for c in columns]
    table = ModeratedImage._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} ({', '.join(columns)}) SELECT {', '.join(copied)} FROM {table}"
        )


def _pk(model: type[models.Model], i: int) -> dict[str, Any]:
    if isinstance(model._meta.pk, models.UUIDField):
        return {"pk": uuid.uuid4()}
    if isinstance(model._meta.pk, models.CharField):
        return {"pk": f"bulk-{i}"}
    return {}


def _row(content_type: ContentType, obj: Any, field: str, i: int) -> ModeratedImage:
    verdict = VERDICTS[i % len(VERDICTS)]
    queued = verdict == Verdict.PENDING
    return ModeratedImage(
        content_type=content_type,
        object_id=str(obj.pk),
        field_name=field,
        file_name=getattr(obj, field).name,
        status=Status.QUEUED if queued else Status.DONE,
        verdict=verdict,
        score=None if queued else (i % 100) / 100,
        model_name="" if queued else f"model-{i % 3}",
    )


def spread_over_a_year(model: type[models.Model], now: Any) -> None:
    """Date the rows (or events) of ``model`` an hour apart by id, back from ``now``."""
    table = model._meta.db_table
    # Back-dated past the append-only triggers (events), as only test data may be.
    with append_only.lifted(connection.alias), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            back = "%s - (id %% 8760) * interval '1 hour'"
            cursor.execute(f"UPDATE {table} SET created_at = {back}", [now])
        else:  # SQLite: Django stores UTC text
            back = "datetime(%s, '-' || (id %% 8760) || ' hours')"
            cursor.execute(f"UPDATE {table} SET created_at = {back}", [f"{now:%Y-%m-%d %H:%M:%S}"])


def many_events(rows: list[ModeratedImage] | None = None) -> None:
    """A classification event per row, spread over a year like the rows."""
    rows = list(ModeratedImage.objects.all()) if rows is None else rows
    ModerationEvent.objects.bulk_create(
        [
            ModerationEvent.record(
                row, ModerationEvent.Kind.CLASSIFIED, verdict_before=Verdict.PENDING, save=False
            )
            for row in rows
        ],
        batch_size=1000,
    )
    spread_over_a_year(ModerationEvent, timezone.now())
    analyze()


def analyze() -> None:
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def vacuum() -> None:
    """What autovacuum does in time (PostgreSQL, outside a transaction): the visibility map."""
    with connection.cursor() as cursor:
        for table in BIG_TABLES:
            cursor.execute(f"VACUUM (ANALYZE) {table}")


def plan_of(queryset: models.QuerySet[Any]) -> str:
    """The database's plan for ``queryset``, as text."""
    return queryset.explain()


#: The tables that grow without bound.
BIG_TABLES = (ModeratedImage._meta.db_table, ModerationEvent._meta.db_table)


def rows_read(sql: str) -> int:
    """Rows of the big tables that running ``sql`` touched (PostgreSQL's ``EXPLAIN ANALYZE``).

    Each scan's rows returned plus rows it read and filtered out, times its loops.
    """
    return _touched(_plan(sql))


def _touched(node: dict[str, Any]) -> int:
    count = 0
    if node.get("Relation Name") in BIG_TABLES:
        per_loop = node["Actual Rows"] + node.get("Rows Removed by Filter", 0)
        count = (per_loop + node.get("Rows Removed by Index Recheck", 0)) * node["Actual Loops"]
    return count + sum(_touched(child) for child in node.get("Plans", []))


def reads_per_query(queries: list[dict[str, str]]) -> dict[str, int]:
    """``{sql: rows touched}`` for the reads among captured ``queries``."""
    return {sql: rows_read(sql) for sql in _reads(queries)}


def scans_per_query(queries: list[dict[str, str]], table: str) -> dict[str, list[dict[str, Any]]]:
    """``{sql: [scan node, …]}``: how each of the captured reads scans ``table`` (PostgreSQL)."""
    return {sql: _scans(_plan(sql), table) for sql in _reads(queries)}


def _reads(queries: list[dict[str, str]]) -> list[str]:
    return [q["sql"] for q in queries if q["sql"].lstrip().startswith(("SELECT", "DECLARE"))]


def _plan(sql: str) -> dict[str, Any]:
    select = re.sub(r"^DECLARE .*? CURSOR .*? FOR ", "", sql, flags=re.DOTALL)
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {select}")
        ((plan,),) = cursor.fetchall()
    return plan[0]["Plan"]


def _scans(node: dict[str, Any], table: str) -> list[dict[str, Any]]:
    found = [node] if node.get("Relation Name") == table else []
    return found + [scan for child in node.get("Plans", []) for scan in _scans(child, table)]
