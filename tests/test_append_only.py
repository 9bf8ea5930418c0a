"""Invariant 8: events, statements, appeals and outcomes are append-only whatever code writes.

The database's triggers (migration 0011) refuse every change and deletion but
a foreign key set to NULL, on SQLite and PostgreSQL; the ORM's own refusals
say so earlier. Every column of every guarded table is tried, so a column
added later without the triggers following fails here.
"""

from __future__ import annotations

import sqlite3
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.db import IntegrityError, connection, models, transaction

from nsfw_moderation import append_only, review
from nsfw_moderation.appeals import file_appeal
from nsfw_moderation.models import (
    Appeal,
    AppealOutcome,
    ModeratedImage,
    ModerationEvent,
    Statement,
    Verdict,
)
from tests.admin_fixtures import create_row, create_user
from tests.conftest import moderation
from tests.testapp.models import Photo

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor not in ("sqlite", "postgresql"), reason="triggers there only"
    ),
]

GUARDED = (ModerationEvent, Statement, Appeal, AppealOutcome)


@pytest.fixture
def records() -> dict[type[models.Model], models.Model]:
    """One record of each guarded model, with every nullable foreign key set."""
    owner = User.objects.create_user("alice")
    first = create_user("first", "nsfw_moderation.review_moderatedimage")
    second = create_user("second", "nsfw_moderation.review_moderatedimage")
    with moderation(OWNER="tests.owners.owner_of"):
        row = create_row(Photo.objects.create(title="alice"), sha256="a" * 64)
        review.reject(row, user=first, note="internal", user_note="for alice")
        statement = Statement.objects.get()
        appeal = file_appeal(statement, owner, "It is a painting.")
        outcome = review.decide_appeal(appeal, user=second, upheld=False, note="kept")
    return {
        ModerationEvent: ModerationEvent.objects.filter(actor=first).get(),
        Statement: statement,
        Appeal: appeal,
        AppealOutcome: outcome,
    }


def other_value(field: models.Field[Any, Any], current: Any) -> Any:
    """A value of ``field``'s column other than ``current``, as the database takes it."""
    if isinstance(field, models.BooleanField):
        return not current
    if isinstance(field, models.DateTimeField):
        return datetime(2001, 2, 3, tzinfo=UTC)
    if isinstance(field, models.UUIDField):
        return uuid.uuid4().hex if connection.vendor == "sqlite" else str(uuid.uuid4())
    if isinstance(field, models.FloatField):
        return (current or 0) + 0.5
    if isinstance(field, models.ForeignKey | models.IntegerField):
        return (current or 0) + 1000
    # As long as the current text, for the columns of a limited length.
    text = str(current or "")
    return ("y" if text.startswith("x") else "x") + text[1:]


