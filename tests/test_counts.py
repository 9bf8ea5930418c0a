"""The kept counts (nsfw_moderation.counts) agree with a fresh count after every kind of change."""

from __future__ import annotations

import random
import threading
import uuid
from importlib import import_module
from typing import Any

import pytest
from django.db import connection, connections
from django.db.migrations.executor import MigrationExecutor

from nsfw_moderation import append_only, counts, enqueue, review, tasks
from nsfw_moderation.models import (
    ModeratedImage,
    ModeratedImageCount,
    ModerationEvent,
    Status,
    Verdict,
)
from nsfw_moderation.worker import outcomes
from tests.bulk import many_objects
from tests.conftest import moderation
from tests.images import blue, red
from tests.testapp.models import Document, Photo, Profile

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("colour_backend")]


@pytest.fixture(autouse=True)
def _no_counts_left_by_a_flush() -> None:
    # Between transactional tests SQLite empties the tables in no set order:
    # the counts of rows deleted after them may be left (see recount()).
    assert not ModeratedImage.objects.exists()
    ModeratedImageCount.objects.all().delete()


def kept() -> list[counts.Group]:
    return sorted(counts.groups(ModeratedImage.objects.all()), key=repr)


def fresh() -> list[counts.Group]:
    """Every row counted now, group by group."""
    return sorted(counts._counted(ModeratedImage.objects.all()), key=repr)


def assert_exact() -> None:
    assert kept() == fresh()


def test_the_counts_follow_every_kind_of_change():
    photos = [Photo.objects.create(image=red() if i % 3 else blue()) for i in range(6)]
    document = Document.objects.create(file=blue())
    Profile.objects.create(avatar=red(), banner=blue())
    assert {g.status for g in kept()} == {Status.DONE}
    assert_exact()

    photos[0].image = blue()  # a new file: the row is reset, then classified again
    photos[0].save()
    assert_exact()
    flagged = list(ModeratedImage.objects.filter(verdict=Verdict.FLAGGED))
    assert len(flagged) == 5
    review.approve(flagged[0])
    review.reject(flagged[1])
    assert_exact()
    enqueue.requeue(ModeratedImage.objects.filter(pk=flagged[2].pk))
    assert_exact()
    photos[1].delete()  # withdraw(): the row goes
    document.file = ""  # an emptied field: its row goes
    document.save()
    assert_exact()
    ModeratedImage.objects.filter(verdict=Verdict.ALLOWED).update(score=0.42, model_name="m")
    assert_exact()
    ModeratedImage.objects.filter(pk=flagged[3].pk).delete()
    assert_exact()
    ModeratedImage.objects.all().delete()
    assert kept() == fresh() == []


def test_rows_written_behind_the_orm_are_counted_too():
    many_objects(Photo, "image", 300)  # bulk_create
    table = ModeratedImage._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET status = 'failed', score = NULL WHERE id % 7 = 0")
        cursor.execute(f"DELETE FROM {table} WHERE id % 11 = 0")
    assert_exact()


def test_folding_keeps_the_totals_in_one_row_per_group():
    many_objects(Photo, "image", 200)
    ModeratedImage.objects.filter(verdict=Verdict.FLAGGED).update(verdict=Verdict.APPROVED)
    ModeratedImage.objects.filter(status=Status.QUEUED).update(status=Status.PROCESSING)
    before = kept()
    assert ModeratedImageCount.objects.count() > len(before)
    counts.fold()
    assert kept() == before == fresh()
    assert ModeratedImageCount.objects.count() == len(before)
    counts.fold()  # nothing left to fold
    assert kept() == before


def test_a_read_folds_many_count_rows_first(monkeypatch):
    monkeypatch.setattr(counts, "FOLD_ABOVE", 50)
    many_objects(Photo, "image", 200)
    for verdict in (Verdict.BLOCKED, Verdict.ALLOWED):
        for row in ModeratedImage.objects.filter(status=Status.DONE)[:30]:
            row.verdict = verdict
            row.save()
    assert ModeratedImageCount.objects.count() > 60
    assert_exact()
    assert ModeratedImageCount.objects.count() <= len(kept()) + 1


def test_narrowed_querysets():
    many_objects(Photo, "image", 100)
    rows = ModeratedImage.objects.all()
    flagged = rows.filter(verdict=Verdict.FLAGGED)
    one = rows.filter(object_id=rows.first().object_id)
    high = rows.filter(score__gte=0.5)
    # Equalities on counted columns come from the kept counts…
    assert counts.count(flagged) == flagged.count() > 0
    assert counts.count(flagged.filter(status=Status.DONE, model_name="model-0")) == (
        flagged.filter(status=Status.DONE, model_name="model-0").count()
    )
    # …anything else is counted.
    assert counts.count(one) is None
    assert counts.count(high) is None
    assert counts.count(rows.exclude(verdict=Verdict.FLAGGED)) is None
    for narrowed in (one, high, flagged):
        assert sum(g.n for g in counts.groups(narrowed)) == narrowed.count()


