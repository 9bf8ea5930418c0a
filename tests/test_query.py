"""Host-app helpers: visible()/hidden() querysets and the template filters."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, models
from django.template import Context, Template

from nsfw_moderation.models import ModeratedImage, Status, Verdict
from nsfw_moderation.query import (
    hidden,
    is_visible,
    prefetch_verdicts,
    verdict_of,
    visible,
    with_verdict,
)
from tests.bulk import many_objects
from tests.conftest import moderation
from tests.images import blue, red
from tests.testapp.models import Banner, Document, Photo, Profile, ProxyPhoto, Slide

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("colour_backend")]

# Integer, UUID and string primary keys.
MODELS = [(Photo, "image"), (Document, "file"), (Slide, "picture")]


def make(model: type[models.Model], field: str, content: Any) -> Any:
    extra = {"slug": f"slide-{uuid.uuid4().hex[:8]}"} if model is Slide else {}
    return model._default_manager.create(**{field: content}, **extra)


def set_verdict(obj: Any, field: str, verdict: str, status: str = Status.DONE) -> None:
    rows = ModeratedImage.objects.filter(
        content_type=ContentType.objects.get_for_model(obj),
        object_id=str(obj.pk),
        field_name=field,
    )
    assert rows.update(verdict=verdict, status=status) == 1


def build_cases(model: type[models.Model], field: str) -> dict[str, Any]:
    """One object in every state that matters, keyed by that state."""
    objects = {
        "allowed": make(model, field, blue()),
        "flagged": make(model, field, red()),
        "approved": make(model, field, red()),
        "rejected": make(model, field, blue()),
        "pending": make(model, field, blue()),
        "empty": make(model, field, ""),
        "stale": make(model, field, blue()),
    }
    set_verdict(objects["approved"], field, Verdict.APPROVED)
    set_verdict(objects["rejected"], field, Verdict.REJECTED)
    set_verdict(objects["pending"], field, Verdict.PENDING, Status.QUEUED)
    # The file changed behind the signals' back: the "allowed" row is for the old file.
    model._default_manager.filter(pk=objects["stale"].pk).update(**{field: "elsewhere/new.png"})
    return objects


def pks(queryset: models.QuerySet[Any]) -> set[Any]:
    return set(queryset.values_list("pk", flat=True))


@pytest.mark.parametrize(("model", "field"), MODELS)
def test_visible_and_hidden_split_the_objects(model, field):
    cases = build_cases(model, field)
    queryset = model._default_manager.all()
    expected_visible = {cases[k].pk for k in ("allowed", "approved", "empty")}
    assert pks(visible(queryset, field)) == expected_visible
    assert pks(hidden(queryset, field)) == {o.pk for o in cases.values()} - expected_visible


@pytest.mark.parametrize(("model", "field"), MODELS)
def test_show_pending_shows_pending_images(model, field):
    cases = build_cases(model, field)
    with moderation(SHOW_PENDING=True):
        shown = pks(visible(model._default_manager.all(), field))
        assert shown == {cases[k].pk for k in ("allowed", "approved", "empty", "pending")}
        assert cases["pending"].pk not in pks(hidden(model._default_manager.all(), field))


def test_objects_saved_without_signals_are_hidden_until_scanned():
    (photo,) = Photo.objects.bulk_create([Photo(image="photos/unseen.png")])
    assert not ModeratedImage.objects.exists()
    assert pks(visible(Photo.objects.all(), "image")) == set()
    assert pks(hidden(Photo.objects.all(), "image")) == {photo.pk}
    with moderation(SHOW_PENDING=True):
        # Not pending: nothing has looked at it at all.
        assert pks(visible(Photo.objects.all(), "image")) == set()


def test_a_row_of_another_model_with_the_same_id_does_not_count():
    banner = Banner.objects.create(pk=5, image=blue("same.png"))
    assert verdict_of(banner, "image") == Verdict.ALLOWED
    Photo.objects.bulk_create([Photo(pk=5, image=banner.image.name)])
    assert pks(visible(Photo.objects.all(), "image")) == set()
    assert pks(visible(Banner.objects.all(), "image")) == {5}


def test_one_query_for_a_listing(django_assert_num_queries):
    build_cases(Photo, "image")
    ContentType.objects.clear_cache()
    # The content type's id is looked up once per process (Django caches it)…
    with django_assert_num_queries(2):
        assert len(list(visible(Photo.objects.all(), "image"))) == 3
    # …then every listing is one query.
    with django_assert_num_queries(1):
        assert len(list(visible(Photo.objects.all(), "image"))) == 3
    with django_assert_num_queries(1):
        assert len(list(hidden(Photo.objects.all(), "image"))) == 4


def test_chains_with_other_filters_and_proxies():
    cases = build_cases(Photo, "image")
    Photo.objects.filter(pk=cases["allowed"].pk).update(title="keep")
    assert pks(visible(Photo.objects.filter(title="keep"), "image")) == {cases["allowed"].pk}
    assert pks(visible(ProxyPhoto.objects.all(), "image")) == pks(
        visible(Photo.objects.all(), "image")
    )


def test_unmoderated_field_is_a_clear_error():
    with pytest.raises(ImproperlyConfigured, match=r"Profile\.attachment is not moderated"):
        visible(Profile.objects.all(), "attachment")
    with pytest.raises(ImproperlyConfigured, match="avatar, banner"):
        verdict_of(Profile(), "attachment")


@pytest.mark.parametrize(("model", "field"), MODELS)
def test_object_helpers_agree_with_the_queryset(model, field):
    cases = build_cases(model, field)
    shown = pks(visible(model._default_manager.all(), field))
    for obj in model._default_manager.all():
        assert is_visible(obj, field) is (obj.pk in shown)
    assert verdict_of(cases["flagged"], field) == Verdict.FLAGGED
    assert verdict_of(cases["empty"], field) == ""
    assert verdict_of(model._default_manager.get(pk=cases["stale"].pk), field) == ""


def test_with_verdict_annotates_without_extra_queries(django_assert_num_queries):
    cases = build_cases(Photo, "image")
    with django_assert_num_queries(1):
        photos = {p.pk: p for p in with_verdict(Photo.objects.all(), "image")}
        assert verdict_of(photos[cases["flagged"].pk], "image") == Verdict.FLAGGED
        assert verdict_of(photos[cases["stale"].pk], "image") == ""
        assert is_visible(photos[cases["approved"].pk], "image")
        assert not is_visible(photos[cases["pending"].pk], "image")


@pytest.mark.parametrize(("model", "field"), MODELS)
def test_prefetch_verdicts_gives_a_page_what_with_verdict_gives(
    model, field, django_assert_num_queries
):
    build_cases(model, field)
    page = list(model._default_manager.order_by("pk"))  # a page: no longer a queryset
    annotated = {o.pk: verdict_of(o, field) for o in with_verdict(model._default_manager, field)}
    with django_assert_num_queries(1):
        assert prefetch_verdicts(page, field) == page
        assert {o.pk: verdict_of(o, field) for o in page} == annotated
        shown = {o.pk for o in page if is_visible(o, field)}
    assert shown == pks(visible(model._default_manager.all(), field))


TEMPLATE = Template(
    "{% load nsfw_moderation %}{% for p in photos %}"
    '{{ p.title }}:{% if p|nsfw_visible:"image" %}show{% endif %}'
    '{% if p|nsfw_hidden:"image" %}hide{% endif %}:{{ p|nsfw_verdict:"image" }};'
    "{% endfor %}"
)
EXPECTED = (
    "allowed:show:allowed;flagged:hide:flagged;approved:show:approved;"
    "rejected:hide:rejected;pending:hide:pending;empty:show:;stale:hide:;"
)


def titled_cases() -> None:
    for title, obj in build_cases(Photo, "image").items():
        Photo.objects.filter(pk=obj.pk).update(title=title)


def test_template_filters():
    titled_cases()
    photos = Photo.objects.order_by("pk")
    assert TEMPLATE.render(Context({"photos": photos})) == EXPECTED


def test_template_filters_on_an_annotated_queryset_take_one_query(django_assert_num_queries):
    titled_cases()
    photos = with_verdict(Photo.objects.order_by("pk"), "image")
    with django_assert_num_queries(1):
        assert TEMPLATE.render(Context({"photos": photos})) == EXPECTED


def test_template_filter_honours_show_pending():
    titled_cases()
    template = Template('{% load nsfw_moderation %}{{ p|nsfw_visible:"image" }}')
    pending = Photo.objects.get(title="pending")
    assert template.render(Context({"p": pending})) == "False"
    with moderation(SHOW_PENDING=True):
        assert template.render(Context({"p": pending})) == "True"


# --- At scale: a page of objects costs a page of index probes -------------------

UNIQUE_INDEX = "nsfw_moderation_one_row_per_field"
HELPERS = [visible, hidden, with_verdict]


def probes_the_unique_index(plan: str) -> bool:
    """Whether ``plan`` looks rows up through the unique (object, field) index, never wholesale."""
    table = ModeratedImage._meta.db_table
    if connection.vendor == "postgresql":
        scans_it = f"Seq Scan on {table}" in plan or "hashed SubPlan" in plan
        probes = f"using {UNIQUE_INDEX} on {table}" in plan or f"Scan on {UNIQUE_INDEX}" in plan
        return not scans_it and probes
    # SQLite: "SEARCH <table> USING INDEX … (<key>)" is a probe, "SCAN <table>" reads it.
    # (It names the unique constraint's index sqlite_autoindex_….)
    scans_it = bool(re.search(rf"SCAN (U0|{table})\b", plan))
    key = "(content_type_id=? AND object_id=? AND field_name=?)"
    search = rf"SEARCH (U0|{table}) USING INDEX \S+ " + re.escape(key)
    return not scans_it and bool(re.search(search, plan))


@pytest.mark.parametrize("helper", HELPERS, ids=lambda helper: helper.__name__)
@pytest.mark.parametrize(("model", "field"), MODELS)
def test_a_page_of_objects_probes_the_index(model, field, helper):
    many_objects(model, field, 1000, doublings=5)  # 32,000 rows
    page = helper(model._default_manager.order_by("-pk"), field)[:50]
    plan = page.explain()
    assert probes_the_unique_index(plan), plan
    assert len(list(page)) == 50


@pytest.mark.parametrize(("model", "field"), MODELS)
def test_the_host_changelist_column_probes_the_index_for_its_page(model, field):
    """ModerationStatusMixin loads a page's rows with one query: ``of(model, pks, fields)``."""
    objects = many_objects(model, field, 1000, doublings=5)  # 32,000 rows
    page = ModeratedImage.objects.of(model, [obj.pk for obj in objects[-100:]], [field])
    plan = page.explain()
    assert probes_the_unique_index(plan), plan
    assert page.count() == 100
