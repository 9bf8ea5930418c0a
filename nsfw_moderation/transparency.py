"""The EU DSA Transparency Database: statements as its API takes them, and their submission.

:func:`record` writes a :class:`~nsfw_moderation.models.Statement` under the
field names and enumerations of the database's API (v2, in force since
1 July 2025), within its length limits; :func:`bodies` groups records into the
bodies of its bulk endpoint (at most :data:`MAX_BATCH` statements each).
:func:`submit` sends the statements not yet accepted to that endpoint, with
retries and back-off, and records each answer in a
:class:`~nsfw_moderation.models.TransparencySubmission`. A statement's
``public_id`` is its ``puid``, which the database keeps unique per platform: a
statement it already holds is never filed twice, and its "already exists"
answer counts as accepted.

Facts only, never the image, its bytes, its hash, its file name or the
moderators' internal note.
"""

from __future__ import annotations

import email.utils
import fcntl
import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.client import HTTPException
from typing import Any

from django.db import connections
from django.db.models import F, QuerySet
from django.utils import timezone, translation

from nsfw_moderation import notices
from nsfw_moderation.conf import conf
from nsfw_moderation.db import moderation_db, write_transaction
from nsfw_moderation.models import Statement, TransparencySubmission

logger = logging.getLogger(__name__)

#: The bulk endpoint takes 1 to 100 statements per call.
MAX_BATCH = 100

#: API v2 ``category`` values.
CATEGORIES = (
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
)
#: API v2 ``category_specification`` keywords.
KEYWORDS = (
    "KEYWORD_ADULT_SEXUAL_MATERIAL",
    "KEYWORD_AGE_SPECIFIC_RESTRICTIONS",
    "KEYWORD_AGE_SPECIFIC_RESTRICTIONS_MINORS",
    "KEYWORD_ANIMAL_HARM",
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
    "KEYWORD_MISINFORMATION_DISINFORMATION",
    "KEYWORD_MISLEADING_INFO_CONSUMER_RIGHTS",
    "KEYWORD_MISLEADING_INFO_GOODS_SERVICES",
    "KEYWORD_MISSING_PROCESSING_GROUND",
    "KEYWORD_NON_CONSENSUAL_IMAGE_SHARING",
    "KEYWORD_NON_CONSENSUAL_IMAGE_SHARING_AGAINST_WOMEN",
    "KEYWORD_NON_CONSENSUAL_MATERIAL_DEEPFAKE",
    "KEYWORD_NON_CONSENSUAL_MATERIAL_DEEPFAKE_AGAINST_WOMEN",
    "KEYWORD_NONCOMPLIANCE_PRICING",
    "KEYWORD_NUDITY",
    "KEYWORD_OTHER",
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
)
#: ``territorial_scope`` values: the EU and EEA countries.
# fmt: off
COUNTRIES = (
    "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU", "IE",
    "IS", "IT", "LI", "LT", "LU", "LV", "MT", "NL", "NO", "PL", "PT", "RO", "SE", "SI", "SK",
)
# fmt: on

#: Free-text fields and their limits in characters.
LIMITS = {
    "incompatible_content_ground": 500,
    "incompatible_content_explanation": 2000,
    "category_specification_other": 500,
    "decision_facts": 5000,
}


# --- Records ----------------------------------------------------------------------


def shorten(text: str, limit: int) -> str:
    """``text`` in at most ``limit`` characters: cut at a word boundary, with an ellipsis."""
    text = text.strip()
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    # Back to the last space unless that loses most of the text (one very long word).
    boundary = cut.rstrip().rfind(" ")
    if boundary > limit // 2:
        cut = cut[:boundary]
    return cut.rstrip() + "…"


def territorial_scope() -> list[str]:
    """``STATEMENT_TERRITORIAL_SCOPE``, sorted; every EU and EEA country when unset."""
    return sorted(conf.STATEMENT_TERRITORIAL_SCOPE or COUNTRIES)


