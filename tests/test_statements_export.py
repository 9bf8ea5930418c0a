"""``nsfw_statements``: the Transparency Database export, checked against the API's own rules.

The rules are in :mod:`tests.transparency_rules`, written from the database's public source
(``digital-services-act/transparency-database``; files and commits cited there).
"""

from __future__ import annotations

import io
import json
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.test import override_settings
from django.utils import timezone

from nsfw_moderation import notices, review
from nsfw_moderation.models import Statement, Verdict
from tests import transparency_rules as rules
from tests.testapp.models import Photo

pytest_plugins = ["tests.admin_fixtures"]
pytestmark = pytest.mark.django_db(transaction=True)


def export(*args: str) -> list[dict[str, Any]]:
    """The request bodies ``nsfw_statements`` writes (JSON Lines: one bulk call's body a line)."""
    out = io.StringIO()
    call_command("nsfw_statements", *args, stdout=out)
    text = out.getvalue()
    try:
        # Before 0.x it wrote one indented document; read that too, so the tests say why it failed.
        return [json.loads(text)]
    except json.JSONDecodeError:
        return [json.loads(line) for line in text.splitlines() if line.strip()]


def today_export() -> list[dict[str, Any]]:
    today = timezone.now().date().isoformat()
    return export("--since", today, "--until", today)


