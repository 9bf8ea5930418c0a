"""Naming the fields to moderate: settings and ``register()``."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

import nsfw_moderation
from nsfw_moderation import registry
from tests.conftest import moderation
from tests.testapp.models import Banner, Document, Photo, Profile, ProxyPhoto


def test_settings_and_code_registrations():
    assert registry.fields_for(Photo) == ("image",)
    assert registry.fields_for(Profile) == ("avatar", "banner")
    assert registry.fields_for(Banner) == ("image",)
    assert ("testapp.Document", "file") in {(m._meta.label, f) for m, f in registry.registered()}


def test_proxy_models_share_their_concrete_models_fields():
    assert registry.fields_for(ProxyPhoto) == ("image",)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (["nope"], "has no field 'nope'"),
        (["title"], "is a CharField, not a FileField"),
        ("image", "needs a list of field names"),
        ([], "needs a list of field names"),
    ],
)
def test_register_refuses_bad_fields(fields, message):
    with pytest.raises(ImproperlyConfigured, match=message):
        nsfw_moderation.register(Photo, fields=fields)


def test_register_is_idempotent_and_accumulates():
    nsfw_moderation.register(Profile, fields=["avatar"])
    assert registry.fields_for(Profile) == ("avatar", "banner")
    nsfw_moderation.register(Profile, fields=["attachment"])
    try:
        assert registry.fields_for(Profile) == ("avatar", "banner", "attachment")
    finally:
        nsfw_moderation.unregister(Profile)
        nsfw_moderation.register(Profile, fields=["avatar", "banner"])


def test_settings_changes_take_effect_and_are_undone():
    with moderation(MODELS={"testapp.Photo": ["image"]}):
        assert registry.fields_for(Document) == ()
        assert registry.fields_for(Photo) == ("image",)
    assert registry.fields_for(Document) == ("file",)


def test_code_registrations_survive_settings_changes():
    with moderation(MODELS={}):
        assert registry.fields_for(Banner) == ("image",)
        assert registry.fields_for(Photo) == ()


def test_bad_settings_entries_do_not_crash_start_up():
    # The system checks report them (see test_checks.py).
    with moderation(MODELS={"testapp.Nope": ["x"], "testapp.Photo": ["title", "image"]}):
        assert registry.fields_for(Photo) == ()
