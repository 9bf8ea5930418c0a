"""The REST framework integration, through DRF's own APIClient and a host's API (tests/api.py)."""

from __future__ import annotations

import base64
import importlib
import json
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from nsfw_moderation import review
from nsfw_moderation.models import Appeal, ModeratedImage, ModerationEvent, Statement, Verdict
from tests.conftest import moderation
from tests.testapp.models import Photo, Profile

pytest.importorskip("rest_framework")
pytest.importorskip("drf_spectacular")

from rest_framework.test import APIClient

pytest_plugins = ["tests.admin_fixtures"]
pytestmark = pytest.mark.urls("tests.api_urls")  # the host's API, mounted at /api/

PASSWORD = "correct horse battery staple"
API = "/api/moderation"
#: What the moderators write for each other: it must never reach the owner.
INTERNAL = "INTERNAL-colleagues-only"


@pytest.fixture(autouse=True)
def owners() -> Iterator[None]:
    with moderation(OWNER="tests.owners.owner_of"):
        yield


@pytest.fixture
def owner(db: None) -> User:
    return User.objects.create_user("alice", email="alice@example.com", password=PASSWORD)


@pytest.fixture
def stranger(db: None) -> User:
    return User.objects.create_user("mallory", password=PASSWORD)


def client_for(user: User | None, **kwargs: Any) -> APIClient:
    client = APIClient(**kwargs)
    if user is not None:
        client.force_login(user)
    return client


def rows_for(photos: list[Photo], verdicts: list[str | None]) -> None:
    """Rows as the worker would leave them: ``None`` is a photo no worker has seen yet."""
    ct = ContentType.objects.get_for_model(Photo)
    ModeratedImage.objects.bulk_create(
        ModeratedImage(
            content_type=ct,
            object_id=str(photo.pk),
            field_name="image",
            file_name=photo.image.name,
            status="done",
            verdict=verdict,
        )
        for photo, verdict in zip(photos, verdicts, strict=True)
        if verdict is not None
    )


def photos_with(verdicts: list[str | None]) -> list[Photo]:
    # bulk_create: no save signal, so no worker; the rows are written by rows_for().
    photos = Photo.objects.bulk_create(
        Photo(title=f"p{i}", image=f"photos/p{i}.png") for i in range(len(verdicts))
    )
    rows_for(photos, verdicts)
    return photos


def images(response: Any) -> dict[str, Any]:
    data = response.json()
    items = data["results"] if isinstance(data, dict) else data
    return {item["title"]: item["image"] for item in items}


# --- The serializer field and the filter ---------------------------------------------

MIXED = [
    Verdict.ALLOWED,
    Verdict.APPROVED,
    Verdict.PENDING,
    Verdict.FLAGGED,
    Verdict.BLOCKED,
    Verdict.REJECTED,
    None,
]


@pytest.mark.django_db
def test_hidden_images_are_null_and_visible_ones_are_urls():
    photos_with(MIXED)
    # A row for the file p0 held before does not make its new file visible.
    Photo.objects.filter(title="p0").update(image="photos/replaced.png")
    Photo.objects.create(title="empty")  # nothing to moderate: no URL either, as DRF does
    shown = images(APIClient().get("/api/photos/"))
    assert shown == {
        "p0": None,
        "p1": "http://testserver/media/photos/p1.png",
        "p2": None,
        "p3": None,
        "p4": None,
        "p5": None,
        "p6": None,
        "empty": None,
    }


@pytest.mark.django_db
def test_pending_images_show_where_the_site_shows_them():
    photos_with([Verdict.PENDING, Verdict.FLAGGED])
    with moderation(OWNER="tests.owners.owner_of", SHOW_PENDING=True):
        shown = images(APIClient().get("/api/photos/"))
    assert shown == {"p0": "http://testserver/media/photos/p0.png", "p1": None}