def records(bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [record for body in bodies for record in body["statements"]]


def assert_accepted(bodies: list[dict[str, Any]]) -> None:
    """Every body is one the bulk endpoint takes: 1-100 statements, each valid, ``puid``s unique."""
    for body in bodies:
        assert rules.call_errors(body) == {}
    puids = [record["puid"] for record in records(bodies)]
    assert len(puids) == len(set(puids))
    assert all(rules.unknown_fields(record) == set() for record in records(bodies))


def plain_statement(**fields: Any) -> Statement:
    values = {
        "object_id": "1",
        "field_name": "image",
        "verdict": Verdict.REJECTED,
        "automated": False,
        "model_name": "tiny",
        "score": 0.9,
        **fields,
    }
    return Statement.objects.create(**values)


@pytest.fixture
def statements(make_row: Any, reviewer: User) -> list[Statement]:
    blocked = make_row(verdict=Verdict.BLOCKED, sha256="d" * 64, file_name="photos/secret.png")
    flagged = make_row(Photo.objects.create(title="x"), sha256="e" * 64)
    review.reject(flagged, user=reviewer, note="nudity")
    return [notices.issue(blocked, automated=True), Statement.objects.get(image=flagged)]


# --- The defects seen in issue 26, point 17 ---------------------------------------


def test_the_export_at_default_settings_is_accepted(statements):
    # Failed before: category STATEMENT_CATEGORY_PORNOGRAPHY_OR_SEXUALIZED_CONTENT (gone in
    # API v2) and no territorial_scope (required in v2).
    bodies = today_export()
    assert_accepted(bodies)
    assert {record["puid"] for record in records(bodies)} == {
        str(statement.public_id) for statement in statements
    }


def test_no_body_holds_more_than_100_statements(db):
    # Failed before: 105 statements were written as one body of 105.
    for _ in range(105):
        plain_statement()
    bodies = today_export()
    assert [len(body["statements"]) for body in bodies] == [100, 5]
    assert_accepted(bodies)


def test_a_long_note_never_gives_an_over_long_field(db):
    # Failed before: a 2,500-character note gave a 2,571-character explanation (limit 2,000).
    words = ("lorem ipsum dolor sit amet " * 100)[:2500]
    plain_statement(note=words, user_note=words)
    (record,) = records(today_export())
    assert_accepted([{"statements": [record]}])
    assert len(record["incompatible_content_explanation"]) <= 2000
    assert len(record["decision_facts"]) <= 5000


# --- What each record says -------------------------------------------------------


def test_each_record_says_what_was_decided_and_how(statements):
    by_puid = {record["puid"]: record for record in records(today_export())}
    automatic, human = (by_puid[str(statement.public_id)] for statement in statements)
    assert (automatic["automated_detection"], automatic["automated_decision"]) == (
        "Yes",
        "AUTOMATED_DECISION_FULLY",
    )
    assert human["automated_decision"] == "AUTOMATED_DECISION_NOT_AUTOMATED"
    assert automatic["content_type"] == ["CONTENT_TYPE_IMAGE"]
    assert automatic["application_date"] == timezone.now().date().isoformat()
    assert automatic["category"] == "STATEMENT_CATEGORY_OTHER_VIOLATION_TC"
    assert automatic["category_specification"] == [
        "KEYWORD_ADULT_SEXUAL_MATERIAL",
        "KEYWORD_NUDITY",
    ]
    assert automatic["territorial_scope"] == sorted(rules.COUNTRIES)


def test_the_export_never_includes_images_hashes_or_file_names(statements):
    text = json.dumps(today_export())
    assert "secret.png" not in text
    assert "d" * 64 not in text


def test_the_internal_note_is_never_exported(db):
    plain_statement(note="Reported to the police, case 4711", user_note="")
    assert "4711" not in json.dumps(today_export())


def test_the_note_to_the_owner_is_not_exported_either(db):
    """It may name people; the database's statements must hold no personal data (DSA 24(5))."""
    plain_statement(note="", user_note="Dear Alice Example, nudity is not allowed here.")
    assert "Alice" not in json.dumps(today_export())


def test_the_export_covers_the_period_only(statements):
    yesterday = (timezone.now() - timedelta(days=1)).date().isoformat()
    assert export("--since", yesterday, "--until", yesterday) == []
    with pytest.raises(CommandError, match="Not a date"):
        export("--since", "last week", "--until", yesterday)


# --- Other settings ----------------------------------------------------------------


def moderation(**overrides: Any) -> Any:
    from django.conf import settings

    return override_settings(NSFW_MODERATION={**settings.NSFW_MODERATION, **overrides})


@pytest.mark.parametrize(
    "overrides",
    [
        {"STATEMENT_CATEGORY": "STATEMENT_CATEGORY_PROTECTION_OF_MINORS", "STATEMENT_KEYWORDS": []},
        {
            "STATEMENT_KEYWORDS": ["KEYWORD_OTHER"],
            "STATEMENT_KEYWORD_OTHER": "Explicit images outside the adult section",
        },
        {"STATEMENT_TERRITORIAL_SCOPE": ["DE", "AT"]},
        {"STATEMENT_GROUND": "Terms of service §4.2 (nudity) " + "x" * 600},
    ],
)
def test_the_export_is_accepted_with_other_settings(statements, overrides):
    with moderation(**overrides):
        bodies = today_export()
    assert_accepted(bodies)
    record = records(bodies)[0]
    if "STATEMENT_KEYWORDS" in overrides:
        assert record.get("category_specification", []) == overrides["STATEMENT_KEYWORDS"]
    if "STATEMENT_KEYWORD_OTHER" in overrides:
        assert record["category_specification_other"] == overrides["STATEMENT_KEYWORD_OTHER"]
    if "STATEMENT_TERRITORIAL_SCOPE" in overrides:
        assert record["territorial_scope"] == ["AT", "DE"]


# --- The rules themselves catch what the database would refuse ---------------------


def test_the_rules_reject_what_the_database_would(statements):
    (record, *_) = records(today_export())
    for broken, field in (
        (
            {**record, "category": "STATEMENT_CATEGORY_PORNOGRAPHY_OR_SEXUALIZED_CONTENT"},
            "category",
        ),
        ({**record, "category_specification": ["KEYWORD_PORN"]}, "category_specification"),
        ({**record, "automated_detection": True}, "automated_detection"),
        (
            {**record, "decision_visibility": "DECISION_VISIBILITY_CONTENT_DISABLED"},
            "decision_visibility",
        ),
        (
            {**record, "incompatible_content_explanation": "x" * 2001},
            "incompatible_content_explanation",
        ),
        ({**record, "decision_facts": "x" * 5001}, "decision_facts"),
        ({**record, "puid": "has spaces"}, "puid"),
        ({**record, "territorial_scope": ["US"]}, "territorial_scope"),
        ({**record, "territorial_scope": []}, "territorial_scope"),
        ({**record, "application_date": "2019-12-31"}, "application_date"),
        ({**record, "content_date": "2025-7-01"}, "content_date"),
        (
            {key: value for key, value in record.items() if key != "decision_ground"},
            "decision_ground",
        ),
        ({**record, "incompatible_content_ground": " "}, "incompatible_content_ground"),
    ):
        assert field in rules.statement_errors(broken)
    assert rules.call_errors({"statements": [record] * 101})["errors"]["statements"]
    assert rules.call_errors({"statements": []})["errors"]["statements"]
    assert rules.unknown_fields({**record, "image": "aGVsbG8="}) == {"image"}


@pytest.mark.parametrize("limit", [50, 500, 2000, 5000])
def test_shorten_cuts_at_a_word_and_never_exceeds(limit):
    from nsfw_moderation.transparency import shorten

    text = "The moderator wrote a long note. " * 200
    short = shorten(text, limit)
    assert len(short) <= limit
    assert short.endswith("…")
    assert text.startswith(short.removesuffix("…"))
    assert text[len(short) - 1] == " "  # the cut fell between two words
    assert shorten("x" * (limit + 5), limit) == "x" * (limit - 1) + "…"
    assert shorten("short", limit) == "short"
