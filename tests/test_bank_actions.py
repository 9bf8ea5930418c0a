"""A hash bank's action: the built-in bank never allows, and every change is on record."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from nsfw_moderation import banks
from nsfw_moderation.models import HashBank, ModerationEvent

pytest_plugins = ["tests.admin_fixtures"]
pytestmark = pytest.mark.django_db

CHANGED = ModerationEvent.Kind.BANK_CHANGED


def change_url(bank: HashBank) -> str:
    return reverse("admin:nsfw_moderation_hashbank_change", args=[bank.pk])


def post_bank(client: Client, bank: HashBank, **values: str) -> object:
    data = {"name": bank.name, "action": bank.action, "description": bank.description}
    return client.post(change_url(bank), {**data, **values})


@pytest.fixture
def bank_manager(make_user) -> User:
    return make_user("banker", "nsfw_moderation.view_hashbank", "nsfw_moderation.change_hashbank")


@pytest.fixture
def manager_client(client: Client, bank_manager: User) -> Client:
    client.force_login(bank_manager)
    return client


def test_the_built_in_bank_cannot_be_switched_to_allow_in_the_admin(manager_client):
    bank = banks.builtin_bank()
    response = post_bank(manager_client, bank, action=HashBank.Action.ALLOW)
    assert response.status_code == 200  # the form again, with its error
    assert "action" in response.context["adminform"].form.errors
    bank.refresh_from_db()
    assert bank.action == HashBank.Action.BLOCK
    assert not ModerationEvent.objects.filter(kind=CHANGED).exists()


def test_the_built_in_bank_may_flag_instead_of_block(manager_client, bank_manager):
    bank = banks.builtin_bank()
    response = post_bank(manager_client, bank, action=HashBank.Action.FLAG)
    assert response.status_code == 302
    bank.refresh_from_db()
    assert bank.action == HashBank.Action.FLAG
    event = ModerationEvent.objects.get(kind=CHANGED)
    assert (event.image, event.actor, event.actor_name) == (None, bank_manager, "banker")
    assert event.note == f"hash bank {bank.pk} “{bank.name}”: block → flag"


def test_the_database_refuses_a_built_in_bank_that_allows():
    """Past the form and set_action (a direct save or update), the constraint holds."""
    from django.db import IntegrityError, transaction

    bank = banks.builtin_bank()
    with pytest.raises(IntegrityError), transaction.atomic():
        HashBank.objects.filter(pk=bank.pk).update(action=HashBank.Action.ALLOW)
    bank.action = HashBank.Action.ALLOW
    with pytest.raises(IntegrityError), transaction.atomic():
        bank.save()


def test_set_action_refuses_allow_for_the_built_in_bank(bank_manager):
    bank = banks.builtin_bank()
    with pytest.raises(ValueError, match="built-in"):
        banks.set_action(bank, HashBank.Action.ALLOW, bank_manager)
    bank.refresh_from_db()
    assert bank.action == HashBank.Action.BLOCK
    assert not ModerationEvent.objects.filter(kind=CHANGED).exists()


def test_every_change_of_an_action_is_an_event(manager_client, bank_manager):
    bank = HashBank.objects.create(name="Partner list", action=HashBank.Action.FLAG)
    assert post_bank(manager_client, bank, action=HashBank.Action.ALLOW).status_code == 302
    bank.refresh_from_db()
    banks.set_action(bank, HashBank.Action.BLOCK, None)  # e.g. a command: no person
    notes = list(
        ModerationEvent.objects.filter(kind=CHANGED)
        .order_by("pk")
        .values_list("actor_name", "note", "verdict_before", "verdict_after")
    )
    assert notes == [
        ("banker", f"hash bank {bank.pk} “Partner list”: flag → allow", "", ""),
        ("", f"hash bank {bank.pk} “Partner list”: allow → block", "", ""),
    ]
    bank.refresh_from_db()
    assert bank.action == HashBank.Action.BLOCK


def test_no_event_when_the_action_stays(manager_client):
    bank = HashBank.objects.create(name="Partner list", action=HashBank.Action.FLAG)
    assert post_bank(manager_client, bank, description="from the partner").status_code == 302
    banks.set_action(bank, HashBank.Action.FLAG, None)
    assert not ModerationEvent.objects.filter(kind=CHANGED).exists()


def test_a_changed_action_reloads_the_workers_index(bank_manager):
    bank = HashBank.objects.create(name="Partner list", action=HashBank.Action.FLAG)
    before = banks.version()
    banks.set_action(bank, HashBank.Action.BLOCK, bank_manager)
    assert banks.version() != before


def test_a_rejected_upload_with_a_long_odd_name_joins_the_built_in_bank(make_row, reviewer):
    """Its label is one line within the field: a 600-character name failed on PostgreSQL."""
    from nsfw_moderation import review
    from nsfw_moderation.models import BankEntry

    name = "photos/" + "x" * 300 + "\nline two\t" + "y" * 300 + ".png"
    row = make_row(file_name=name, sha256="e" * 64, pdq="0f" * 32, pdq_quality=100)
    review.reject(row, user=reviewer)
    label = BankEntry.objects.get(bank__built_in=True, image=row).label
    assert len(label) <= 255
    assert label.isprintable()
