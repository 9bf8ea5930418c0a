"""System checks of the Transparency Database settings: values its API (v2) refuses are errors."""

from __future__ import annotations

import pytest
from django.core.checks import run_checks

from nsfw_moderation import transparency
from tests import transparency_rules as rules
from tests.conftest import moderation

pytestmark = pytest.mark.django_db(databases="__all__")


def ids(**changes: object) -> list[str]:
    with moderation(**changes):
        return sorted(m.id for m in run_checks() if m.id and m.id.startswith("nsfw_moderation."))


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        # The v1 default, gone from API v2 since 1 July 2025.
        (
            {"STATEMENT_CATEGORY": "STATEMENT_CATEGORY_PORNOGRAPHY_OR_SEXUALIZED_CONTENT"},
            ["nsfw_moderation.E031"],
        ),
        (
            {"STATEMENT_CATEGORY": "STATEMENT_CATEGORY_SCOPE_OF_PLATFORM_SERVICE"},
            ["nsfw_moderation.E031"],
        ),
        ({"STATEMENT_KEYWORDS": ["KEYWORD_PORN"]}, ["nsfw_moderation.E032"]),
        ({"STATEMENT_KEYWORDS": "KEYWORD_NUDITY"}, ["nsfw_moderation.E032"]),
        (
            {"STATEMENT_KEYWORD_OTHER": "x" * 501, "STATEMENT_KEYWORDS": ["KEYWORD_OTHER"]},
            ["nsfw_moderation.E032"],
        ),
        ({"STATEMENT_TERRITORIAL_SCOPE": ["US"]}, ["nsfw_moderation.E033"]),
        ({"STATEMENT_TERRITORIAL_SCOPE": []}, ["nsfw_moderation.E033"]),
        ({"STATEMENT_TERRITORIAL_SCOPE": "DE"}, ["nsfw_moderation.E033"]),
        ({"STATEMENT_GROUND": ""}, ["nsfw_moderation.E034"]),
        ({"STATEMENT_GROUND": "x" * 501}, ["nsfw_moderation.E034"]),
        (
            {"TRANSPARENCY_API_URL": "transparency.dsa.ec.europa.eu/api/v1"},
            ["nsfw_moderation.E035"],
        ),
        ({"TRANSPARENCY_TIMEOUT": 0}, ["nsfw_moderation.E035"]),
        # The token would cross the network in clear.
        ({"TRANSPARENCY_API_URL": "http://tdb.example.org/api/v1"}, ["nsfw_moderation.E035"]),
    ],
)
def test_a_value_the_database_refuses_is_an_error(changes, expected):
    assert ids(**changes) == expected


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"STATEMENT_CATEGORY": "STATEMENT_CATEGORY_PROTECTION_OF_MINORS", "STATEMENT_KEYWORDS": []},
        {"STATEMENT_KEYWORDS": ["KEYWORD_OTHER"], "STATEMENT_KEYWORD_OTHER": "Explicit images"},
        {"STATEMENT_TERRITORIAL_SCOPE": ["DE", "NO"]},
        {"TRANSPARENCY_API_URL": "http://127.0.0.1:8000/api/v1", "TRANSPARENCY_TIMEOUT": 5},
    ],
)
def test_values_the_database_takes_are_clean(changes):
    assert ids(**changes) == []


def test_the_apps_enumerations_are_the_databases():
    # The checks accept exactly what the API (v2) accepts, no more and no less.
    assert set(transparency.CATEGORIES) == rules.CATEGORIES
    assert set(transparency.KEYWORDS) == rules.KEYWORDS
    assert set(transparency.COUNTRIES) == rules.COUNTRIES