def record(statement: Statement) -> dict[str, Any]:
    """``statement`` as one statement of the Transparency Database's API (v2).

    The ground, category, keywords and territorial scope come from the
    ``STATEMENT_*`` settings; the facts are :func:`notices.reasons`, in English.
    """
    with translation.override("en"):
        facts = notices.reasons(statement, public=True)
    return {
        "puid": str(statement.public_id),
        "decision_visibility": ["DECISION_VISIBILITY_CONTENT_DISABLED"],
        "decision_ground": "DECISION_GROUND_INCOMPATIBLE_CONTENT",
        "incompatible_content_ground": _limited(
            "incompatible_content_ground", conf.STATEMENT_GROUND
        ),
        "incompatible_content_explanation": _limited("incompatible_content_explanation", facts),
        "incompatible_content_illegal": "No",
        "content_type": ["CONTENT_TYPE_IMAGE"],
        "category": conf.STATEMENT_CATEGORY,
        **_keywords(),
        "territorial_scope": territorial_scope(),
        "content_date": _day(statement.content_created_at or statement.created_at),
        "application_date": _day(statement.created_at),
        "decision_facts": _limited("decision_facts", facts),
        "source_type": "SOURCE_VOLUNTARY",
        # Every image is scored by the classifier, including those a person rejected.
        "automated_detection": "Yes" if statement.model_name else "No",
        "automated_decision": (
            "AUTOMATED_DECISION_FULLY"
            if statement.automated
            else "AUTOMATED_DECISION_NOT_AUTOMATED"
        ),
    }


def _limited(name: str, text: str) -> str:
    return shorten(str(text), LIMITS[name])


def _keywords() -> dict[str, Any]:
    # An empty list or text is left out: the database reads "none" from absence.
    keywords = list(conf.STATEMENT_KEYWORDS)
    fields: dict[str, Any] = {"category_specification": keywords} if keywords else {}
    if "KEYWORD_OTHER" in keywords and conf.STATEMENT_KEYWORD_OTHER:
        other = _limited("category_specification_other", conf.STATEMENT_KEYWORD_OTHER)
        fields["category_specification_other"] = other
    return fields


def _day(moment: datetime) -> str:
    return timezone.localtime(moment, UTC).strftime("%Y-%m-%d")


def batches(statements: Iterable[Statement], size: int = MAX_BATCH) -> Iterator[list[Statement]]:
    """``statements`` in lists of at most ``size`` (the bulk endpoint's limit)."""
    batch: list[Statement] = []
    for statement in statements:
        batch.append(statement)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def bodies(statements: Iterable[Statement]) -> Iterator[dict[str, Any]]:
    """The bulk endpoint's request bodies for ``statements``: ``{"statements": [≤ 100]}``."""
    for batch in batches(statements):
        yield {"statements": [record(statement) for statement in batch]}


# --- Submission ---------------------------------------------------------------------


class SubmissionError(Exception):
    """The database refused a call for a reason a retry cannot mend, or never answered."""


@dataclass(frozen=True)
class Answer:
    """One HTTP answer of the bulk endpoint."""

    status: int
    body: Mapping[str, Any]
    retry_after: float | None = None

    @property
    def transient(self) -> bool:
        """A busy or failing server: worth another try later."""
        return self.status == 429 or self.status >= 500

    def summary(self) -> str:
        message = self.body.get("message") or self.body.get("errors") or ""
        return f"HTTP {self.status}: {message}"[:1000]


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    # A redirect (e.g. to a login page) must not turn the POST into a GET elsewhere.
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class Client:
    """POSTs bodies to the bulk endpoint with the API token (which it never logs)."""

    def __init__(self, url: str, token: str, timeout: float) -> None:
        self.url = url.rstrip("/") + "/statements"
        self._token = token
        self.timeout = timeout
        self._opener = urllib.request.build_opener(_NoRedirects)

    @classmethod
    def from_settings(cls) -> Client:
        token = conf.TRANSPARENCY_API_TOKEN
        if not token:
            raise SubmissionError(
                "No API token: set NSFW_MODERATION['TRANSPARENCY_API_TOKEN'] or the "
                "DSA_TRANSPARENCY_API_TOKEN environment variable."
            )
        return cls(conf.TRANSPARENCY_API_URL, token, conf.TRANSPARENCY_TIMEOUT)

    def post(self, body: Mapping[str, Any]) -> Answer:
        """One call; raises ``OSError`` or ``HTTPException`` when no answer came."""
        request = urllib.request.Request(
            self.url,
            data=json.dumps(body, ensure_ascii=False).encode("utf-8"),
            method="POST",
            headers={
                "Authorization": f"Bearer {self._token}",
                "Accept": "application/json",
                "Content-Type": "application/json",
            },
        )
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                return Answer(response.status, _json(response.read()))
        except urllib.error.HTTPError as error:
            with error:
                content = error.read()
            return Answer(error.code, _json(content), _seconds(error.headers.get("Retry-After")))

    def __repr__(self) -> str:
        return f"Client({self.url!r})"