@pytest.mark.django_db
def test_a_placeholder_instead_of_null():
    ct = ContentType.objects.get_for_model(Profile)
    profile = Profile.objects.create(name="bob")
    Profile.objects.filter(pk=profile.pk).update(avatar="avatars/a.png", banner="banners/b.png")
    for field, verdict, name in (
        ("avatar", Verdict.BLOCKED, "avatars/a.png"),
        ("banner", Verdict.ALLOWED, "banners/b.png"),
    ):
        ModeratedImage.objects.filter(
            content_type=ct, object_id=str(profile.pk), field_name=field
        ).delete()
        ModeratedImage.objects.create(
            content_type=ct,
            object_id=str(profile.pk),
            field_name=field,
            file_name=name,
            status="done",
            verdict=verdict,
        )
    [item] = APIClient().get("/api/profiles/").json()
    assert (item["avatar"], item["banner"]) == (
        "/static/hidden.png",
        "http://testserver/media/banners/b.png",
    )


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("colour_backend")
def test_an_upload_through_the_field_reads_back_by_its_verdict():
    from django.core.files.base import ContentFile

    from tests.images import blue, red

    answers = {
        name: APIClient().post("/api/upload/", {"title": name, "image": content}).json()
        for name, content in (("blue", blue()), ("red", red()))
    }
    # The sync queue classified each upload as it was saved: red is unsafe to the backend.
    assert answers["blue"]["image"].startswith("http://testserver/media/photos/blue")
    assert answers["red"]["image"] is None
    refused = APIClient().post(
        "/api/upload/", {"title": "x", "image": ContentFile(b"text", "x.png")}
    )
    assert (refused.status_code, list(refused.json())) == (400, ["image"])


@pytest.mark.django_db
def test_one_object_costs_one_query_for_its_verdict(django_assert_num_queries):
    from tests.api import PhotoSerializer

    [shown, hidden] = photos_with([Verdict.APPROVED, Verdict.BLOCKED])
    with django_assert_num_queries(2):
        assert PhotoSerializer(shown).data["image"] == "/media/photos/p0.png"
        assert PhotoSerializer(hidden).data["image"] is None


def queries_for(url: str) -> int:
    client = APIClient()
    client.get(url)  # content types and the like, cached once per process
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("url", "queries"),
    [
        ("/api/photos/", 2),  # the photos, their verdicts
        ("/api/photos/?limit=100", 3),  # the count, the page, its verdicts
        ("/api/visible-photos/?limit=100", 2),  # the count, the page with its verdicts
    ],
)
def test_a_list_costs_the_same_queries_for_5_objects_or_50(url, queries):
    photos = photos_with(MIXED[:5])
    assert queries_for(url) == queries
    photos += photos_with([Verdict.ALLOWED, Verdict.FLAGGED] * 20 + MIXED[:5])
    assert Photo.objects.count() == 50
    assert queries_for(url) == queries


@pytest.mark.django_db
def test_the_filter_lists_visible_objects_only():
    photos_with(MIXED)
    response = APIClient().get("/api/visible-photos/?limit=100")
    assert response.json()["count"] == 2
    assert images(response) == {
        "p0": "http://testserver/media/photos/p0.png",
        "p1": "http://testserver/media/photos/p1.png",
    }


# --- The owner's endpoints -----------------------------------------------------------


def rejected(reviewer: User, title: str = "alice") -> Statement:
    """A photo of ``title``'s that ``reviewer`` rejected, with both kinds of note."""
    from tests.admin_fixtures import create_row

    photo = Photo.objects.bulk_create([Photo(title=title, image="photos/picture.png")])[0]
    row = create_row(photo, sha256="a" * 64, pdq="0f" * 32, pdq_quality=100)
    review.reject(row, user=reviewer, note=INTERNAL, user_note="nudity")
    return Statement.objects.get(image=row)


def status_url(photo_pk: Any) -> str:
    return f"{API}/status/testapp.photo/{photo_pk}/"


@pytest.mark.django_db
def test_the_owner_polls_reads_and_appeals(owner, reviewer):
    statement = rejected(reviewer)
    client = client_for(owner)

    status = client.get(status_url(statement.object_id))
    assert status.status_code == 200
    assert status.json() == {
        "model": "testapp.photo",
        "pk": statement.object_id,
        "files": [
            {
                "field": "image",
                "state": "removed",
                "state_display": "Removed",
                "visible": False,
                "verdict": "rejected",
                "verdict_display": "Rejected",
                "statement": str(statement.public_id),
            }
        ],
    }
    assert "no-store" in status["Cache-Control"]

    listed = client.get(f"{API}/statements/").json()
    assert [s["public_id"] for s in listed["results"]] == [str(statement.public_id)]

    read = client.get(f"{API}/statements/{statement.public_id}/").json()
    assert "nudity" in read["reasons"]
    assert (read["verdict"], read["appealable"], read["appeal"]) == ("rejected", True, None)
    assert (read["state"], read["state_display"]) == ("rejected", "Removed by a moderator")

    appealed = client.post(f"{API}/statements/{statement.public_id}/appeal/", {"text": "Art."})
    assert appealed.status_code == 201
    assert appealed.json()["text"] == "Art."
    appeal = Appeal.objects.get()
    assert (appeal.statement, appeal.owner, appeal.text) == (statement, owner, "Art.")
    event = ModerationEvent.objects.get(kind=ModerationEvent.Kind.APPEALED)
    assert (event.actor, event.note) == (owner, "Art.")

    again = client.post(f"{API}/statements/{statement.public_id}/appeal/", {"text": "Again"})
    assert again.status_code == 409
    assert again.json()["detail"] == "This decision can no longer be appealed."
    assert Appeal.objects.count() == 1
    read = client.get(f"{API}/statements/{statement.public_id}/").json()
    assert (read["appealable"], read["appeal"]["text"]) == (False, "Art.")
    assert (read["state"], read["state_display"]) == ("appeal_pending", "Appeal pending")
    listed = client.get(f"{API}/statements/").json()  # the same words as the owner's pages
    assert listed["results"][0]["state"] == "appeal_pending"


