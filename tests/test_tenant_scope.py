"""A site that scopes moderators per tenant: every moderation page stays inside the tenant.

The site below does what docs/review-ui.md tells a multi-tenant site to do: its
``ModeratedImageAdmin`` narrows ``get_queryset`` and ``has_review_permission``
to the reviewer's tenant (here: the photos of the users in the reviewer's
``tenant-*`` group). Every other moderation admin (appeals, statements,
events, blocked images, hash banks and their entries) is registered as
shipped; they must follow that scoping on their own. Each tenant has an
automatic block appealed against, a moderator's rejection (blocklist and
built-in bank entry), a flagged image with a statement and an appeal whose
object was deleted (records without a row), and an imported bank entry.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group, User
from django.contrib.contenttypes.models import ContentType
from django.db.models import CharField, QuerySet
from django.db.models.functions import Cast
from django.http import HttpRequest
from django.test import Client
from django.urls import path, reverse

from nsfw_moderation import banks, notices, review
from nsfw_moderation.admin import (
    AppealAdmin,
    BankEntryAdmin,
    BlockedImageAdmin,
    HashBankAdmin,
    ModeratedImageAdmin,
    ModeratedImageInline,
    ModerationEventAdmin,
    NoticeAdmin,
    StatementAdmin,
)
from nsfw_moderation.appeals import file_appeal
from nsfw_moderation.models import (
    Appeal,
    AppealOutcome,
    BankEntry,
    BlockedImage,
    HashBank,
    ModeratedImage,
    ModerationEvent,
    Notice,
    Statement,
    Verdict,
)
from tests.conftest import moderation
from tests.testapp.models import Photo

pytest_plugins = ["tests.admin_fixtures"]
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.urls(__name__)]


# tests.admin_fixtures' helpers, imported when called: by then pytest has loaded it as a
# plugin (rewriting its asserts), which an import at the top would prevent.
def create_user(username: str, *perms: str, **flags: Any) -> User:
    from tests.admin_fixtures import create_user

    return create_user(username, *perms, **flags)


def create_row(obj: Any = None, **values: Any) -> ModeratedImage:
    from tests.admin_fixtures import create_row

    return create_row(obj, **values)


# --- The tenant-scoped site --------------------------------------------------------


def tenant_of(user: Any) -> str:
    """The reviewer's tenant: the name of their ``tenant-*`` group ("" for none)."""
    group = user.groups.filter(name__startswith="tenant-").first()
    return group.name if group else ""


class TenantImageAdmin(ModeratedImageAdmin):
    """A reviewer sees and decides the images of their own tenant's users; root sees all."""

    def get_queryset(self, request: HttpRequest) -> QuerySet[ModeratedImage]:
        rows = super().get_queryset(request)
        if request.user.is_superuser:
            return rows
        owners = User.objects.filter(groups__name=tenant_of(request.user)).values("username")
        photos = Photo.objects.filter(title__in=owners).annotate(key=Cast("pk", CharField()))
        return rows.filter(
            content_type=ContentType.objects.get_for_model(Photo),
            object_id__in=photos.values("key"),
        )

    def has_review_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if not super().has_review_permission(request, obj):
            return False
        return obj is None or self.get_queryset(request).filter(pk=obj.pk).exists()


tenant_site = admin.AdminSite(name="tenant")
tenant_site.register(ModeratedImage, TenantImageAdmin)
tenant_site.register(Appeal, AppealAdmin)
tenant_site.register(Statement, StatementAdmin)
tenant_site.register(Notice, NoticeAdmin)
tenant_site.register(ModerationEvent, ModerationEventAdmin)
tenant_site.register(BlockedImage, BlockedImageAdmin)
tenant_site.register(HashBank, HashBankAdmin)
tenant_site.register(BankEntry, BankEntryAdmin)


class PhotoAdmin(admin.ModelAdmin):
    """The host's own admin, not scoped: its moderation inline still is."""

    inlines = [ModeratedImageInline]


