"""A withheld Wagtail image is not rendered, served or given out by the API; badges say why."""

from __future__ import annotations

from typing import Any

import pytest
from django.core import checks
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from wagtail.images.api.fields import ImageRenditionField
from wagtail.images.views.serve import generate_image_url

from nsfw_moderation import review
from nsfw_moderation.models import ModeratedImage, Verdict
from tests.conftest import moderation

pytestmark = pytest.mark.django_db


def row_of(image: Any) -> ModeratedImage:
    return ModeratedImage.objects.of_object(image, "file").get()


def serve(client: Client, image: Any) -> Any:
    return client.get(generate_image_url(image, "width-40"))


def test_an_allowed_image_is_served(client: Client, make_image: Any) -> None:
    image = make_image("blue")
    assert row_of(image).verdict == Verdict.ALLOWED
    response = serve(client, image)
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"


@pytest.mark.parametrize(
    ("changes", "verdict"), [({}, Verdict.FLAGGED), ({"BLOCK_THRESHOLD": 0.9}, Verdict.BLOCKED)]
)
def test_a_flagged_or_blocked_image_is_not_served(
    client: Client, make_image: Any, changes: dict[str, Any], verdict: str
) -> None:
    with moderation(**changes):
        image = make_image("red")
    assert row_of(image).verdict == verdict
    response = serve(client, image)
    assert response.status_code == 404
    # Raised, not returned: no public Cache-Control from Wagtail's view.
    assert "public" not in response.get("Cache-Control", "")
    assert not image.renditions.exists()


def test_a_pending_image_follows_show_pending(client: Client, make_image: Any) -> None:
    image = make_image("blue", classify=False)
    assert row_of(image).verdict == Verdict.PENDING
    assert serve(client, image).status_code == 404
    with moderation(SHOW_PENDING=True):
        assert serve(client, image).status_code == 200


def test_a_bad_signature_stays_forbidden(client: Client, make_image: Any) -> None:
    image = make_image("red")
    url = generate_image_url(image, "width-40").replace("/images/", "/images/bad", 1)
    assert client.get(url).status_code == 403


def test_the_image_tag_renders_wagtails_not_found_image(
    client: Client, make_image: Any, home: Any
) -> None:
    from tests.wagtailapp.models import ArticlePage

    red, blue = make_image("red"), make_image("blue")
    page = home.add_child(instance=ArticlePage(title="Red", slug="red", cover=red))
    other = home.add_child(instance=ArticlePage(title="Blue", slug="blue", cover=blue))
    shown = client.get(page.url).content.decode()
    assert 'src="/media/not-found"' in shown
    assert "red" not in shown.split('id="cover"')[1].split("</div>")[0].replace(
        "not-found", ""
    ).lower().replace('alt="red"', "")
    assert not red.renditions.exists()
    assert "/media/images/blue" in client.get(other.url).content.decode()


def test_the_api_gives_null_for_a_withheld_image(make_image: Any) -> None:
    field = ImageRenditionField("width-40")
    assert field.to_representation(make_image("red")) is None
    assert field.to_representation(make_image("blue"))["width"] == 40


def test_the_api_gives_no_download_url_for_a_withheld_image(make_image: Any) -> None:
    from wagtail.images.api.v2.serializers import ImageDownloadUrlField

    field = ImageDownloadUrlField(read_only=True)
    assert field.to_representation(make_image("red")) is None
    assert field.to_representation(make_image("blue")).endswith("blue.png")


def test_wagtails_admin_preview_of_a_withheld_image_is_not_found(
    client: Client, make_image: Any, editor: Any
) -> None:
    # Wagtail's own preview view (any user who may change images) runs its
    # filter without a rendition: no full-size re-encoding of a withheld image.
    red, blue = make_image("red"), make_image("blue")
    client.force_login(editor)
    for spec in ("original", "width-2000"):
        assert client.get(f"/cms/images/{red.pk}/preview/{spec}/").status_code == 404
        assert client.get(f"/cms/images/{blue.pk}/preview/{spec}/").status_code == 200


def test_a_rejection_deletes_the_renditions_made_before(
    client: Client, make_image: Any, django_capture_on_commit_callbacks: Any
) -> None:
    image = make_image("blue")
    rendition = image.get_rendition("width-40")
    storage, name = rendition.file.storage, rendition.file.name
    assert storage.exists(name)
    with django_capture_on_commit_callbacks(execute=True):
        review.reject(row_of(image))
    assert not image.renditions.exists()
    assert not storage.exists(name)
    assert serve(client, image).status_code == 404


def test_an_approval_serves_the_image_again(client: Client, make_image: Any) -> None:
    image = make_image("red")
    assert serve(client, image).status_code == 404
    review.approve(row_of(image))
    assert serve(client, image).status_code == 200


