"""``nsfw_submit_statements``: the statements go to a local Transparency Database that applies
the API's own rules (:mod:`tests.transparency_server`), once each, whatever fails on the way."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from nsfw_moderation import transparency
from nsfw_moderation.models import Statement, TransparencySubmission, Verdict
from tests.conftest import moderation
from tests.transparency_server import Database, running

TOKEN = "tdb-token-do-not-log-7f3a"


@pytest.fixture
def database() -> Iterator[Database]:
    with (
        running(Database(token=TOKEN)) as served,
        moderation(
            TRANSPARENCY_API_URL=served.url, TRANSPARENCY_API_TOKEN=TOKEN, TRANSPARENCY_TIMEOUT=1
        ),
    ):
        yield served


def make_statements(count: int, **fields: Any) -> list[Statement]:
    return [
        Statement.objects.create(
            object_id=str(number),
            field_name="image",
            verdict=Verdict.BLOCKED,
            automated=True,
            model_name="tiny",
            score=0.97,
            threshold=0.9,
            **fields,
        )
        for number in range(count)
    ]


def submit(*args: str) -> str:
    out = io.StringIO()
    call_command(
        "nsfw_submit_statements", "--backoff", "0", *args, stdout=out, stderr=io.StringIO()
    )
    return out.getvalue()


def accepted() -> dict[str, TransparencySubmission]:
    return {
        str(submission.statement.public_id): submission
        for submission in TransparencySubmission.objects.select_related("statement").filter(
            accepted_at__isnull=False
        )
    }


def test_250_statements_go_in_3_calls_and_are_recorded(db, database):
    statements = make_statements(250)
    assert "Accepted 250 statements, 0 already in the database, 0 refused, in 3 calls" in submit()
    assert [(call.status, call.statements) for call in database.calls] == [
        (201, 100),
        (201, 100),
        (201, 50),
    ]
    assert all(call.authorised for call in database.calls)
    records = accepted()
    assert set(records) == {str(statement.public_id) for statement in statements}
    assert set(database.stored) == set(records)
    for puid, submission in records.items():
        assert submission.database_id == database.stored[puid]["uuid"]
        assert (submission.attempts, submission.error) == (1, "")


def test_a_statement_accepted_is_never_sent_again(db, database):
    make_statements(3)
    submit()
    assert "Accepted 0 statements" in submit()
    assert len(database.calls) == 1
    make_statements(2)
    submit()
    assert [call.statements for call in database.calls] == [3, 2]


def test_a_server_error_mid_way_is_retried_without_duplicates(db, database):
    database.faults = {2: "500"}
    make_statements(250)
    submit()
    assert [(call.status, call.statements) for call in database.calls] == [
        (201, 100),
        (500, 100),
        (201, 100),
        (201, 50),
    ]
    assert len(accepted()) == len(database.stored) == 250
    attempts = sorted(submission.attempts for submission in accepted().values())
    assert attempts == [1] * 150 + [2] * 100


def test_an_answer_lost_after_the_batch_was_stored_files_nothing_twice(db, database):
    # The connection drops after the database stored the 2nd batch: the retry is told that
    # those puids exist, which counts as accepted.
    database.faults = {2: "drop-after-store"}
    make_statements(250)
    assert "Accepted 150 statements, 100 already in the database" in submit()
    assert [(call.status, call.statements) for call in database.calls] == [
        (201, 100),
        (None, 100),
        (422, 100),
        (201, 50),
    ]
    assert len(accepted()) == len(database.stored) == 250
    assert sum(1 for s in accepted().values() if s.database_id == "") == 100


def test_retry_after_is_honoured_and_back_off_doubles(db, database):
    database.faults = {1: "429:7", 2: "500", 3: "500"}
    make_statements(1)
    slept: list[float] = []
    client = transparency.Client(database.url, TOKEN, timeout=5)
    retrying = transparency.Retrying(retries=5, backoff=0.5, sleep=slept.append)
    outcome = transparency.submit(client, retrying)
    assert slept == [7.0, 1.0, 2.0]
    assert (outcome.accepted, outcome.calls) == (1, 4)


def test_a_server_that_keeps_failing_is_given_up_recorded_and_resumed_later(db, database):
    database.faults = dict.fromkeys(range(1, 4), "500")
    make_statements(120)
    with pytest.raises(CommandError, match="Gave up after 3 tries: HTTP 500"):
        submit("--retries", "2")
    assert accepted() == {}
    first = TransparencySubmission.objects.filter(attempts=3)
    assert first.count() == 100
    assert all("HTTP 500" in s.error for s in first)
    submit()
    assert len(accepted()) == len(database.stored) == 120
    assert all(submission.error == "" for submission in accepted().values())


def test_a_statement_the_database_refuses_is_recorded_and_the_others_go_in(db, database):
    make_statements(2)
    (old,) = make_statements(1, content_created_at=datetime(1999, 12, 31, tzinfo=UTC))
    with pytest.raises(CommandError, match="1 statements were refused"):
        submit()
    assert [call.status for call in database.calls] == [422, 201]
    assert len(accepted()) == 2
    refused = TransparencySubmission.objects.get(statement=old)
    assert refused.accepted_at is None
    assert "content_date" in refused.error


def test_a_wrong_token_stops_at_once_and_is_never_logged(db, database, caplog):
    make_statements(1)
    caplog.set_level(logging.DEBUG)
    wrong = moderation(TRANSPARENCY_API_URL=database.url, TRANSPARENCY_API_TOKEN="wrong-token")
    with wrong, pytest.raises(CommandError, match="HTTP 401") as raised:
        submit()
    assert [call.status for call in database.calls] == [401]
    (submission,) = TransparencySubmission.objects.all()
    assert "401" in submission.error
    for text in (submission.error, str(raised.value), caplog.text):
        assert TOKEN not in text
        assert "wrong-token" not in text


def test_without_a_token_nothing_is_sent(db, database, monkeypatch):
    monkeypatch.delenv("DSA_TRANSPARENCY_API_TOKEN", raising=False)
    make_statements(1)
    with moderation(TRANSPARENCY_API_URL=database.url, TRANSPARENCY_API_TOKEN=None):
        with pytest.raises(CommandError, match="No API token"):
            submit()
        monkeypatch.setenv("DSA_TRANSPARENCY_API_TOKEN", TOKEN)
        submit()
    assert [call.status for call in database.calls] == [201]


def test_the_local_database_refuses_what_the_real_one_does(db, database):
    # The stand-in is only worth its rules: 101 statements, a v1 category, a repeated puid.
    (statement,) = make_statements(1)
    record = transparency.record(statement)
    client = transparency.Client(database.url, TOKEN, timeout=5)
    too_many = [{**record, "puid": f"p{number}"} for number in range(101)]
    assert client.post({"statements": too_many}).status == 422
    v1 = {**record, "category": "STATEMENT_CATEGORY_PORNOGRAPHY_OR_SEXUALIZED_CONTENT"}
    assert "statement_0" in client.post({"statements": [v1]}).body["errors"]
    assert client.post({"statements": [record, record]}).body["errors"]["existing_puids"]
    assert client.post({"statements": [record]}).status == 201
    assert database.stored == {record["puid"]: database.stored[record["puid"]]}


def test_a_lost_answer_is_sent_again_only_after_the_calls_timeout(db, database):
    """The server may still be storing it: sent earlier, both calls could pass the puid check."""
    database.faults = {1: "drop-after-store"}
    make_statements(1)
    slept: list[float] = []
    client = transparency.Client(database.url, TOKEN, timeout=9)
    transparency.submit(client, transparency.Retrying(backoff=0.5, sleep=slept.append))
    assert slept == [9]


def test_one_submission_at_a_time(db, database):
    """A run that finds another one holding the lock (a connection of its own) stops at once."""
    import threading

    from django.db import connection

    make_statements(1)
    held, done = threading.Event(), threading.Event()

    def other_run() -> None:
        try:
            with transparency.one_submission_at_a_time():
                held.set()
                done.wait(10)
        finally:
            connection.close()

    thread = threading.Thread(target=other_run)
    thread.start()
    try:
        assert held.wait(10)
        with pytest.raises(CommandError, match="Another submission"):
            submit()
    finally:
        done.set()
        thread.join()
    assert "Accepted 1 statements" in submit()