def _json(content: bytes) -> Mapping[str, Any]:
    try:
        parsed = json.loads(content)
    except ValueError:
        return {"message": content[:200].decode("utf-8", "replace")}
    return parsed if isinstance(parsed, Mapping) else {"message": str(parsed)[:200]}


def _seconds(retry_after: str | None) -> float | None:
    """A ``Retry-After`` header (seconds, or an HTTP date) as seconds from now."""
    if not retry_after:
        return None
    if retry_after.strip().isdecimal():
        return float(retry_after)
    try:
        when = email.utils.parsedate_to_datetime(retry_after)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


@dataclass
class Outcome:
    """What one :func:`submit` run did."""

    accepted: int = 0
    already_there: int = 0
    refused: dict[str, str] = field(default_factory=dict)
    calls: int = 0


@dataclass(frozen=True)
class Retrying:
    """How often, and how patiently, a call that met a busy server or no answer is retried."""

    retries: int = 5
    backoff: float = 2.0
    max_delay: float = 300.0
    sleep: Callable[[float], None] = time.sleep

    def delay(self, attempt: int, answer: Answer | None) -> float:
        # The server's Retry-After wins; else exponential: backoff, 2 x backoff, 4 x backoff ...
        if answer is not None and answer.retry_after is not None:
            return min(answer.retry_after, self.max_delay)
        return min(self.backoff * 2**attempt, self.max_delay)


def waiting() -> QuerySet[Statement]:
    """Statements the database has not accepted yet, oldest first."""
    return Statement.objects.exclude(submission__accepted_at__isnull=False).order_by("pk")


def submit(client: Client | None = None, retrying: Retrying | None = None) -> Outcome:
    """Send every statement not yet accepted, in calls of at most :data:`MAX_BATCH`.

    Raises :class:`SubmissionError` when a call fails for good (bad token, the
    server still failing after the retries): what was accepted before stays
    recorded, and a later run goes on from there.
    """
    client = client or Client.from_settings()
    retrying = retrying or Retrying()
    outcome = Outcome()
    last = 0
    with one_submission_at_a_time():
        while batch := list(waiting().filter(pk__gt=last)[:MAX_BATCH]):
            last = batch[-1].pk
            _submit_batch(client, retrying, batch, outcome)
    return outcome


#: The PostgreSQL advisory lock that one submission holds (any number, the app's own).
SUBMISSION_LOCK = 0x6E73_6677_5344_4201


@contextmanager
def one_submission_at_a_time() -> Iterator[None]:
    """Hold the moderation database's submission lock, or raise :class:`SubmissionError`.

    Two runs at once (cron overlapping a slow one) would send the same
    batches, and the database's puid check is no lock: both could be stored.
    PostgreSQL: a session advisory lock; SQLite: a lock on a file beside the
    database; other databases: none.
    """
    connection = connections[moderation_db()]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [SUBMISSION_LOCK])
            if not cursor.fetchone()[0]:
                raise SubmissionError(BUSY)
        try:
            yield
        finally:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [SUBMISSION_LOCK])
    elif connection.vendor == "sqlite":
        with open(f"{connection.settings_dict['NAME']}.nsfw-submit.lock", "a") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise SubmissionError(BUSY) from None
            yield
    else:
        yield


BUSY = "Another submission to the Transparency Database is running: try again later."


