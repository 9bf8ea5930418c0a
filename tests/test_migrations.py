"""Data migrations carry existing records forward."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.django_db(transaction=True)

APP = "nsfw_moderation"


def migrate(target: str) -> Any:
    """Move nsfw_moderation to ``target``; returns the apps registry of that state."""
    executor = MigrationExecutor(connection)
    executor.migrate([(APP, target)])
    executor.loader.build_graph()
    return executor.loader.project_state([(APP, target)]).apps


@pytest.fixture
def before_standalone_events() -> Iterator[Any]:
    latest = MigrationExecutor(connection).loader.graph.leaf_nodes(APP)[0][1]
    yield migrate("0001_initial")
    migrate(latest)


def test_existing_events_and_rejections_outlive_their_rows(before_standalone_events):
    old = before_standalone_events
    ContentType = old.get_model("contenttypes", "ContentType")
    User = old.get_model("auth", "User")
    Image = old.get_model(APP, "ModeratedImage")
    Event = old.get_model(APP, "ModerationEvent")
    photo_type, _ = ContentType.objects.get_or_create(app_label="testapp", model="photo")
    moderator = User.objects.create(username="moderator")
    rejected = Image.objects.create(
        content_type=photo_type,
        object_id="7",
        field_name="image",
        file_name="photos/x.png",
        sha256="ab" * 32,
        verdict="rejected",
        status="done",
    )
    Event.objects.create(
        image=rejected,
        kind="reviewed",
        actor=moderator,
        verdict_before="flagged",
        verdict_after="rejected",
        file_name="photos/x.png",
    )

    new = migrate("0004_waits_and_actor_names")

    event = new.get_model(APP, "ModerationEvent").objects.get()
    assert (event.content_type_id, event.object_id, event.field_name) == (
        photo_type.pk,
        "7",
        "image",
    )
    assert (event.sha256, event.actor_name) == ("ab" * 32, "moderator")
    blocked = new.get_model(APP, "BlockedImage").objects.get()
    assert (blocked.image_id, blocked.sha256) == (rejected.pk, "ab" * 32)


def _kept_counts_follow_writes() -> bool:
    """Whether the database keeps the rows' counts (its triggers) as rows are written."""
    from django.contrib.contenttypes.models import ContentType

    from nsfw_moderation import counts
    from nsfw_moderation.models import ModeratedImage

    photo_type = ContentType.objects.get_for_model(ContentType)
    ModeratedImage.objects.create(content_type=photo_type, object_id="1", field_name="f")
    kept = counts.count(ModeratedImage.objects.all())
    ModeratedImage.objects.all().delete()
    return kept == 1


@pytest.mark.skipif(connection.vendor not in ("sqlite", "postgresql"), reason="counts kept there")
def test_later_migrations_keep_the_count_triggers():
    """SQLite rebuilds a table to add some columns (a JSONField): its triggers must come back."""
    latest = MigrationExecutor(connection).loader.graph.leaf_nodes(APP)[0][1]
    assert _kept_counts_follow_writes()
    try:
        migrate("0008_scale")
        migrate(latest)
        assert _kept_counts_follow_writes()
    finally:
        migrate(latest)