@pytest.mark.django_db
def test_the_status_follows_the_verdict(owner, reviewer):
    from tests.admin_fixtures import create_row

    photo = Photo.objects.bulk_create([Photo(title="alice", image="photos/new.png")])[0]
    url = status_url(photo.pk)
    [before] = client_for(owner).get(url).json()["files"]
    assert (before["state"], before["verdict"], before["visible"]) == ("pending", None, False)
    row = create_row(photo, verdict=Verdict.FLAGGED, file_name="photos/new.png")
    [flagged] = client_for(owner).get(url).json()["files"]
    assert (flagged["state"], flagged["visible"], flagged["statement"]) == (
        "in_review",
        False,
        None,
    )
    review.approve(row, user=reviewer)
    [approved] = client_for(owner).get(url).json()["files"]
    assert (approved["state"], approved["visible"]) == ("approved", True)
    assert "score" not in json.dumps(approved)


@pytest.mark.django_db
def test_nobody_else_gets_anything(owner, stranger, reviewer):
    statement = rejected(reviewer)
    for user in (stranger, reviewer):
        client = client_for(user)
        assert client.get(status_url(statement.object_id)).status_code == 404
        assert client.get(f"{API}/statements/{statement.public_id}/").status_code == 404
        posted = client.post(f"{API}/statements/{statement.public_id}/appeal/", {"text": "mine"})
        assert posted.status_code == 404
        assert client.get(f"{API}/statements/").json()["results"] == []
    assert Appeal.objects.count() == 0
    anonymous = APIClient().get(f"{API}/statements/{statement.public_id}/")
    assert anonymous.status_code == 403  # SessionAuthentication first: no challenge, a 403
    for url in (
        status_url(987654),
        f"{API}/status/testapp.photo/not-a-number/",
        f"{API}/status/auth.user/{owner.pk}/",  # not moderated
        f"{API}/status/no.such/1/",
    ):
        assert client_for(owner).get(url).status_code == 404, url


@pytest.mark.django_db
def test_without_owner_nobody_owns_anything(owner, reviewer):
    statement = rejected(reviewer)
    with moderation(OWNER=None):
        assert client_for(owner).get(status_url(statement.object_id)).status_code == 404


@pytest.mark.django_db
def test_an_appeal_over_a_session_needs_the_csrf_token(owner, reviewer):
    statement = rejected(reviewer)
    client = client_for(owner, enforce_csrf_checks=True)
    url = f"{API}/statements/{statement.public_id}/appeal/"
    refused = client.post(url, {"text": "forged"})
    assert refused.status_code == 403
    assert "CSRF" in refused.json()["detail"]
    assert Appeal.objects.count() == 0
    # The HTML page of the statement sets the token's cookie, as a browser would see it.
    client.get(f"/moderation/decisions/{statement.public_id}/")
    token = client.cookies["csrftoken"].value
    assert client.post(url, {"text": "mine"}, HTTP_X_CSRFTOKEN=token).status_code == 201
    assert Appeal.objects.count() == 1


@pytest.mark.django_db
def test_basic_auth_needs_no_csrf_token(owner, reviewer):
    statement = rejected(reviewer)
    client = APIClient(enforce_csrf_checks=True)
    credentials = base64.b64encode(f"alice:{PASSWORD}".encode()).decode()
    client.credentials(HTTP_AUTHORIZATION=f"Basic {credentials}")
    url = f"{API}/statements/{statement.public_id}/appeal/"
    assert client.post(url, {"text": "mine"}).status_code == 201
    wrong = base64.b64encode(b"alice:wrong").decode()
    client.credentials(HTTP_AUTHORIZATION=f"Basic {wrong}")
    # Refused; a 403 rather than a 401 as SessionAuthentication, first, has no challenge.
    assert client.get(f"{API}/statements/").status_code == 403


