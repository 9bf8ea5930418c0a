"""The EU DSA Transparency Database's own validation rules, for checking our export in tests.

Written from the database's public source, repository
``digital-services-act/transparency-database`` (https://github.com/digital-services-act/transparency-database),
kept apart from ``nsfw_moderation.transparency`` on purpose: the app's enumerations are checked
against these, not the other way round. Files read (path @ commit):

- ``app/Services/GroupedSubmissionsService.php`` @ 242ba47f396a3ddf103034103d262148ea6e6d51:
  ``multi_rules()``, the rules each statement of a bulk call is validated with (Laravel:
  ``required``, ``max:N`` counts characters, ``in:`` checks every item of an array,
  ``exclude_unless`` drops a field instead of checking it), and ``sanitizePayload()``, which
  reports them as ``{"errors": {"statement_<index>": {field: [message]}}}``.
- ``app/Http/Controllers/Api/v1/StatementMultipleAPIController.php`` @
  024010d9980c8aeb005fc17c91c9ada9e4cbf41e: the bulk endpoint (``POST /api/v1/statements``,
  ``Authorization: Bearer``): ``'statements' => 'required|array|between:1,100'``; nothing is
  stored unless every statement is valid and every ``puid`` new; ``201`` with
  ``{"statements": [...]}``, each statement as sent plus ``uuid``, ``created_at``,
  ``platform_name``.
- ``app/Services/PlatformUniqueIdService.php`` @ 0df06ff845eb70d6a425922161d4dee49165041f and
  ``app/Exceptions/PuidNotUniqueMultipleException.php`` @
  73bec1452a07370ae9345954da977de4a3aeddef: a ``puid`` repeated within the call or already
  used by the platform makes the call a ``422`` with ``{"message": ..., "errors": {"puid":
  [...], "existing_puids": [...]}}``.
- ``resources/markdown/api-documentation-two.md`` @ 7c0a571ac7dc080881073b46453d3bff56cec5e8
  (the API v2 documentation, in force since 1 July 2025): the v2 ``category`` and
  ``category_specification`` lists (``STATEMENT_CATEGORY_PORNOGRAPHY_OR_SEXUALIZED_CONTENT`` is
  not among them), ``territorial_scope`` *required*, the ``puid`` characters, 100 statements
  per bulk call, ``401`` for a bad token.
- ``app/Models/Statement.php`` (the 2024 version with ``DECISION_VISIBILITY_CONTENT_LABELLED``
  and ``SOURCE_TYPE_OTHER_NOTIFICATION``, which the v2 documentation lists from the model):
  ``DECISION_VISIBILITIES``, ``CONTENT_TYPES``, ``SOURCE_TYPES``, ``AUTOMATED_DECISIONS``.
- ``app/Services/EuropeanCountriesService.php`` @ 0f6fa115b0383a3cffbb2b4d0bc54ae3849daee3:
  ``EUROPEAN_COUNTRY_CODES``.

Where the v2 documentation is stricter than that code (``territorial_scope``), the stricter
rule is kept. Discourse's DSA reporting (``DsaStatementRules``) also sends the 16 v2
categories only, ``STATEMENT_CATEGORY_OTHER_VIOLATION_TC`` for a breach of a site's terms, and
``KEYWORD_NUDITY`` as its specification.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping
from typing import Any

MAX_STATEMENTS_PER_CALL = 100

DECISION_VISIBILITIES = frozenset(
    {
        "DECISION_VISIBILITY_CONTENT_REMOVED",
        "DECISION_VISIBILITY_CONTENT_DISABLED",
        "DECISION_VISIBILITY_CONTENT_DEMOTED",
        "DECISION_VISIBILITY_CONTENT_AGE_RESTRICTED",
        "DECISION_VISIBILITY_CONTENT_INTERACTION_RESTRICTED",
        "DECISION_VISIBILITY_CONTENT_LABELLED",
        "DECISION_VISIBILITY_OTHER",
    }
)
DECISION_MONETARIES = frozenset(
    {"DECISION_MONETARY_SUSPENSION", "DECISION_MONETARY_TERMINATION", "DECISION_MONETARY_OTHER"}
)
DECISION_PROVISIONS = frozenset(
    {
        "DECISION_PROVISION_PARTIAL_SUSPENSION",
        "DECISION_PROVISION_TOTAL_SUSPENSION",
        "DECISION_PROVISION_PARTIAL_TERMINATION",
        "DECISION_PROVISION_TOTAL_TERMINATION",
    }
)
DECISION_ACCOUNTS = frozenset({"DECISION_ACCOUNT_SUSPENDED", "DECISION_ACCOUNT_TERMINATED"})
ACCOUNT_TYPES = frozenset({"ACCOUNT_TYPE_BUSINESS", "ACCOUNT_TYPE_PRIVATE"})
DECISION_GROUNDS = frozenset(
    {"DECISION_GROUND_ILLEGAL_CONTENT", "DECISION_GROUND_INCOMPATIBLE_CONTENT"}
)
CONTENT_TYPES = frozenset(
    {
        "CONTENT_TYPE_APP",
        "CONTENT_TYPE_AUDIO",
        "CONTENT_TYPE_IMAGE",
        "CONTENT_TYPE_PRODUCT",
        "CONTENT_TYPE_SYNTHETIC_MEDIA",
        "CONTENT_TYPE_TEXT",
        "CONTENT_TYPE_VIDEO",
        "CONTENT_TYPE_OTHER",
    }
)
#: API v2 (1 July 2025): the v1 sexual-content and platform-scope categories are gone.
CATEGORIES = frozenset(
    {
        "STATEMENT_CATEGORY_ANIMAL_WELFARE",
        "STATEMENT_CATEGORY_CONSUMER_INFORMATION",
        "STATEMENT_CATEGORY_CYBER_VIOLENCE",
        "STATEMENT_CATEGORY_CYBER_VIOLENCE_AGAINST_WOMEN",
        "STATEMENT_CATEGORY_DATA_PROTECTION_AND_PRIVACY_VIOLATIONS",
        "STATEMENT_CATEGORY_ILLEGAL_OR_HARMFUL_SPEECH",
        "STATEMENT_CATEGORY_INTELLECTUAL_PROPERTY_INFRINGEMENTS",
        "STATEMENT_CATEGORY_NEGATIVE_EFFECTS_ON_CIVIC_DISCOURSE_OR_ELECTIONS",
        "STATEMENT_CATEGORY_NOT_SPECIFIED_NOTICE",
        "STATEMENT_CATEGORY_OTHER_VIOLATION_TC",
        "STATEMENT_CATEGORY_PROTECTION_OF_MINORS",
        "STATEMENT_CATEGORY_RISK_FOR_PUBLIC_SECURITY",
        "STATEMENT_CATEGORY_SCAMS_AND_FRAUD",
        "STATEMENT_CATEGORY_SELF_HARM",
        "STATEMENT_CATEGORY_UNSAFE_AND_PROHIBITED_PRODUCTS",
        "STATEMENT_CATEGORY_VIOLENCE",
    }
)
#: The v2 ``category_specification`` keywords.
KEYWORDS = frozenset(
    {
        "KEYWORD_ANIMAL_HARM",
        "KEYWORD_ADULT_SEXUAL_MATERIAL",
        "KEYWORD_AGE_SPECIFIC_RESTRICTIONS",
        "KEYWORD_AGE_SPECIFIC_RESTRICTIONS_MINORS",
        "KEYWORD_BIOMETRIC_DATA_BREACH",
        "KEYWORD_BULLYING_AGAINST_GIRLS",
        "KEYWORD_CHILD_SEXUAL_ABUSE_MATERIAL",
        "KEYWORD_CHILD_SEXUAL_ABUSE_MATERIAL_DEEPFAKE",
        "KEYWORD_CONTENT_PROMOTING_EATING_DISORDERS",
        "KEYWORD_COORDINATED_HARM",
        "KEYWORD_COPYRIGHT_INFRINGEMENT",
        "KEYWORD_CYBER_BULLYING_INTIMIDATION",
        "KEYWORD_CYBER_HARASSMENT",
        "KEYWORD_CYBER_HARASSMENT_AGAINST_WOMEN",
        "KEYWORD_CYBER_INCITEMENT",
        "KEYWORD_CYBER_STALKING",
        "KEYWORD_CYBER_STALKING_AGAINST_WOMEN",
        "KEYWORD_DATA_FALSIFICATION",
        "KEYWORD_DEFAMATION",
        "KEYWORD_DESIGN_INFRINGEMENT",
        "KEYWORD_DISCRIMINATION",
        "KEYWORD_MISINFORMATION_DISINFORMATION",
        "KEYWORD_FEMALE_GENDERED_DISINFORMATION",
        "KEYWORD_GEOGRAPHIC_INDICATIONS_INFRINGEMENT",
        "KEYWORD_GEOGRAPHICAL_REQUIREMENTS",
        "KEYWORD_GOODS_SERVICES_NOT_PERMITTED",
        "KEYWORD_GROOMING_SEXUAL_ENTICEMENT_MINORS",
        "KEYWORD_HATE_SPEECH",
        "KEYWORD_HIDDEN_ADVERTISEMENT",
        "KEYWORD_HUMAN_EXPLOITATION",
        "KEYWORD_HUMAN_TRAFFICKING",
        "KEYWORD_ILLEGAL_ORGANIZATIONS",
        "KEYWORD_IMPERSONATION_ACCOUNT_HIJACKING",
        "KEYWORD_INAUTHENTIC_ACCOUNTS",
        "KEYWORD_INAUTHENTIC_LISTINGS",
        "KEYWORD_INAUTHENTIC_USER_REVIEWS",
        "KEYWORD_INCITEMENT_AGAINST_WOMEN",
        "KEYWORD_INCITEMENT_VIOLENCE_HATRED",
        "KEYWORD_INSUFFICIENT_INFORMATION_ON_TRADERS",
        "KEYWORD_LANGUAGE_REQUIREMENTS",
        "KEYWORD_MISLEADING_INFO_CONSUMER_RIGHTS",
        "KEYWORD_MISLEADING_INFO_GOODS_SERVICES",
        "KEYWORD_MISSING_PROCESSING_GROUND",
        "KEYWORD_NON_CONSENSUAL_IMAGE_SHARING",
        "KEYWORD_NON_CONSENSUAL_IMAGE_SHARING_AGAINST_WOMEN",
        "KEYWORD_NON_CONSENSUAL_MATERIAL_DEEPFAKE",
        "KEYWORD_NON_CONSENSUAL_MATERIAL_DEEPFAKE_AGAINST_WOMEN",
        "KEYWORD_NONCOMPLIANCE_PRICING",
        "KEYWORD_NUDITY",
        "KEYWORD_PATENT_INFRINGEMENT",
        "KEYWORD_PHISHING",
        "KEYWORD_PROHIBITED_PRODUCTS",
        "KEYWORD_PYRAMID_SCHEMES",
        "KEYWORD_RIGHT_TO_BE_FORGOTTEN",
        "KEYWORD_RISK_ENVIRONMENTAL_DAMAGE",
        "KEYWORD_RISK_PUBLIC_HEALTH",
        "KEYWORD_SELF_MUTILATION",
        "KEYWORD_STALKING",
        "KEYWORD_SUICIDE",
        "KEYWORD_TERRORIST_CONTENT",
        "KEYWORD_TRADE_SECRET_INFRINGEMENT",
        "KEYWORD_TRADEMARK_INFRINGEMENT",
        "KEYWORD_TRAFFICKING_WOMEN_GIRLS",
        "KEYWORD_UNLAWFUL_SALE_ANIMALS",
        "KEYWORD_UNSAFE_CHALLENGES",
        "KEYWORD_UNSAFE_PRODUCTS",
        "KEYWORD_VIOLATION_EU_LAW",
        "KEYWORD_VIOLATION_NATIONAL_LAW",
        "KEYWORD_OTHER",
    }
)
# fmt: off
COUNTRIES = frozenset((
    "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU", "IE",
    "IS", "IT", "LI", "LT", "LU", "LV", "MT", "NL", "NO", "PL", "PT", "RO", "SE", "SI", "SK",
))
# fmt: on
SOURCE_TYPES = frozenset(
    {
        "SOURCE_ARTICLE_16",
        "SOURCE_TRUSTED_FLAGGER",
        "SOURCE_TYPE_OTHER_NOTIFICATION",
        "SOURCE_VOLUNTARY",
    }
)
YES_NO = frozenset({"Yes", "No"})
AUTOMATED_DECISIONS = frozenset(
    {"AUTOMATED_DECISION_FULLY", "AUTOMATED_DECISION_PARTIALLY", "AUTOMATED_DECISION_NOT_AUTOMATED"}
)
#: ``'puid' => ['required', 'max:500', 'regex:/^[a-zA-Z0-9-_]+$/D']``
PUID = re.compile(r"[a-zA-Z0-9_-]+")

#: Free-text fields and their ``max:`` (characters).
MAX_LENGTHS = {
    "decision_visibility_other": 500,
    "decision_monetary_other": 500,
    "category_specification_other": 500,
    "decision_ground_reference_url": 500,
    "illegal_content_legal_ground": 500,
    "illegal_content_explanation": 2000,
    "incompatible_content_ground": 500,
    "incompatible_content_explanation": 2000,
    "content_type_other": 500,
    "decision_facts": 5000,
    "source_identity": 500,
    "puid": 500,
}
#: Single values and the set they must be ``in``.
ENUMERATIONS: dict[str, frozenset[str]] = {
    "decision_monetary": DECISION_MONETARIES,
    "decision_provision": DECISION_PROVISIONS,
    "decision_account": DECISION_ACCOUNTS,
    "account_type": ACCOUNT_TYPES,
    "decision_ground": DECISION_GROUNDS,
    "incompatible_content_illegal": YES_NO,
    "category": CATEGORIES,
    "source_type": SOURCE_TYPES,
    "automated_detection": YES_NO,
    "automated_decision": AUTOMATED_DECISIONS,
}
#: Arrays and the set every item must be ``in``.
ARRAY_ENUMERATIONS: dict[str, frozenset[str]] = {
    "decision_visibility": DECISION_VISIBILITIES,
    "category_specification": KEYWORDS,
    "content_type": CONTENT_TYPES,
    "category_addition": CATEGORIES,
    "territorial_scope": COUNTRIES,
}
REQUIRED = (
    "decision_ground",
    "content_type",
    "category",
    "territorial_scope",
    "content_date",
    "application_date",
    "decision_facts",
    "source_type",
    "automated_detection",
    "automated_decision",
    "puid",
)
#: ``date_format:Y-m-d`` with ``after_or_equal`` / ``before_or_equal`` bounds.
DATES = {
    "content_date": (datetime.date(2000, 1, 1), datetime.date(2038, 1, 1)),
    "application_date": (datetime.date(2020, 1, 1), datetime.date(2038, 1, 1)),
}
KNOWN_FIELDS = frozenset(
    {
        *MAX_LENGTHS,
        *ENUMERATIONS,
        *ARRAY_ENUMERATIONS,
        *DATES,
        "content_language",
        "content_id",
        "end_date_account_restriction",
        "end_date_monetary_restriction",
        "end_date_service_restriction",
        "end_date_visibility_restriction",
    }
)
#: Fields a field only counts with (``exclude_unless``): dropped, not checked, otherwise.
_ONLY_WITH = {
    "illegal_content_legal_ground": ("decision_ground", "DECISION_GROUND_ILLEGAL_CONTENT"),
    "illegal_content_explanation": ("decision_ground", "DECISION_GROUND_ILLEGAL_CONTENT"),
    "incompatible_content_ground": ("decision_ground", "DECISION_GROUND_INCOMPATIBLE_CONTENT"),
    "incompatible_content_explanation": (
        "decision_ground",
        "DECISION_GROUND_INCOMPATIBLE_CONTENT",
    ),
    "incompatible_content_illegal": ("decision_ground", "DECISION_GROUND_INCOMPATIBLE_CONTENT"),
    "decision_monetary_other": ("decision_monetary", "DECISION_MONETARY_OTHER"),
}


def _empty(value: Any) -> bool:
    # Laravel's ``required``: null, an empty (or, after TrimStrings, blank) string, an empty array.
    return value is None or (isinstance(value, str) and not value.strip()) or value == []


def statement_errors(statement: Mapping[str, Any]) -> dict[str, list[str]]:
    """What the database answers for one statement: ``{field: [message]}``, empty when valid."""
    given = {
        name: value
        for name, value in statement.items()
        if name not in _ONLY_WITH or statement.get(_ONLY_WITH[name][0]) == _ONLY_WITH[name][1]
    }
    errors: dict[str, list[str]] = {}
    for check in (_required, _lengths, _enumerations, _dates, _puid, _others):
        for name, message in check(given):
            errors.setdefault(name, []).append(message)
    return errors


def unknown_fields(statement: Mapping[str, Any]) -> set[str]:
    """Fields the database does not know (it drops them; our export should not send any)."""
    return set(statement) - KNOWN_FIELDS


def _required(given: Mapping[str, Any]) -> list[tuple[str, str]]:
    found = [
        (name, f"The {name} field is required.") for name in REQUIRED if _empty(given.get(name))
    ]
    restrictions = (
        "decision_visibility",
        "decision_monetary",
        "decision_provision",
        "decision_account",
    )
    if all(_empty(given.get(name)) for name in restrictions):
        found.append(("decision_visibility", "The decision visibility field is required."))
    ground = given.get("decision_ground")
    needed = {
        "DECISION_GROUND_ILLEGAL_CONTENT": (
            "illegal_content_legal_ground",
            "illegal_content_explanation",
        ),
        "DECISION_GROUND_INCOMPATIBLE_CONTENT": (
            "incompatible_content_ground",
            "incompatible_content_explanation",
        ),
    }.get(ground, ())
    found += [
        (name, f"The {name} field is required when decision ground is {ground}.")
        for name in needed
        if _empty(given.get(name))
    ]
    return found


def _lengths(given: Mapping[str, Any]) -> list[tuple[str, str]]:
    return [
        (name, f"The {name} field must not be greater than {limit} characters.")
        for name, limit in MAX_LENGTHS.items()
        if isinstance(given.get(name), str) and len(given[name]) > limit
    ]


def _enumerations(given: Mapping[str, Any]) -> list[tuple[str, str]]:
    found = [
        (name, f"The selected {name} is invalid.")
        for name, allowed in ENUMERATIONS.items()
        if not _empty(given.get(name)) and given[name] not in allowed
    ]
    for name, allowed in ARRAY_ENUMERATIONS.items():
        value = given.get(name)
        if value is None:
            continue
        if not isinstance(value, list):
            found.append((name, f"The {name} field must be an array."))
        elif any(item not in allowed for item in value):
            found.append((name, f"The selected {name} is invalid."))
    return found


def _dates(given: Mapping[str, Any]) -> list[tuple[str, str]]:
    found = []
    for name, (earliest, latest) in DATES.items():
        value = given.get(name)
        if _empty(value):
            continue
        try:
            day = datetime.datetime.strptime(value, "%Y-%m-%d").date()
        except (TypeError, ValueError):
            found.append((name, f"The {name} does not match the format YYYY-MM-DD."))
            continue
        # ``date_format`` is strict: 2025-7-1 parses with strptime but is not Y-m-d.
        if day.isoformat() != value or not earliest <= day <= latest:
            found.append(
                (name, f"The {name} field must be a date between {earliest} and {latest}.")
            )
    return found


def _puid(given: Mapping[str, Any]) -> list[tuple[str, str]]:
    puid = given.get("puid")
    if _empty(puid) or (isinstance(puid, str) and PUID.fullmatch(puid)):
        return []
    return [("puid", "The puid field format is invalid.")]


def _others(given: Mapping[str, Any]) -> list[tuple[str, str]]:
    # ``*_other`` fields required when their list holds the OTHER value.
    pairs = (
        ("decision_visibility", "DECISION_VISIBILITY_OTHER", "decision_visibility_other"),
        ("content_type", "CONTENT_TYPE_OTHER", "content_type_other"),
    )
    return [
        (other, f"The {other} field is required.")
        for field, value, other in pairs
        if isinstance(given.get(field), list) and value in given[field] and _empty(given.get(other))
    ]


def call_errors(body: Any) -> dict[str, Any]:
    """What the bulk endpoint answers for a whole body before looking at ``puid``s."""
    statements = body.get("statements") if isinstance(body, Mapping) else None
    if not isinstance(statements, list) or not 1 <= len(statements) <= MAX_STATEMENTS_PER_CALL:
        return {
            "message": "The statements field must have between 1 and 100 items.",
            "errors": {"statements": ["The statements field must have between 1 and 100 items."]},
        }
    errors = {
        f"statement_{index}": found
        for index, statement in enumerate(statements)
        if (
            found := statement_errors(statement)
            if isinstance(statement, Mapping)
            else {"statement": ["Not an object."]}
        )
    }
    return {"errors": errors} if errors else {}
