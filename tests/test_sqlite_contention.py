"""SQLite with Django's default (deferred) transactions and another process writing.

A deferred transaction that reads and then writes gets "database is locked" at
once, without waiting, while another connection holds the write lock: SQLite
cannot let it wait without risking a deadlock. The worker and the web process
are such connections. Moderation's own transactions must wait their turn
instead of failing, whatever the site's ``OPTIONS`` say.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command
from django.db import DEFAULT_DB_ALIAS, OperationalError, connection, connections, transaction

from nsfw_moderation import reconcile, review
from nsfw_moderation.db import retry_when_locked
from nsfw_moderation.models import ModeratedImage, ScanPosition, Status, Verdict
from tests.admin_fixtures import create_row, create_user
from tests.images import red
from tests.test_reconcile import bulk_photos
from tests.testapp.models import Photo

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("colour_backend")]
sqlite_only = pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's locking")

#: Longer than every pause of ``retry_when_locked`` together.
HELD_FOR = 2.5


@pytest.fixture
def deferred() -> Iterator[None]:
    """Django's default SQLite transactions (``BEGIN DEFERRED``), as ``startproject`` has them."""
    wrapper = connections[DEFAULT_DB_ALIAS]
    wrapper.ensure_connection()
    configured, wrapper.transaction_mode = wrapper.transaction_mode, None
    yield
    wrapper.transaction_mode = configured


class OtherWriter:
    """Another connection that takes the database's write lock and holds it for ``seconds``."""

    def __init__(self, seconds: float = HELD_FOR) -> None:
        self.seconds = seconds
        self.thread: threading.Thread | None = None

    def take(self) -> None:
        taken = threading.Event()

        def hold() -> None:
            other = sqlite3.connect(connection.settings_dict["NAME"], isolation_level=None)
            try:
                other.execute("BEGIN IMMEDIATE")
                taken.set()
                time.sleep(self.seconds)
                other.execute("COMMIT")
            finally:
                other.close()

        self.thread = threading.Thread(target=hold)
        self.thread.start()
        assert taken.wait(10)

    def done(self) -> None:
        assert self.thread is not None, "the lock was never taken"
        self.thread.join()


@contextmanager
def taken_on_first(statement: str, writer: OtherWriter) -> Iterator[None]:
    """``writer`` takes the write lock just as this connection first runs ``statement``."""

    def wrapper(execute: Any, sql: str, *args: Any) -> Any:
        if writer.thread is None and statement in sql:
            writer.take()
        return execute(sql, *args)

    with connection.execute_wrapper(wrapper):
        yield
    writer.done()


@sqlite_only
def test_a_transaction_that_reads_first_waits_for_the_write_lock(deferred):
    def read_then_write() -> int:
        with transaction.atomic():
            ScanPosition.objects.count()
            ScanPosition.objects.create(
                content_type=ContentType.objects.get_for_model(Photo), field_name="image"
            )
            return ScanPosition.objects.count()

    writer = OtherWriter()
    started = time.monotonic()
    writer.take()
    assert retry_when_locked(read_then_write) == 1
    assert time.monotonic() - started >= HELD_FOR
    writer.done()


@sqlite_only
def test_reconciliation_waits_for_a_busy_writer(deferred):
    reconcile.reconcile(budget=0)  # the scan positions exist: the pass below reads first
    bulk_photos(2)

    # Taken once the command has read the photos, before it writes their rows.
    with taken_on_first(f'FROM "{Photo._meta.db_table}"', OtherWriter()):
        call_command("nsfw_requeue", "--full", "--older-than=0", verbosity=0)

    assert [row.status for row in ModeratedImage.objects.all()] == [Status.DONE, Status.DONE]


@sqlite_only
def test_a_moderators_decision_waits_for_a_busy_worker(deferred):
    row, moderator = create_row(), create_user("moderator")
    writer = OtherWriter()
    writer.take()
    assert review.reject(row, user=moderator) is not None
    writer.done()
    row.refresh_from_db()
    assert row.verdict == Verdict.REJECTED


@contextmanager
def busy_timeout(seconds: float) -> Iterator[None]:
    """The database's ``timeout`` (how long a write waits for the lock), for a while."""
    with connection.cursor() as cursor:
        (configured,) = cursor.execute("PRAGMA busy_timeout").fetchone()
        cursor.execute(f"PRAGMA busy_timeout = {int(seconds * 1000)}")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"PRAGMA busy_timeout = {configured}")


@sqlite_only
def test_an_upload_does_not_wait_out_a_busy_writer_for_moderation():
    """Invariant 2: the row's write gives up after UPLOAD_PATIENCE; reconciliation finds it."""
    writer = OtherWriter(seconds=4)
    started = time.monotonic()
    # Taken just as moderation begins its transaction, after the photo's own INSERT.
    with busy_timeout(0.3), taken_on_first("BEGIN", writer):
        photo = Photo.objects.create(image=red())
        waited = time.monotonic() - started
    assert waited < 2  # UPLOAD_PATIENCE (1 s) and one last try; the writer holds on for 4 s
    assert not ModeratedImage.objects.of_object(photo, "image").exists()
    assert reconcile.reconcile(budget=0)["found"] == 1


@sqlite_only
def test_the_sites_own_transactions_begin_as_configured(deferred):
    retry_when_locked(lambda: ScanPosition.objects.count())
    assert connection.transaction_mode is None


def test_retries_stop_once_patience_is_spent():
    tries = []

    def waits_then_finds_it_locked() -> None:
        tries.append(time.monotonic())
        time.sleep(0.15)  # as a transaction waiting out the database's timeout
        raise OperationalError("database is locked")

    with pytest.raises(OperationalError):
        retry_when_locked(waits_then_finds_it_locked, patience=0.2)
    assert len(tries) == 2
