"""``nsfw_statements``: the Transparency Database export, checked against a schema kept here."""

from __future__ import annotations

import io
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.utils import timezone

from nsfw_moderation import notices, review
from nsfw_moderation.models import Statement, Verdict
from tests.testapp.models import Photo

pytest_plugins = ["tests.admin_fixtures"]
pytestmark = pytest.mark.django_db(transaction=True)

SCHEMA = json.loads(
    (Path(__file__).parent / "schemas" / "transparency_statements.schema.json").read_text()
)


def export(*args: str) -> dict[str, Any]:
    out = io.StringIO()
    call_command("nsfw_statements", *args, stdout=out)
    return json.loads(out.getvalue())


@pytest.fixture
def statements(make_row: Any, reviewer: User) -> list[Statement]:
    blocked = make_row(verdict=Verdict.BLOCKED, sha256="d" * 64, file_name="photos/secret.png")
    flagged = make_row(Photo.objects.create(title="x"), sha256="e" * 64)
    review.reject(flagged, user=reviewer, note="nudity")
    return [notices.issue(blocked, automated=True), Statement.objects.get(image=flagged)]


def test_the_export_validates_against_the_schema(statements):
    today = timezone.now().date().isoformat()
    exported = export("--since", today, "--until", today)
    jsonschema.validate(exported, SCHEMA)
    by_puid = {record["puid"]: record for record in exported["statements"]}
    assert set(by_puid) == {str(statement.public_id) for statement in statements}
    automatic, human = (by_puid[str(statement.public_id)] for statement in statements)
    assert (automatic["automated_detection"], automatic["automated_decision"]) == (
        "Yes",
        "AUTOMATED_DECISION_FULLY",
    )
    assert human["automated_decision"] == "AUTOMATED_DECISION_NOT_AUTOMATED"
    assert human["decision_facts"].endswith("nudity")
    assert automatic["content_type"] == ["CONTENT_TYPE_IMAGE"]
    assert automatic["application_date"] == today


def test_the_schema_rejects_what_the_database_would(statements):
    today = timezone.now().date().isoformat()
    record = export("--since", today, "--until", today)["statements"][0]
    for broken in (
        {**record, "automated_detection": True},
        {**record, "decision_visibility": "DECISION_VISIBILITY_CONTENT_DISABLED"},
        {**record, "image": "aGVsbG8="},
        {key: value for key, value in record.items() if key != "decision_ground"},
    ):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate({"statements": [broken]}, SCHEMA)


def test_the_export_never_includes_images_hashes_or_file_names(statements):
    today = timezone.now().date().isoformat()
    text = json.dumps(export("--since", today, "--until", today))
    assert "secret.png" not in text
    assert "d" * 64 not in text


def test_the_export_covers_the_period_only(statements):
    yesterday = (timezone.now() - timedelta(days=1)).date().isoformat()
    assert export("--since", yesterday, "--until", yesterday) == {"statements": []}
    with pytest.raises(CommandError, match="Not a date"):
        export("--since", "last week", "--until", yesterday)