# --- Badges -------------------------------------------------------------------------


def test_the_image_listing_and_edit_view_show_badges(
    client: Client, make_image: Any, editor: Any
) -> None:
    red, blue = make_image("red"), make_image("blue")
    client.force_login(editor)
    listing = client.get("/cms/images/?layout=list").content.decode()
    assert 'data-nsfw-verdict="flagged"' in listing
    assert 'data-nsfw-verdict="allowed"' in listing
    edit = client.get(f"/cms/images/{red.pk}/").content.decode()
    assert 'data-nsfw-verdict="flagged"' in edit
    assert 'data-nsfw-verdict="allowed"' in client.get(f"/cms/images/{blue.pk}/").content.decode()


# --- The chooser --------------------------------------------------------------------


def chooser_titles(client: Client) -> str:
    return client.get("/cms/images/chooser/results/").content.decode()


def test_the_chooser_hides_withheld_images_from_editors(
    client: Client, make_image: Any, editor: Any, moderator: Any
) -> None:
    make_image("red", title="unsafe-one")
    make_image("blue", title="safe-one")
    client.force_login(editor)
    shown = chooser_titles(client)
    assert "safe-one" in shown
    assert "unsafe-one" not in shown
    client.force_login(moderator)
    shown = chooser_titles(client)
    assert "unsafe-one" in shown


def test_the_chooser_marks_them_when_told(client: Client, make_image: Any, editor: Any) -> None:
    make_image("red", title="unsafe-one")
    client.force_login(editor)
    with moderation(WAGTAIL_CHOOSER="mark"):
        shown = chooser_titles(client)
    assert "unsafe-one" in shown
    assert 'data-nsfw-verdict="flagged"' in shown


# --- Checks -------------------------------------------------------------------------


def test_a_bad_chooser_setting_is_an_error() -> None:
    from nsfw_moderation.contrib.wagtail.checks import check_chooser

    assert check_chooser in checks.registry.registry.get_checks()
    assert check_chooser() == []
    with moderation(WAGTAIL_CHOOSER="blur"):
        (error,) = check_chooser()
    assert (error.id, error.hint) == ("nsfw_moderation_wagtail.E001", "Choose one of: hide, mark.")


def test_the_app_after_wagtail_images_is_a_warning() -> None:
    from nsfw_moderation.contrib.wagtail.checks import app_order_warnings, check_app_order

    app = "nsfw_moderation.contrib.wagtail"
    assert check_app_order() == []
    assert app_order_warnings([app, "wagtail.images"]) == []
    warnings = app_order_warnings(["wagtail.images", app])
    assert [warning.id for warning in warnings] == ["nsfw_moderation_wagtail.W001"]


def test_choosing_a_withheld_image_gives_the_not_found_preview(
    client: Client, make_image: Any, moderator: Any
) -> None:
    red = make_image("red")
    client.force_login(moderator)
    response = client.get(f"/cms/images/chooser/chosen/{red.pk}/")
    assert response.status_code == 200
    chosen = response.json()["result"]
    assert (chosen["id"], chosen["preview"]["url"]) == (str(red.pk), "/media/not-found")
    assert not red.renditions.exists()


def test_an_upload_in_the_chooser_is_chosen_before_its_verdict(client: Client, editor: Any) -> None:
    from tests.images import image_file

    client.force_login(editor)
    response = client.post(
        "/cms/images/chooser/create/",
        {
            "image-chooser-upload-title": "new",
            "image-chooser-upload-file": image_file("new.png", color=(0, 0, 255)),
            "image-chooser-upload-collection": "1",
        },
    )
    assert response.status_code == 200
    assert response.json()["step"] == "chosen"
    assert response.json()["result"]["preview"]["url"] == "/media/not-found"


def listing_queries(client: Client, layout: str, listing: str = "/cms/images/") -> int:
    url = f"{listing}?layout={layout}"
    client.get(url)  # makes the renditions of the images shown
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


@pytest.mark.parametrize("layout", ["list", "grid"])
@pytest.mark.parametrize("listing", ["/cms/images/", "/cms/images/chooser/results/"])
def test_the_listing_fetches_the_verdicts_of_its_page_at_once(
    client: Client, make_image: Any, moderator: Any, layout: str, listing: str
) -> None:
    make_image("red"), make_image("blue")
    for number in range(3):
        make_image("blue", classify=False, title=f"unseen {number}")
    client.force_login(moderator)  # sees every image, badged, in the chooser too
    five = listing_queries(client, layout, listing)
    for number in range(25):
        make_image("blue", classify=False, title=f"more {number}")
    assert listing_queries(client, layout, listing) == five