@pytest.mark.django_db
def test_appeals_are_rate_limited_with_a_429(owner, reviewer):
    statements = [rejected(reviewer) for _ in range(3)]
    client = client_for(owner)
    with moderation(OWNER="tests.owners.owner_of", APPEALS_PER_HOUR=2):
        answers = [
            client.post(f"{API}/statements/{s.public_id}/appeal/", {"text": "please"})
            for s in statements
        ]
    assert [a.status_code for a in answers] == [201, 201, 429]
    assert answers[2].json()["detail"] == "You have sent too many appeals. Try again in an hour."
    assert Appeal.objects.count() == 2


@pytest.mark.django_db
def test_an_appeal_is_short_and_not_empty(owner, reviewer):
    statement = rejected(reviewer)
    url = f"{API}/statements/{statement.public_id}/appeal/"
    client = client_for(owner)
    assert client.post(url, {"text": ""}).status_code == 400
    assert client.post(url, {"text": "x" * 2001}).status_code == 400
    assert Appeal.objects.count() == 0


@pytest.mark.django_db
def test_no_internal_note_in_any_response(owner, reviewer, second_reviewer):
    statement = rejected(reviewer)
    client = client_for(owner)
    url = f"{API}/statements/{statement.public_id}/"
    answers = [client.post(f"{url}appeal/", {"text": "please"})]
    review.decide_appeal(
        Appeal.objects.get(), user=second_reviewer, upheld=False, note=INTERNAL, user_note="Sorry."
    )
    answers += [
        client.get(url),
        client.get(f"{API}/statements/"),
        client.get(status_url(statement.object_id)),
    ]
    assert answers[1].json()["appeal"]["outcome"]["user_note"] == "Sorry."
    for answer in answers:
        assert answer.status_code in (200, 201)
        assert INTERNAL not in answer.content.decode()
        assert "reviewer" not in answer.content.decode()  # nor who decided


@pytest.fixture
def second_reviewer(make_user: Any) -> User:
    return make_user("second", "nsfw_moderation.review_moderatedimage")


# --- The schema, the checks, the packaging ---------------------------------------------


@pytest.mark.django_db
def test_the_schema_describes_the_endpoints_and_validates(tmp_path):
    from drf_spectacular.generators import SchemaGenerator
    from drf_spectacular.validation import validate_schema

    schema = SchemaGenerator().get_schema(request=None, public=True)
    validate_schema(schema)
    paths = schema["paths"]
    assert set(paths[f"{API}/statements/{{public_id}}/appeal/"]["post"]["responses"]) == {
        "201",
        "400",
        "404",
        "409",
        "429",
    }
    assert "get" in paths[f"{API}/statements/"]
    assert "get" in paths[f"{API}/statements/{{public_id}}/"]
    assert "get" in paths[f"{API}/status/{{model}}/{{object_id}}/"]
    image = schema["components"]["schemas"]["Photo"]["properties"]["image"]
    assert (image["format"], image["nullable"]) == ("uri", True)
    statement = json.dumps(schema["components"]["schemas"]["Statement"])
    assert '"note"' not in statement
    # The command a site runs in CI fails on any warning about our views.
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "s.yml"))


@pytest.mark.django_db(databases="__all__")  # some checks read the databases
def test_the_check_warns_without_owner():
    from django.core.checks import run_checks

    def ids() -> list[str]:
        return [m.id for m in run_checks() if m.id and m.id.startswith("nsfw_moderation_rest")]

    assert ids() == []
    with moderation(OWNER=None):
        assert ids() == ["nsfw_moderation_rest_framework.W001"]
        with override_settings(ROOT_URLCONF="tests.urls"):  # a site using the fields only
            assert ids() == []


def test_without_drf_the_import_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "rest_framework", None)  # as if not installed
    for name in [n for n in sys.modules if n.startswith("nsfw_moderation.contrib.rest_framework")]:
        monkeypatch.delitem(sys.modules, name)
    with pytest.raises(ImproperlyConfigured, match=r"nsfw-moderation\[drf\]"):
        importlib.import_module("nsfw_moderation.contrib.rest_framework.fields")