@pytest.mark.skipif("connection.vendor != 'postgresql'")
def test_truncating_the_rows_forgets_their_counts():
    many_objects(Photo, "image", 50)
    # CASCADE reaches the append-only events: only a lifted erasure may.
    with append_only.lifted(), connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {ModeratedImage._meta.db_table} CASCADE")
    assert kept() == fresh() == []


def test_migrating_counts_the_rows_already_there():
    many_objects(Photo, "image", 120)
    migration = import_module("nsfw_moderation.migrations.0008_scale").Migration
    (before,) = [dep for dep in migration.dependencies if dep[0] == "nsfw_moderation"]
    latest = MigrationExecutor(connection).loader.graph.leaf_nodes("nsfw_moderation")
    executor = MigrationExecutor(connection)
    executor.migrate([before])  # no counts, no triggers
    ModeratedImage.objects.filter(verdict=Verdict.FLAGGED).update(verdict=Verdict.REJECTED)
    executor = MigrationExecutor(connection)
    executor.migrate(latest)
    assert_exact()
    assert {g.verdict for g in kept()} >= {Verdict.REJECTED}


def test_the_periodic_maintenance_folds_the_counts():
    many_objects(Photo, "image", 30)
    ModeratedImage.objects.filter(status=Status.QUEUED).update(status=Status.PROCESSING)
    assert ModeratedImageCount.objects.count() > len(kept())
    results = tasks.maintain()
    assert results["counts_folded"] > 0
    assert ModeratedImageCount.objects.count() == len(kept())
    assert_exact()


# --- Concurrent writers (PostgreSQL: SQLite has a single writer) --------------------


@pytest.mark.skipif("connection.vendor != 'postgresql'")
def test_the_counts_stay_exact_under_concurrent_workers_reviewers_and_folds(monkeypatch):
    many_objects(Photo, "image", 400)
    ModeratedImage.objects.update(status=Status.QUEUED, verdict=Verdict.PENDING, score=None)
    errors: list[BaseException] = []
    stop = threading.Event()

    def run(action: Any) -> None:
        try:
            action()
        except BaseException as exc:  # reported by the test
            errors.append(exc)
        finally:
            connections.close_all()

    def worker() -> None:
        rng = random.Random()
        while rows := outcomes.claim_batch(token := uuid.uuid4()):
            for row in rows:
                score = rng.random()
                verdict = Verdict.FLAGGED if score >= 0.5 else Verdict.ALLOWED
                outcomes.finish(row, token, status=Status.DONE, verdict=verdict, score=score)

    def reviewer_loop() -> None:
        while not stop.is_set():
            flagged = list(ModeratedImage.objects.filter(verdict=Verdict.FLAGGED)[:5])
            review.decide_many(flagged, random.choice(list(review.DECISIONS.values())))
            rejected = ModeratedImage.objects.filter(verdict=Verdict.REJECTED)
            enqueue.requeue(rejected.filter(pk__in=list(rejected.values_list("pk", flat=True)[:2])))

    def folder() -> None:
        while not stop.is_set():
            counts.fold()

    monkeypatch.setattr(enqueue, "enqueue", lambda pk, delay=0: None)
    with moderation(QUEUE="django_q", BATCH_SIZE=4):
        others = [threading.Thread(target=run, args=(f,)) for f in (reviewer_loop, folder)]
        workers = [threading.Thread(target=run, args=(worker,)) for _ in range(4)]
        for thread in others + workers:
            thread.start()
        for thread in workers:
            thread.join(120)
        stop.set()
        for thread in others:
            thread.join(60)
    assert not errors
    # Every queued row was classified (some twice, after a requeue), some were decided.
    classified = ModerationEvent.objects.filter(kind=ModerationEvent.Kind.CLASSIFIED)
    assert classified.count() >= 400
    assert ModerationEvent.objects.filter(kind=ModerationEvent.Kind.REVIEWED).exists()
    assert_exact()
    counts.fold()
    assert_exact()


def test_counts_emptied_before_their_rows_are_counted_again():
    """As ``manage.py flush`` may do on SQLite: empty the counts, then delete the rows."""
    many_objects(Photo, "image", 60)
    ModeratedImageCount.objects.all().delete()
    ModeratedImage.objects.filter(verdict=Verdict.ALLOWED).delete()
    assert_exact()
    assert all(group.n > 0 for group in kept())
