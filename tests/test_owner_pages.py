"""The uploader's pages: each decision named and thumbnailed, where it stands now, the layout.

Rendered by real Django views through the test client; the thumbnail is the
worker's stored preview, served to the owner only.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import AnonymousUser, User
from django.template import Context, Template
from django.test import Client, RequestFactory
from PIL import Image

from nsfw_moderation import notices, review
from nsfw_moderation.appeals import file_appeal
from nsfw_moderation.models import ModeratedImage, Preview, Statement
from tests.conftest import moderation
from tests.testapp.models import Photo

pytest_plugins = ["tests.admin_fixtures"]
pytestmark = pytest.mark.django_db

LIST = "/moderation/decisions/"


@pytest.fixture(autouse=True)
def owners() -> Iterator[None]:
    with moderation(OWNER="tests.owners.owner_of"):
        yield


@pytest.fixture
def owner() -> User:
    return User.objects.create_user("alice")


@pytest.fixture
def second_reviewer(make_user: Any) -> User:
    return make_user("second", "nsfw_moderation.review_moderatedimage")


def tiny_jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 6), (200, 40, 40)).save(buffer, format="JPEG")
    return buffer.getvalue()


def rejected(reviewer: User, title: str = "alice") -> tuple[Photo, Statement]:
    """``title``'s photo with a stored preview, rejected by ``reviewer``, and its statement."""
    from tests.admin_fixtures import create_row

    photo = Photo.objects.create(title=title)
    row = create_row(photo, sha256="a" * 64)
    Preview.objects.create(image=row, file_name=row.file_name, sha256=row.sha256, jpeg=tiny_jpeg())
    review.reject(row, user=reviewer, note="internal: case 12", user_note="nudity")
    return photo, Statement.objects.get(image=row)


