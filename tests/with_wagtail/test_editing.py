"""Editors without the review permission cannot put a withheld image on a page.

Through Wagtail's own page create and edit views: a chosen image (a foreign
key), a StreamField's image blocks (alone and in a list) and rich text.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from wagtail.test.utils.form_data import inline_formset, nested_form_data, rich_text, streamfield

from tests.wagtailapp.models import ArticlePage

pytestmark = pytest.mark.django_db


EMPTY = {"body": streamfield([]), "intro": rich_text(""), "gallery_images": inline_formset([])}


def edit(client: Client, page: Any, **fields: Any) -> Any:
    data = {"title": page.title, "slug": page.slug, **EMPTY}
    data.update(fields)
    url = reverse("wagtailadmin_pages:edit", args=[page.pk])
    return client.post(url, nested_form_data(data))


def create(client: Client, parent: Any, **fields: Any) -> Any:
    data = {"title": "New", "slug": "new", **EMPTY}
    data.update(fields)
    url = reverse("wagtailadmin_pages:add", args=["wagtailapp", "articlepage", parent.pk])
    return client.post(url, nested_form_data(data))


@pytest.fixture
def page(home: Any) -> ArticlePage:
    return home.add_child(instance=ArticlePage(title="Article", slug="article"))


def refused(response: Any) -> bool:
    return (
        response.status_code == 200 and "withheld by image moderation" in response.content.decode()
    )


def saved(response: Any) -> bool:
    return response.status_code == 302


def test_an_editor_cannot_choose_a_withheld_image(
    client: Client, editor: Any, page: ArticlePage, make_image: Any
) -> None:
    client.force_login(editor)
    red, blue = make_image("red"), make_image("blue")
    assert refused(edit(client, page, cover=red.pk))
    page.refresh_from_db()
    assert page.cover is None
    assert not page.revisions.exists()
    assert saved(edit(client, page, cover=blue.pk))
    assert page.revisions.latest("created_at").as_object().cover == blue


def test_nor_in_an_inline_panel(
    client: Client, editor: Any, page: ArticlePage, make_image: Any
) -> None:
    client.force_login(editor)
    red, blue = make_image("red"), make_image("blue")
    assert refused(edit(client, page, gallery_images=inline_formset([{"image": red.pk}])))
    assert not page.revisions.exists()
    assert saved(edit(client, page, gallery_images=inline_formset([{"image": blue.pk}])))


def test_an_editor_cannot_create_a_page_with_one(
    client: Client, editor: Any, home: Any, make_image: Any
) -> None:
    client.force_login(editor)
    assert refused(create(client, home, cover=make_image("red").pk))
    assert not ArticlePage.objects.exists()


@pytest.mark.parametrize(
    "blocks",
    [
        lambda image: [("image", image.pk)],
        lambda image: [("text", "hello"), ("gallery", streamfield([("item", image.pk)]))],
    ],
    ids=["image block", "list of images"],
)
def test_nor_put_one_in_a_streamfield(
    client: Client, editor: Any, page: ArticlePage, make_image: Any, blocks: Any
) -> None:
    client.force_login(editor)
    red, blue = make_image("red"), make_image("blue")
    assert refused(edit(client, page, body=streamfield(blocks(red))))
    assert not page.revisions.exists()
    assert saved(edit(client, page, body=streamfield(blocks(blue))))


def test_nor_embed_one_in_rich_text(
    client: Client, editor: Any, page: ArticlePage, make_image: Any
) -> None:
    client.force_login(editor)
    red = make_image("red")
    html = f'<p>Hi</p><embed embedtype="image" id="{red.pk}" format="fullwidth" alt="x"/>'
    assert refused(edit(client, page, intro=rich_text(html)))


def test_a_moderator_may(
    client: Client, moderator: Any, page: ArticlePage, make_image: Any
) -> None:
    client.force_login(moderator)
    red = make_image("red")
    assert saved(edit(client, page, cover=red.pk, body=streamfield([("image", red.pk)])))


def test_an_image_already_on_the_page_does_not_stop_other_edits(
    client: Client, editor: Any, home: Any, make_image: Any
) -> None:
    # Allowed when it was put there, flagged since (e.g. a new model): the
    # page can still be edited, and the image stays withheld from visitors.
    red = make_image("red")
    page = home.add_child(instance=ArticlePage(title="Old", slug="old", cover=red))
    client.force_login(editor)
    assert saved(edit(client, page, cover=red.pk, title="Old, edited"))