def _submit_batch(
    client: Client, retrying: Retrying, batch: list[Statement], outcome: Outcome
) -> None:
    # Each pass sends what is left: nothing is stored unless the whole call is accepted.
    left = {str(statement.public_id): statement for statement in batch}
    _submissions(batch)
    while left:
        answer = _call(client, retrying, list(left.values()), outcome)
        if answer.status == 201:
            outcome.accepted += _accept(left, answer.body.get("statements"))
            return
        if answer.status != 422 or not _sort_out(answer.body, left, outcome):
            _fail(left.values(), answer.summary())
            raise SubmissionError(f"The Transparency Database refused a call: {answer.summary()}")


def _call(
    client: Client, retrying: Retrying, statements: list[Statement], outcome: Outcome
) -> Answer:
    body = {"statements": [record(statement) for statement in statements]}
    for attempt in range(retrying.retries + 1):
        _count_attempt(statements)
        outcome.calls += 1
        answer, problem = _try(client, body)
        if answer is not None and not answer.transient:
            return answer
        if attempt == retrying.retries:
            break
        delay = retrying.delay(attempt, answer)
        if answer is None:
            # No answer: the server may still be storing the call. Sent again
            # before it is done, the batch would pass its puid check twice.
            delay = max(delay, client.timeout)
        logger.warning("Transparency Database call failed (%s); retrying in %.1f s", problem, delay)
        retrying.sleep(delay)
    _fail(statements, problem)
    raise SubmissionError(f"Gave up after {retrying.retries + 1} tries: {problem}")


def _try(client: Client, body: Mapping[str, Any]) -> tuple[Answer | None, str]:
    """The answer to one call, or ``None`` when none came; and what went wrong, if anything."""
    try:
        answer = client.post(body)
    except (OSError, HTTPException) as exc:  # refused, reset, timed out: a retry may do
        return None, f"no answer: {type(exc).__name__}: {exc}"
    return answer, answer.summary() if answer.transient else ""


def _sort_out(body: Mapping[str, Any], left: dict[str, Statement], outcome: Outcome) -> bool:
    """Take out of ``left`` what a 422 answer named; whether it named anything."""
    errors = body.get("errors")
    if not isinstance(errors, Mapping):
        return False
    puids = list(left)
    # A puid the database already holds (from an earlier call whose answer was lost).
    existing = [puid for puid in errors.get("existing_puids") or () if puid in left]
    if existing:
        outcome.already_there += _accept({puid: left.pop(puid) for puid in existing}, None)
    refused = {
        puids[int(key.removeprefix("statement_"))]: problems
        for key, problems in errors.items()
        if key.startswith("statement_")
        and key.removeprefix("statement_").isdigit()
        and int(key.removeprefix("statement_")) < len(puids)
    }
    for puid, problems in refused.items():
        statement = left.pop(puid, None)
        if statement is not None:
            outcome.refused[puid] = json.dumps(problems, ensure_ascii=False)[:1000]
            _fail([statement], outcome.refused[puid])
    return bool(existing or refused)


def _submissions(batch: Sequence[Statement]) -> None:
    # One submission row per statement, created before the first call that carries it.
    TransparencySubmission.objects.bulk_create(
        [TransparencySubmission(statement=statement) for statement in batch],
        ignore_conflicts=True,
    )


def _count_attempt(statements: Sequence[Statement]) -> None:
    TransparencySubmission.objects.filter(statement__in=statements).update(
        attempts=F("attempts") + 1
    )


def _accept(accepted: Mapping[str, Statement], created: Any) -> int:
    """Record ``accepted`` as in the database, with the ids its answer gave (if any)."""
    ids = {
        item.get("puid"): str(item.get("uuid") or item.get("id") or "")[:64]
        for item in created or ()
        if isinstance(item, Mapping)
    }
    now = timezone.now()
    with write_transaction():
        for puid, statement in accepted.items():
            TransparencySubmission.objects.filter(statement=statement).update(
                accepted_at=now, database_id=ids.get(puid, ""), error=""
            )
    return len(accepted)


def _fail(statements: Iterable[Statement], error: str) -> None:
    TransparencySubmission.objects.filter(statement__in=list(statements)).update(error=error)
