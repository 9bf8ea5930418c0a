"""Rows for the scaling benchmark, built in PostgreSQL with ``INSERT … SELECT generate_series``.

For ``size`` moderation rows: ``size // 10`` ``ScalePhoto`` objects (UUID
primary keys) and the rest ``ScaleAvatar`` objects (integer primary keys),
one row each for the file the object holds. Verdicts: 90% allowed, 5%
flagged, 2% approved, 1.5% rejected, 1% blocked, 0.5% still queued; created
over 60 days (queued ones in the last hour). Every classified row has its
``classified`` event, every decided one its ``reviewed`` event.
"""

from __future__ import annotations

from typing import Any

from django.db import connection, models

MODEL_NAMES = ("Falconsai/nsfw_image_detection", "yahoo/open_nsfw")

#: Cumulative shares of each verdict (``r`` is uniform in [0, 1)).
VERDICT_CASE = """CASE
    WHEN r < 0.900 THEN 'allowed' WHEN r < 0.950 THEN 'flagged'
    WHEN r < 0.970 THEN 'approved' WHEN r < 0.985 THEN 'rejected'
    WHEN r < 0.995 THEN 'blocked' ELSE 'pending' END"""


def build(size: int, reviewer_id: int) -> None:
    """Empty the benchmark's tables, then fill them with ``size`` moderation rows."""
    from benchmarks.benchapp.models import ScaleAvatar, ScalePhoto
    from nsfw_moderation import append_only
    from nsfw_moderation.models import BlockedImage, ModeratedImage, ModerationEvent

    tables = [m._meta.db_table for m in (ScalePhoto, ScaleAvatar, ModeratedImage, BlockedImage)]
    tables.append(ModerationEvent._meta.db_table)
    # The benchmark's own database, erased as flush would: past the records' triggers.
    with append_only.lifted(connection.alias), connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
        cursor.execute("SELECT setseed(0.16)")
        photos = max(1, size // 10)
        _hosts(cursor, ScalePhoto, "md5('photo' || i)::uuid", photos, "photos")
        _hosts(cursor, ScaleAvatar, "i", size - photos, "avatars")
        _rows(cursor, reviewer_id)
        _events(cursor)
    vacuum_analyze(tables)


def _hosts(cursor: Any, model: type[models.Model], pk: str, count: int, folder: str) -> None:
    cursor.execute(
        f"""INSERT INTO {model._meta.db_table} (id, title, image)
        SELECT {pk}, 'object ' || i, '{folder}/' || md5(i::text) || '.jpg'
        FROM generate_series(1, %s) AS i""",
        [count],
    )


def _rows(cursor: Any, reviewer_id: int) -> None:
    from django.contrib.contenttypes.models import ContentType

    from benchmarks.benchapp.models import ScaleAvatar, ScalePhoto
    from nsfw_moderation.models import ModeratedImage

    hosts = " UNION ALL ".join(
        f"SELECT {ContentType.objects.get_for_model(model).pk} AS ct, id::text AS oid,"
        f" image FROM {model._meta.db_table}"
        for model in (ScalePhoto, ScaleAvatar)
    )
    source = f"""(SELECT h.*, v.verdict, v.r, v.s, v.m,
            CASE WHEN v.verdict = 'pending' THEN now() - random() * interval '1 hour'
                 ELSE now() - random() * interval '60 days' END AS created
        FROM ({hosts}) AS h,
        LATERAL (SELECT {VERDICT_CASE} AS verdict, r, s, m
                 FROM (SELECT random() AS r, random() AS s, random() AS m, h.oid) AS d) AS v
        ) AS drawn"""
    score = """CASE verdict WHEN 'pending' THEN NULL WHEN 'allowed' THEN s * 0.5
        WHEN 'blocked' THEN 0.97 + s * 0.03 ELSE 0.5 + s * 0.47 END"""
    decided = "verdict IN ('approved', 'rejected')"
    insert_select(
        ModeratedImage,
        {
            "content_type_id": "ct",
            "object_id": "oid",
            "field_name": "'image'",
            "file_name": "image",
            "sha256": "CASE WHEN verdict = 'pending' THEN '' ELSE md5(oid) || md5(image) END",
            "status": "CASE WHEN verdict = 'pending' THEN 'queued' ELSE 'done' END",
            "verdict": "verdict",
            "score": score,
            "scores": f"CASE WHEN verdict = 'pending' THEN '{{}}'::jsonb ELSE jsonb_build_object("
            f"'normal', 1 - ({score}), 'nsfw', {score}) END",
            "model_name": f"CASE WHEN verdict = 'pending' THEN '' WHEN m < 0.05 "
            f"THEN '{MODEL_NAMES[1]}' ELSE '{MODEL_NAMES[0]}' END",
            "attempts": "CASE WHEN verdict = 'pending' THEN 0 ELSE 1 END",
            "classified_at": "CASE WHEN verdict = 'pending' THEN NULL "
            "ELSE created + interval '2 seconds' END",
            "reviewed_at": f"CASE WHEN {decided} THEN created + interval '3 hours' END",
            "reviewed_by_id": f"CASE WHEN {decided} THEN {int(reviewer_id)} END",
            "created_at": "created",
            "updated_at": f"CASE WHEN {decided} THEN created + interval '3 hours' "
            "ELSE created + interval '2 seconds' END",
        },
        source,
        cursor,
    )


def _events(cursor: Any) -> None:
    from nsfw_moderation.models import ModeratedImage, ModerationEvent

    rows = ModeratedImage._meta.db_table
    common = {
        "image_id": "id",
        "content_type_id": "content_type_id",
        "object_id": "object_id",
        "field_name": "field_name",
        "sha256": "sha256",
        "score": "score",
        "model_name": "model_name",
        "file_name": "file_name",
    }
    machine = "CASE WHEN verdict IN ('approved', 'rejected') THEN 'flagged' ELSE verdict END"
    insert_select(
        ModerationEvent,
        {
            **common,
            "kind": "'classified'",
            "verdict_before": "'pending'",
            "verdict_after": machine,
            "created_at": "classified_at",
        },
        f"(SELECT * FROM {rows} WHERE status = 'done' ORDER BY classified_at) AS done",
        cursor,
    )
    insert_select(
        ModerationEvent,
        {
            **common,
            "kind": "'reviewed'",
            "actor_id": "reviewed_by_id",
            "verdict_before": "'flagged'",
            "verdict_after": "verdict",
            "created_at": "reviewed_at",
        },
        f"(SELECT * FROM {rows} WHERE reviewed_at IS NOT NULL ORDER BY reviewed_at) AS decided",
        cursor,
    )


def insert_select(
    model: type[models.Model], columns: dict[str, str], source: str, cursor: Any
) -> None:
    """``INSERT INTO <model> SELECT <columns> FROM <source>``.

    Columns not named get their field's default (or NULL where allowed), so
    the builder keeps working when the models gain fields.
    """
    names, expressions, params = [], [], []
    for field in model._meta.concrete_fields:
        if field.column in columns:
            expressions.append(columns[field.column])
        elif field.primary_key or field.null:
            continue
        elif field.has_default() or isinstance(field, models.CharField | models.TextField):
            expressions.append("%s")
            params.append(field.get_db_prep_save(field.get_default(), connection))
        else:
            raise ValueError(f"No value for {model.__name__}.{field.name} in the benchmark data.")
        names.append(field.column)
    cursor.execute(
        f"INSERT INTO {model._meta.db_table} ({', '.join(names)}) "
        f"SELECT {', '.join(expressions)} FROM {source}",
        params,
    )


def vacuum_analyze(tables: list[str]) -> None:
    """What autovacuum does after a bulk load: statistics, and the visibility map."""
    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f"VACUUM (ANALYZE) {table}")


def table_sizes() -> dict[str, tuple[int, int]]:
    """Rows and bytes (table and indexes) of the moderation tables."""
    from nsfw_moderation.models import ModeratedImage, ModerationEvent

    sizes = {}
    with connection.cursor() as cursor:
        for key, model in (("rows", ModeratedImage), ("events", ModerationEvent)):
            table = model._meta.db_table
            cursor.execute(f"SELECT count(*), pg_total_relation_size('{table}') FROM {table}")
            sizes[key] = cursor.fetchone()
    return sizes
