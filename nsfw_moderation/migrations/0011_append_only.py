# Database triggers that make events, statements, appeals and appeal outcomes
# append-only whatever code writes (nsfw_moderation/append_only.py says what
# they let through, and how flush and data migrations get past them).
#
# SQLite drops a table's triggers when a migration rebuilds it: a later
# migration that alters one of these tables must call install_triggers again
# (importlib.import_module("nsfw_moderation.migrations.0011_append_only")), as
# 0009 does for the count triggers. tests/test_append_only.py tries every
# column of every guarded table, so a column added without that fails there.

from typing import Any

from django.db import migrations

# Copied from nsfw_moderation.append_only when written: a migration keeps what
# it installed, whatever the code says later.
TABLES: dict[str, tuple[str, ...]] = {
    "nsfw_moderation_moderationevent": ("image_id", "content_type_id", "actor_id"),
    "nsfw_moderation_statement": (
        "image_id",
        "event_id",
        "content_type_id",
        "decided_by_id",
        "owner_id",
    ),
    "nsfw_moderation_appeal": ("owner_id",),
    "nsfw_moderation_appealoutcome": ("decided_by_id", "event_id"),
}

# PostgreSQL: one function, given each table's nullable foreign keys as
# arguments. It compares the whole row as JSON, so a column added later is
# guarded without a new trigger.
PG_FUNCTION = """
CREATE OR REPLACE FUNCTION nsfw_moderation_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    before jsonb;
    after jsonb;
    nullable text;
BEGIN
    IF current_setting('nsfw_moderation.append_only', true) = 'off' THEN
        IF TG_OP = 'DELETE' THEN
            RETURN OLD;
        END IF;
        RETURN NEW;
    END IF;
    IF TG_OP IN ('DELETE', 'TRUNCATE') THEN
        RAISE EXCEPTION '% records are append-only: never deleted', TG_TABLE_NAME
            USING ERRCODE = '23000';
    END IF;
    before := to_jsonb(OLD);
    after := to_jsonb(NEW);
    FOREACH nullable IN ARRAY TG_ARGV LOOP
        IF after -> nullable = 'null'::jsonb THEN
            before := before - nullable;
            after := after - nullable;
        END IF;
    END LOOP;
    IF before IS DISTINCT FROM after THEN
        RAISE EXCEPTION '% records are append-only: never changed', TG_TABLE_NAME
            USING ERRCODE = '23000';
    END IF;
    RETURN NEW;
END
$$;
"""


def _pg_install(schema_editor: Any) -> None:
    # No parameters: the "%" of RAISE must reach PostgreSQL as it is.
    schema_editor.execute(PG_FUNCTION, params=None)
    for table, nullable in TABLES.items():
        arguments = ", ".join(f"'{column}'" for column in nullable)
        schema_editor.execute(
            f"CREATE TRIGGER nsfw_moderation_append_only BEFORE UPDATE OR DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION nsfw_moderation_append_only({arguments})"
        )
        # TRUNCATE fires no row trigger: of these tables, or through CASCADE from
        # a table they point to (users, moderated images).
        schema_editor.execute(
            f"CREATE TRIGGER nsfw_moderation_append_only_truncate BEFORE TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION nsfw_moderation_append_only()"
        )


# SQLite: two row triggers per table. The update trigger names every column
# the table has now; each asks the connection's nsfw_moderation_append_only().
def _sqlite_install(schema_editor: Any) -> None:
    for table, nullable in TABLES.items():
        with schema_editor.connection.cursor() as cursor:
            columns = [row[1] for row in cursor.execute(f'PRAGMA table_info("{table}")')]
        changed = " OR ".join(
            f'(NEW."{column}" IS NOT OLD."{column}" AND NEW."{column}" IS NOT NULL)'
            if column in nullable
            else f'NEW."{column}" IS NOT OLD."{column}"'
            for column in columns
        )
        schema_editor.execute(
            f"CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table} "
            "WHEN nsfw_moderation_append_only() BEGIN "
            f"SELECT RAISE(ABORT, '{table} records are append-only: never deleted'); END"
        )
        schema_editor.execute(
            f"CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table} "
            f"WHEN nsfw_moderation_append_only() AND ({changed}) BEGIN "
            f"SELECT RAISE(ABORT, '{table} records are append-only: never changed'); END"
        )


def install_triggers(apps: Any, schema_editor: Any) -> None:
    remove_triggers(apps, schema_editor)
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        _pg_install(schema_editor)
    elif vendor == "sqlite":
        _sqlite_install(schema_editor)


def remove_triggers(apps: Any, schema_editor: Any) -> None:
    vendor = schema_editor.connection.vendor
    for table in TABLES:
        if vendor == "postgresql":
            schema_editor.execute(f"DROP TRIGGER IF EXISTS nsfw_moderation_append_only ON {table}")
            schema_editor.execute(
                f"DROP TRIGGER IF EXISTS nsfw_moderation_append_only_truncate ON {table}"
            )
        elif vendor == "sqlite":
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_no_delete")
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_no_update")
    if vendor == "postgresql":
        schema_editor.execute("DROP FUNCTION IF EXISTS nsfw_moderation_append_only()")


class Migration(migrations.Migration):
    dependencies = [("nsfw_moderation", "0010_notes_outbox_submissions")]

    operations = [migrations.RunPython(install_triggers, remove_triggers)]