tenant_site.register(Photo, PhotoAdmin)

urlpatterns = [path("tenant/", tenant_site.urls)]

#: Every moderation record admin of the site, by model.
RECORDS = (Appeal, Statement, Notice, ModerationEvent, BlockedImage, BankEntry)


def url(model: type[Any], view: str, *args: Any) -> str:
    opts = model._meta
    return reverse(f"tenant:{opts.app_label}_{opts.model_name}_{view}", args=args)


# --- Two tenants ---------------------------------------------------------------------


@dataclass
class Tenant:
    """One tenant's reviewer and the records about its images."""

    reviewer: User
    blocked: ModeratedImage
    rejected: ModeratedImage
    appeal: Appeal
    #: pks per model of every record about this tenant's images, rows present or gone.
    records: dict[type[Any], set[int]] = field(default_factory=dict)
    #: pks per model of the records whose row is gone (image NULL).
    orphans: dict[type[Any], set[int]] = field(default_factory=dict)


REVIEWER_PERMS = (
    "nsfw_moderation.review_moderatedimage",
    "nsfw_moderation.view_moderationevent",
    "nsfw_moderation.view_notice",
    "nsfw_moderation.view_blockedimage",
    "nsfw_moderation.view_bankentry",
    "nsfw_moderation.change_bankentry",
    "nsfw_moderation.view_hashbank",
    "nsfw_moderation.change_hashbank",
    "testapp.view_photo",
)


def make_tenant(letter: str, root: User) -> Tenant:
    group = Group.objects.create(name=f"tenant-{letter}")
    owner = User.objects.create_user(f"owner-{letter}")
    reviewer = create_user(f"reviewer-{letter}", *REVIEWER_PERMS)
    for user in (owner, reviewer):
        user.groups.add(group)
    pdq = ("a" if letter == "a" else "5") * 64

    def photo_row(**values: Any) -> ModeratedImage:
        photo = Photo.objects.create(title=owner.username)
        return create_row(photo, file_name=f"photos/{letter}-{photo.pk}.png", **values)

    blocked = photo_row(verdict=Verdict.BLOCKED, sha256=letter * 64)
    appeal = file_appeal(notices.issue(blocked, automated=True), owner, f"appeal of {letter}")
    rejected = photo_row(sha256=f"{letter}1" * 32, pdq=pdq, pdq_quality=100)
    review.reject(rejected, user=root, note=f"rejected {letter}")
    # A flagged image, its statement and an appeal; then the object (and row) is deleted.
    gone = photo_row(sha256=f"{letter}2" * 32)
    orphan_appeal = file_appeal(notices.issue(gone, automated=True), owner, f"orphan {letter}")
    Photo.objects.get(pk=gone.object_id).delete()
    assert not ModeratedImage.objects.filter(pk=gone.pk).exists()
    tenant = Tenant(reviewer, blocked, rejected, appeal)
    rows = [blocked.pk, rejected.pk]
    tenant.records = {
        Appeal: {appeal.pk, orphan_appeal.pk},
        Statement: set(Statement.objects.filter(image__in=rows).values_list("pk", flat=True))
        | {orphan_appeal.statement_id},
        ModerationEvent: set(
            ModerationEvent.objects.filter(image__in=rows).values_list("pk", flat=True)
        ),
        BlockedImage: set(BlockedImage.objects.filter(image=rejected).values_list("pk", flat=True)),
        BankEntry: set(BankEntry.objects.filter(image=rejected).values_list("pk", flat=True)),
    }
    statements = tenant.records[Statement]
    tenant.records[Notice] = set(
        Notice.objects.filter(statement__in=statements).values_list("pk", flat=True)
    )
    orphan_events = ModerationEvent.objects.filter(object_id=gone.object_id, image__isnull=True)
    tenant.orphans = {
        Appeal: {orphan_appeal.pk},
        Statement: {orphan_appeal.statement_id},
        Notice: set(
            Notice.objects.filter(statement=orphan_appeal.statement_id).values_list("pk", flat=True)
        ),
        ModerationEvent: set(orphan_events.values_list("pk", flat=True)),
    }
    assert all(tenant.records[model] for model in RECORDS), tenant.records
    assert tenant.orphans[ModerationEvent]
    return tenant


