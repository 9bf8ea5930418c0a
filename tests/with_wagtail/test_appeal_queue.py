"""The appeal queue in Wagtail's admin: the Django admin's rules, on a site with no admin URLs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.auth.models import Permission, User
from django.db.models import CharField, QuerySet
from django.db.models.functions import Cast
from django.http import HttpRequest
from django.test import Client
from wagtail.images.models import Image

from nsfw_moderation import review
from nsfw_moderation.admin import ModeratedImageAdmin
from nsfw_moderation.appeals import file_appeal
from nsfw_moderation.contrib.wagtail.withheld import is_withheld
from nsfw_moderation.models import Appeal, ModeratedImage, Statement, Verdict
from tests.conftest import moderation

pytestmark = pytest.mark.django_db

QUEUE = "/cms/image-moderation/appeals/"
DECIDE = "/cms/image-moderation/appeals/decide/"


@pytest.fixture(autouse=True)
def owners() -> Iterator[None]:
    # An image belongs to the user its title names.
    with moderation(OWNER="tests.owners.owner_of"):
        yield


@pytest.fixture
def rejecter(db: None) -> User:
    """The moderator who rejected the image: another one must decide the appeal."""
    user = User.objects.create_user("rejecter", password="x")
    user.user_permissions.add(
        Permission.objects.get(codename="review_moderatedimage"),
        Permission.objects.get(codename="access_admin"),
    )
    return user


@pytest.fixture
def appeal(make_image: Any, rejecter: User) -> Appeal:
    """Alice's appeal against the rejection of her image."""
    alice = User.objects.create_user("alice", password="x")
    row = ModeratedImage.objects.of_object(make_image("blue", title="alice"), "file").get()
    review.reject(row, user=rejecter, note="looks like nudity", user_note="nudity")
    return file_appeal(Statement.objects.filter(image=row).latest("pk"), alice, "It is a painting.")


def client_for(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def decide(client: Client, appeal: Appeal, decision: str, **notes: str) -> Any:
    posted = {f"{name}-{appeal.pk}": text for name, text in notes.items()}
    return client.post(DECIDE, {"decide_one": f"{decision}:{appeal.pk}", **posted}, follow=True)


def test_the_menu_shows_the_appeal_queue_to_moderators_only(moderator: Any, editor: Any) -> None:
    assert QUEUE in client_for(moderator).get("/cms/").text
    assert QUEUE not in client_for(editor).get("/cms/").text


def test_a_moderator_upholds_an_appeal_and_the_image_is_restored(
    moderator: Any, appeal: Appeal
) -> None:
    client = client_for(moderator)
    response = client.get(QUEUE)
    assert response.status_code == 200
    assert response["X-Frame-Options"] == "DENY"
    assert [card.appeal for card in response.context["cards"]] == [appeal]
    assert "It is a painting." in response.text
    assert "disabled aria-describedby" not in response.text
    assert client.get(response.context["cards"][0].preview_url).status_code == 200
    done = decide(client, appeal, "approve", note="a painting", user_note="Sorry!")
    assert "Appeal upheld" in done.text
    outcome = Appeal.objects.get().outcome
    assert (outcome.upheld, outcome.decided_by, outcome.note, outcome.user_note) == (
        True,
        moderator,
        "a painting",
        "Sorry!",
    )
    assert ModeratedImage.objects.get().verdict == Verdict.APPROVED
    assert not is_withheld(Image.objects.get())
    assert client.get(QUEUE).context["cards"] == []


def test_a_moderator_keeps_the_restriction(moderator: Any, appeal: Appeal) -> None:
    done = decide(client_for(moderator), appeal, "reject")
    assert "Appeal not upheld" in done.text
    assert Appeal.objects.get().outcome.upheld is False
    assert ModeratedImage.objects.get().verdict == Verdict.REJECTED


def test_who_rejected_the_image_may_not_decide_its_appeal(rejecter: User, appeal: Appeal) -> None:
    client = client_for(rejecter)
    card = client.get(QUEUE).context["cards"][0]
    assert "another moderator must decide" in card.refusal
    html = client.get(QUEUE).text
    assert html.count(f'disabled aria-describedby="refusal-{appeal.pk}"') == 2
    refused = decide(client, appeal, "approve")
    assert "cannot decide its appeal" in refused.text
    assert not Appeal.objects.filter(outcome__isnull=False).exists()
    assert ModeratedImage.objects.get().verdict == Verdict.REJECTED


def test_editors_may_not_see_or_decide_appeals(editor: Any, appeal: Appeal) -> None:
    client = client_for(editor)
    # Wagtail's answer to PermissionDenied in its admin: back home, with a message.
    assert client.get(QUEUE)["Location"] == "/cms/"
    assert client.post(DECIDE, {"decide_one": f"approve:{appeal.pk}"})["Location"] == "/cms/"
    assert not Appeal.objects.filter(outcome__isnull=False).exists()


class AliceOnlyAdmin(ModeratedImageAdmin):
    """A site's tenant scoping: its moderators see the rows of Alice's images only."""

    def get_queryset(self, request: HttpRequest) -> QuerySet[ModeratedImage]:
        alices = Image.objects.filter(title="alice").annotate(key=Cast("pk", CharField()))
        return super().get_queryset(request).filter(object_id__in=alices.values("key"))

    def has_review_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if not super().has_review_permission(request, obj):
            return False
        return obj is None or self.get_queryset(request).filter(pk=obj.pk).exists()


@pytest.fixture
def scoped() -> Iterator[None]:
    """The default admin site's ModeratedImageAdmin scopes rows (its URLs are still not mounted)."""
    shipped = type(admin.site._registry[ModeratedImage])
    admin.site.unregister(ModeratedImage)
    admin.site.register(ModeratedImage, AliceOnlyAdmin)
    yield
    admin.site.unregister(ModeratedImage)
    admin.site.register(ModeratedImage, shipped)


def test_the_sites_image_admin_scopes_the_queue(
    moderator: Any, appeal: Appeal, make_image: Any, rejecter: User, scoped: None
) -> None:
    bob = User.objects.create_user("bob", password="x")
    row = ModeratedImage.objects.of_object(make_image("blue", title="bob"), "file").get()
    review.reject(row, user=rejecter)
    bobs = file_appeal(Statement.objects.filter(image=row).latest("pk"), bob, "Mine is fine too.")
    client = client_for(moderator)
    assert [card.appeal for card in client.get(QUEUE).context["cards"]] == [appeal]
    assert "gone or has been decided" in decide(client, bobs, "approve").text
    assert not Appeal.objects.filter(outcome__isnull=False).exists()