def client_for(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def preview_path(statement: Statement) -> str:
    return f"/moderation/decisions/{statement.public_id}/preview/"


def states(user: User) -> list[str]:
    html = client_for(user).get(LIST).text
    return [line.strip() for line in html.splitlines() if 'class="nsfw-state' in line]


def test_the_list_names_each_object_with_its_thumbnail(owner, reviewer):
    _, statement = rejected(reviewer)
    html = client_for(owner).get(LIST).text
    assert f'<a href="/moderation/decisions/{statement.public_id}/">alice</a>' in html
    assert f'src="{preview_path(statement)}"' in html
    assert "The image of the photo “alice”" in html
    assert "case 12" not in html  # the internal note stays with the moderators


def test_the_list_shows_where_each_decision_stands_now(owner, reviewer, second_reviewer):
    _, statement = rejected(reviewer)
    assert states(owner) == [
        '<span class="nsfw-state nsfw-state-rejected">Removed by a moderator</span>'
    ]
    appeal = file_appeal(statement, owner, "It is a painting.")
    assert "Appeal pending" in states(owner)[0]
    review.decide_appeal(appeal, user=second_reviewer, upheld=True)
    assert "Restored after appeal" in states(owner)[0]


def test_an_appeal_not_upheld_reads_as_the_removal_upheld(owner, reviewer, second_reviewer):
    _, statement = rejected(reviewer)
    review.decide_appeal(
        file_appeal(statement, owner, "please"), user=second_reviewer, upheld=False
    )
    assert "Removal upheld after appeal" in states(owner)[0]
    assert notices.owner_state(statement).code == "upheld_after_appeal"


def test_an_object_that_is_gone_is_still_named_in_words(owner, reviewer):
    photo, statement = rejected(reviewer)
    ModeratedImage.objects.all().delete()
    photo.delete()
    html = client_for(owner).get(LIST).text
    assert "A photo that is no longer on the site" in html
    assert "No longer on the site" in html
    page = client_for(owner).get(f"/moderation/decisions/{statement.public_id}/").text
    assert "The image of a photo that is no longer on the site" in page


def test_the_statement_says_what_the_object_is_in_words(owner, reviewer):
    _, statement = rejected(reviewer)
    response = client_for(owner).get(f"/moderation/decisions/{statement.public_id}/")
    assert "<dd>The image of the photo “alice”</dd>" in response.text
    assert "photo 1, image" not in response.text
    assert "case 12" not in response.text


def test_only_the_owner_gets_the_stored_preview(owner, reviewer):
    _, statement = rejected(reviewer)
    response = client_for(owner).get(preview_path(statement))
    assert (response.status_code, response["Content-Type"]) == (200, "image/jpeg")
    assert response["X-Moderation-Preview"] == "image"
    assert response.content == tiny_jpeg()
    assert "no-store" in response["Cache-Control"]
    stranger = User.objects.create_user("mallory")
    assert client_for(stranger).get(preview_path(statement)).status_code == 404
    assert client_for(reviewer).get(preview_path(statement)).status_code == 404
    assert Client().get(preview_path(statement)).status_code == 302  # to the login page


def test_the_preview_of_replaced_bytes_is_a_placeholder(owner, reviewer):
    _, statement = rejected(reviewer)
    Preview.objects.update(sha256="b" * 64)  # the row holds (and shows) other bytes now
    response = client_for(owner).get(preview_path(statement))
    assert response["X-Moderation-Preview"] == "placeholder"


def test_the_preview_of_a_hash_bank_match_is_a_placeholder(owner, reviewer):
    # Known material is never shown again, not even blurred, not even to its uploader.
    from nsfw_moderation.models import BankEntry, HashBank, ModeratedImage

    _, statement = rejected(reviewer)
    bank = HashBank.objects.create(name="Tips re: case 12", action=HashBank.Action.FLAG)
    entry = BankEntry.objects.create(bank=bank, pdq="0f" * 32, quality=100)
    ModeratedImage.objects.filter(pk=statement.image_id).update(bank_entry=entry)
    response = client_for(owner).get(preview_path(statement))
    assert response["X-Moderation-Preview"] == "placeholder"


def test_the_pages_extend_the_one_layout_with_a_way_back(owner, reviewer, settings):
    _, statement = rejected(reviewer)
    for path in (LIST, f"/moderation/decisions/{statement.public_id}/"):
        response = client_for(owner).get(path)
        names = [t.name for t in response.templates]
        assert "nsfw_moderation/layouts/base.html" in names
        assert '<a href="/"><span aria-hidden="true">←</span> Back to the site</a>' in response.text
    settings.LOGIN_REDIRECT_URL = "/gallery/"
    assert '<a href="/gallery/">' in client_for(owner).get(LIST).text


def test_a_site_overrides_the_layout_in_one_place(owner, reviewer, settings, tmp_path):
    _, statement = rejected(reviewer)
    layouts = tmp_path / "nsfw_moderation" / "layouts"
    layouts.mkdir(parents=True)
    (layouts / "base.html").write_text(
        "<body class=site>SITE MENU {% block content %}{% endblock %}</body>"
    )
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [str(tmp_path)]}]
    for path in (LIST, f"/moderation/decisions/{statement.public_id}/"):
        html = client_for(owner).get(path).text
        assert html.startswith("<body class=site>SITE MENU")
        assert "alice" in html


def render_link(photo: Photo, user: Any) -> str:
    request = RequestFactory().get("/")
    request.user = user
    template = Template(
        '{% load nsfw_moderation %}{% moderation_decision_url photo "image" as why %}[{{ why }}]'
    )
    return template.render(Context({"photo": photo, "request": request}))


def test_the_why_link_is_for_the_owner_only(owner, reviewer):
    photo, statement = rejected(reviewer)
    assert render_link(photo, owner) == f"[/moderation/decisions/{statement.public_id}/]"
    assert render_link(photo, User.objects.create_user("mallory")) == "[]"
    assert render_link(photo, reviewer) == "[]"
    assert render_link(photo, AnonymousUser()) == "[]"
    assert render_link(Photo.objects.create(title="alice"), owner) == "[]"  # no decision


def test_a_statement_followed_by_a_later_decision_says_so(owner, reviewer):
    from tests.admin_fixtures import create_row

    with moderation(NOTIFY_FLAGGED=True):
        row = create_row(Photo.objects.create(title="alice"), sha256="a" * 64)
        flagged = notices.issue(row, automated=True)
        assert notices.owner_state(flagged).code == "flagged"
        review.reject(row, user=reviewer)
    flagged = Statement.objects.get(pk=flagged.pk)
    assert notices.owner_state(flagged) == notices.OwnerState(
        "superseded", "Followed by a later decision"
    )
    assert [s.code for s in map(notices.owner_state, Statement.objects.all())] == [
        "rejected",
        "superseded",
    ]