@dataclass
class World:
    root: User
    a: Tenant
    b: Tenant
    imported: BankEntry
    bank_event: ModerationEvent


@pytest.fixture
def world() -> Iterator[World]:
    with moderation(OWNER="tests.owners.owner_of"):
        root = create_user("root", superuser=True)
        a = make_tenant("a", root)
        b = make_tenant("b", root)
        tips = HashBank.objects.create(name="Tips from police re: owner-a", action="flag")
        banks.add_entries(tips, [("c" * 64, 100, "tip about owner-a")])
        imported = BankEntry.objects.get(bank=tips)
        banks.set_action(tips, HashBank.Action.BLOCK, root)
        bank_event = ModerationEvent.objects.get(kind=ModerationEvent.Kind.BANK_CHANGED)
        yield World(root, a, b, imported, bank_event)


def client_for(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def listed(client: Client, model: type[Any]) -> set[int]:
    """The pks the site's changelist of ``model`` shows, after checking the page answered."""
    response = client.get(url(model, "changelist"))
    assert response.status_code == 200, (model, response.status_code)
    changelist = response.context["cl"]
    # The total the page prints ("N total") must not count other tenants' records either.
    assert changelist.full_result_count in (None, changelist.result_count)
    return {obj.pk for obj in changelist.result_list}


# --- Lists, change pages, history -------------------------------------------------------


def test_each_list_shows_the_tenants_own_records_only(world: World) -> None:
    for tenant in (world.a, world.b):
        client = client_for(tenant.reviewer)
        for model in RECORDS:
            present = tenant.records[model] - tenant.orphans.get(model, set())
            assert listed(client, model) == present, model


def test_records_whose_row_is_gone_are_for_site_wide_moderators_only(world: World) -> None:
    # Nothing tells a tenant's reviewer whose they were: they are hidden (fail closed).
    root = client_for(world.root)
    for model in (Appeal, Statement, Notice, ModerationEvent):
        orphans = world.a.orphans[model] | world.b.orphans[model]
        assert orphans <= listed(root, model)
        for tenant in (world.a, world.b):
            assert not orphans & listed(client_for(tenant.reviewer), model)
    assert world.imported.pk in listed(root, BankEntry)


def test_another_tenants_change_and_history_pages_are_out_of_reach(world: World) -> None:
    client = client_for(world.b.reviewer)
    for model in RECORDS:
        for pk in world.a.records[model]:
            for view in ("change", "history"):
                response = client.get(url(model, view, pk))
                # The admin's "does not exist" redirect: nothing of the record is shown.
                assert response.status_code == 302, (model, view, pk)
    for row in (world.a.blocked, world.a.rejected):
        assert client.get(url(ModeratedImage, "change", row.pk)).status_code == 302
        assert client.get(url(ModeratedImage, "preview", row.pk)).status_code == 404
    # And the tenant's own pages open.
    own = client.get(url(Statement, "change", min(world.b.records[Statement])))
    assert own.status_code == 200


def test_the_change_page_of_an_image_lists_its_own_events(world: World) -> None:
    page = client_for(world.b.reviewer).get(url(ModeratedImage, "change", world.b.blocked.pk))
    assert page.status_code == 200
    [formset] = list(page.context["inline_admin_formsets"])
    shown = {form.original.pk for form in formset}
    assert shown == set(world.b.blocked.events.values_list("pk", flat=True))


def test_the_moderation_inline_of_a_host_page_lists_the_tenants_rows_only(world: World) -> None:
    for row, shown in ((world.a.blocked, False), (world.b.blocked, True)):
        page = client_for(world.b.reviewer).get(url(Photo, "change", row.object_id))
        assert page.status_code == 200
        [formset] = list(page.context["inline_admin_formsets"])
        assert [form.original for form in formset] == ([row] if shown else [])


# --- Queues, decisions, actions ------------------------------------------------------------


def test_the_appeal_queue_holds_the_tenants_appeals_only(world: World) -> None:
    page = client_for(world.b.reviewer).get(url(Appeal, "queue"))
    assert page.status_code == 200
    assert [card.appeal for card in page.context["cards"]] == [world.b.appeal]
    assert "appeal of a" not in page.text
    root_page = client_for(world.root).get(url(Appeal, "queue"))
    assert world.a.appeal in [card.appeal for card in root_page.context["cards"]]


def test_a_reviewer_cannot_decide_another_tenants_appeal(world: World) -> None:
    client = client_for(world.b.reviewer)
    for decision in ("approve", "reject"):
        client.post(url(Appeal, "decide"), {"decide_one": f"{decision}:{world.a.appeal.pk}"})
    assert not AppealOutcome.objects.filter(appeal=world.a.appeal).exists()
    world.a.blocked.refresh_from_db()
    assert world.a.blocked.verdict == Verdict.BLOCKED
    # Their own tenant's appeal they decide.
    client.post(url(Appeal, "decide"), {"decide_one": f"approve:{world.b.appeal.pk}"})
    assert AppealOutcome.objects.get(appeal=world.b.appeal).decided_by == world.b.reviewer


def test_the_review_queue_dashboard_and_decisions_stay_in_the_tenant(world: World) -> None:
    client = client_for(world.b.reviewer)
    other = ModeratedImage.objects.filter(pk__in=[world.a.blocked.pk, world.a.rejected.pk])
    queue = client.get(url(ModeratedImage, "review"), {"verdict": ""})
    assert queue.status_code == 200
    assert not {card.row.pk for card in queue.context["cards"]} & set(
        other.values_list("pk", flat=True)
    )
    dashboard = client.get(url(ModeratedImage, "dashboard"))
    assert dashboard.context["appeals"]["total"].received == 1
    for row in other:
        client.post(url(ModeratedImage, "decide"), {"decide_one": f"approve:{row.pk}"})
    changelist = url(ModeratedImage, "changelist")
    client.post(changelist, {"action": "approve", "_selected_action": [r.pk for r in other]})
    assert set(other.values_list("verdict", flat=True)) == {Verdict.BLOCKED, Verdict.REJECTED}


def test_bank_entry_actions_stay_in_the_tenant(world: World) -> None:
    client = client_for(world.b.reviewer)
    theirs = [*world.a.records[BankEntry], world.imported.pk]
    client.post(
        url(BankEntry, "changelist"), {"action": "remove_entries", "_selected_action": theirs}
    )
    assert not BankEntry.objects.filter(pk__in=theirs, removed_at__isnull=False).exists()
    client.post(
        url(BankEntry, "changelist"),
        {"action": "remove_entries", "_selected_action": list(world.b.records[BankEntry])},
    )
    removed = BankEntry.objects.filter(removed_at__isnull=False)
    assert set(removed.values_list("pk", flat=True)) == world.b.records[BankEntry]


# --- Banks: site-wide ------------------------------------------------------------------------


def test_banks_and_their_changes_are_for_site_wide_moderators_only(world: World) -> None:
    # A bank acts on every tenant's images, and its name may say more than a tenant may read.
    client = client_for(world.b.reviewer)
    assert client.get(url(HashBank, "changelist")).status_code == 403
    assert client.get(url(HashBank, "change", world.imported.bank_id)).status_code == 403
    assert world.bank_event.pk not in listed(client, ModerationEvent)
    assert client.get(url(ModerationEvent, "change", world.bank_event.pk)).status_code == 302
    root = client_for(world.root)
    assert root.get(url(HashBank, "changelist")).status_code == 200
    assert world.bank_event.pk in listed(root, ModerationEvent)