def refused(sql: str, params: list[Any]) -> str:
    """The database's refusal of ``sql`` (fails the test if it was let through)."""
    with (
        pytest.raises(IntegrityError) as refusal,
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(sql, params)
    return str(refusal.value)


@pytest.mark.parametrize("model", GUARDED, ids=lambda model: model.__name__)
def test_every_column_is_refused_a_change(records, model):
    record, table = records[model], model._meta.db_table
    columns = [field for field in model._meta.concrete_fields if not field.primary_key]
    assert {field.column for field in columns} >= set(append_only.TABLES[table])
    for field in columns:
        value = other_value(field, getattr(record, field.attname))
        sql = f'UPDATE {table} SET "{field.column}" = %s WHERE id = %s'
        assert "append-only" in refused(sql, [value, record.pk]), field.name
    assert "append-only" in refused(f"DELETE FROM {table} WHERE id = %s", [record.pk])
    assert model.objects.filter(pk=record.pk).exists()


@pytest.mark.parametrize("model", GUARDED, ids=lambda model: model.__name__)
def test_foreign_keys_may_only_be_emptied(records, model):
    record, table = records[model], model._meta.db_table
    for column in append_only.TABLES[table]:
        with connection.cursor() as cursor:
            cursor.execute(f'UPDATE {table} SET "{column}" = NULL WHERE id = %s', [record.pk])
        with connection.cursor() as cursor:
            cursor.execute(f'SELECT "{column}" FROM {table} WHERE id = %s', [record.pk])
            assert cursor.fetchone() == (None,)


def test_the_orms_back_doors_are_shut(records):
    statement = records[Statement]
    copy = Statement.objects.get(pk=statement.pk)
    copy._state.adding = True
    copy.user_note = "rewritten"
    with pytest.raises(IntegrityError), transaction.atomic():
        copy.save()  # an INSERT of an existing primary key, never an UPDATE
    fresh = Statement(**{f.attname: getattr(statement, f.attname) for f in Statement._meta.fields})
    fresh.user_note = "rewritten"
    with pytest.raises(IntegrityError), transaction.atomic():
        fresh.save()
    with pytest.raises(ValueError, match="append-only"):
        Statement.objects.bulk_create(
            [fresh], update_conflicts=True, unique_fields=["id"], update_fields=["user_note"]
        )
    # Past the ORM's own refusals, the database still says no.
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        models.QuerySet(Statement).bulk_create(
            [fresh], update_conflicts=True, unique_fields=["id"], update_fields=["user_note"]
        )
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        Statement._base_manager.filter(pk=statement.pk).update(user_note="rewritten")
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        ModerationEvent._base_manager.all()._raw_delete(connection.alias)
    assert Statement.objects.get(pk=statement.pk).user_note == "for alice"


def test_records_outlive_their_row_and_users(records):
    """Deleting what they point to sets those keys to NULL: the one change let through."""
    ModeratedImage.objects.all().delete()
    User.objects.all().delete()
    statement = Statement.objects.get(pk=records[Statement].pk)
    assert (statement.image_id, statement.owner_id, statement.decided_by_id) == (None, None, None)
    assert statement.verdict == Verdict.REJECTED
    assert AppealOutcome.objects.get().note == "kept"


def test_only_flush_and_lifted_code_get_past(records):
    with append_only.lifted(), transaction.atomic():
        Statement._base_manager.filter(pk=records[Statement].pk).update(user_note="migrated")
    assert Statement.objects.get().user_note == "migrated"
    with pytest.raises(IntegrityError), transaction.atomic():
        Statement._base_manager.update(user_note="after")
    call_command("flush", interactive=False, verbosity=0)
    assert not Statement.objects.exists()
    assert not ModerationEvent.objects.exists()


@pytest.mark.skipif(connection.vendor != "sqlite", reason="a second program on the SQLite file")
def test_another_program_on_the_sqlite_file_is_refused(records):
    """A connection that does not have the triggers' function cannot get past them."""
    connection.close()
    other = sqlite3.connect(str(connection.settings_dict["NAME"]))
    try:
        with pytest.raises(sqlite3.OperationalError, match="nsfw_moderation_append_only"):
            other.execute("DELETE FROM nsfw_moderation_statement")
    finally:
        other.close()
    assert Statement.objects.count() == 1


@pytest.mark.skipif(connection.vendor != "postgresql", reason="TRUNCATE is PostgreSQL's")
def test_truncate_is_refused_directly_and_through_cascade(records):
    for table in ("nsfw_moderation_statement", "auth_user"):
        with (
            pytest.raises(IntegrityError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(f"TRUNCATE {table} CASCADE")
    assert Statement.objects.count() == 1


def test_a_nested_lift_keeps_the_outer_one_and_ends_with_it(records):
    with append_only.lifted():
        with append_only.lifted():
            pass
        Statement._base_manager.update(user_note="migrated")
    assert Statement.objects.get().user_note == "migrated"
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        Statement._base_manager.update(user_note="after")


def test_a_failing_body_rolls_back_and_leaves_the_triggers_on(records):
    def broken_migration() -> None:
        with append_only.lifted():
            Statement._base_manager.update(user_note="half-way")
            raise RuntimeError("broken migration")

    with pytest.raises(RuntimeError, match="broken"):
        broken_migration()
    assert Statement.objects.get().user_note == "for alice"
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        Statement._base_manager.update(user_note="after")
