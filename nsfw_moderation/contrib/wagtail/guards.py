"""Withheld images stay out of sight: no renditions, no served files, no insertion by editors.

Wagtail has no hook before a rendition is made or served, nor one that
validates every admin form, so :func:`install` wraps the few methods all of
them pass through, once, at start-up:

- ``AbstractImage.get_rendition`` / ``get_renditions`` raise
  :class:`RenditionWithheld` (a ``SourceImageIOError``), which Wagtail's own
  ``{% image %}``/``{% srcset_image %}``/``{% picture %}`` tags already turn into
  an empty "not found" ``<img>``;
- ``ServeView.get`` (``wagtail.images.views.serve``) answers 404 — raised, so no
  public ``Cache-Control`` is added;
- ``Filter.run``, which every rendition and Wagtail's own admin preview view
  (``images/<id>/preview/<spec>/``, open to whoever may change images) goes
  through, answers 404: no re-encoding of a withheld image at any size;
- ``ImageRenditionField`` and ``ImageDownloadUrlField`` (Wagtail's API) give
  ``null``: neither a rendition nor the original file's URL;
- the image chooser's "chosen" step (which asks for a preview rendition
  without Wagtail's "not found" fallback) gets that fallback;
- ``WagtailAdminModelForm.clean`` (every page, snippet and settings form of
  Wagtail's admin, their inline panels too) refuses an image newly put in a
  field or a StreamField, unless the editor may review.

The image listing and the chooser fetch the verdicts of their page in one query
(:func:`~nsfw_moderation.contrib.wagtail.withheld.prefetch_verdicts`), so these
guards and the verdict badges ask nothing per image.

Renditions already made of an image are deleted when it becomes withheld
(:func:`drop_renditions`), so a web server serving ``MEDIA_ROOT`` directly does
not keep serving them.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.db import models
from django.http import Http404
from django.utils.translation import gettext as _
from wagtail.admin.forms.models import WagtailAdminModelForm
from wagtail.admin.views.generic.chooser import ChosenResponseMixin
from wagtail.blocks import StreamValue
from wagtail.blocks.stream_block import StreamBlockValidationError
from wagtail.images.api.fields import ImageRenditionField
from wagtail.images.api.v2.serializers import ImageDownloadUrlField
from wagtail.images.models import AbstractImage, Filter, SourceImageIOError
from wagtail.images.shortcuts import get_rendition_or_not_found
from wagtail.images.utils import verify_signature
from wagtail.images.views.chooser import BaseImageChooseView, ImageChosenResponseMixin
from wagtail.images.views.images import IndexView
from wagtail.images.views.serve import ServeView

from nsfw_moderation.admin.base import may_review
from nsfw_moderation.contrib.wagtail.withheld import is_withheld, prefetch_verdicts
from nsfw_moderation.models import ModeratedImage
from nsfw_moderation.query import shown_verdicts

#: Marks a wrapped method, so that installing twice wraps once.
_GUARDED = "_nsfw_moderation_guarded"
# An image embedded in rich text, as Wagtail stores it.
_EMBEDDED_IMAGE = re.compile(r"<embed\b[^>]*\bembedtype=\"image\"[^>]*>")
_EMBED_ID = re.compile(r"\bid=\"(\d+)\"")


class RenditionWithheld(SourceImageIOError):
    """The image is withheld by moderation: no rendition of it may be made or served."""


def install() -> None:
    """Wrap the methods listed in this module's docstring (idempotent)."""
    _wrap(AbstractImage, "get_rendition", _guard_rendition)
    _wrap(AbstractImage, "get_renditions", _guard_rendition)
    _wrap(ServeView, "get", _guard_serve)
    _wrap(Filter, "run", _guard_filter)
    _wrap(ImageRenditionField, "to_representation", _guard_api)
    _wrap(ImageDownloadUrlField, "to_representation", _guard_api)
    _wrap(ImageChosenResponseMixin, "get_chosen_response_data", _guard_chosen)
    _wrap(WagtailAdminModelForm, "clean", _guard_form)
    _wrap(IndexView, "decorate_paginated_queryset", _prefetch_page)
    # The chooser's one call that sees its whole page before the badges do.
    _wrap(BaseImageChooseView, "get_usage_counts", _prefetch_page)


def _wrap(owner: type, name: str, guard: Callable[..., Any]) -> None:
    original = getattr(owner, name)
    if getattr(original, _GUARDED, False):
        return

    @functools.wraps(original)
    def method(*args: Any, **kwargs: Any) -> Any:
        return guard(original, *args, **kwargs)

    setattr(method, _GUARDED, True)
    setattr(owner, name, method)


# --- Renditions, the serve view, the API ----------------------------------------


def _guard_rendition(original: Callable[..., Any], image: Any, *filters: Any) -> Any:
    if is_withheld(image):
        raise RenditionWithheld(f"Image {image.pk} is withheld by moderation.")
    return original(image, *filters)


def _guard_filter(
    original: Callable[..., Any], spec: Any, image: Any, *args: Any, **kwargs: Any
) -> Any:
    if is_withheld(image):
        raise Http404  # the admin's preview view; renditions stop earlier, at get_rendition
    return original(spec, image, *args, **kwargs)


def _guard_serve(
    original: Callable[..., Any],
    view: Any,
    request: Any,
    signature: str,
    image_id: str,
    filter_spec: str,
    *args: Any,
    **kwargs: Any,
) -> Any:
    # A bad signature stays Wagtail's 403: only a signed URL learns anything.
    if verify_signature(signature.encode(), image_id, filter_spec, key=view.key):
        image = view.model._default_manager.filter(id=image_id).first()
        if image is not None and is_withheld(image):
            raise Http404
    return original(view, request, signature, image_id, filter_spec, *args, **kwargs)


def _guard_api(original: Callable[..., Any], field: Any, image: Any) -> Any:
    if is_withheld(image):
        return None
    return original(field, image)


def _guard_chosen(
    original: Callable[..., Any], view: Any, image: Any, *args: Any, **kwargs: Any
) -> Any:
    try:
        return original(view, image, *args, **kwargs)
    except RenditionWithheld:
        # What Wagtail's widget does for an image without a file: the "not
        # found" preview, so that a moderator (or, with "mark", an editor)
        # can still choose it, and a new upload can be chosen before its verdict.
        data: dict[str, Any] = ChosenResponseMixin.get_chosen_response_data(view, image)
        preview = get_rendition_or_not_found(image, "max-165x165")
        data["preview"] = {"url": preview.url, "width": preview.width, "height": preview.height}
        data["default_alt_text"] = image.default_alt_text
        return data


def _prefetch_page(original: Callable[..., Any], view: Any, images: Any) -> Any:
    # Sets the verdicts on the page's own objects (a paginator page keeps the list it made).
    prefetch_verdicts(images)
    return original(view, images)


# --- Admin forms ------------------------------------------------------------------


def _guard_form(original: Callable[..., Any], form: forms.ModelForm) -> Any:
    cleaned = original(form)
    user = getattr(form, "for_user", None)
    if user is None or may_review(user):
        return cleaned
    # Inline panels' forms are not given the user (modelcluster passes it only
    # where a panel asks): tell them, before they validate after this form.
    for formset in getattr(form, "formsets", {}).values():
        for child in formset.forms:
            child.for_user = user
    for name, value in list(form.cleaned_data.items()):
        before = {image.pk for image in images_in(getattr(form.instance, name, None))}
        refused = [
            image for image in images_in(value) if image.pk not in before and is_withheld(image)
        ]
        if refused:
            form.add_error(name, _refusal(value, refused))
    return cleaned


def _refusal(value: Any, images: list[Any]) -> ValidationError:
    message = _(
        "“%(title)s” is withheld by image moderation and cannot be used here. Choose another image."
    ) % {"title": images[0].title}
    if isinstance(value, StreamValue):
        # A StreamField shows its errors only in this form.
        return StreamBlockValidationError(non_block_errors=[ValidationError(message)])
    return ValidationError(message)


def images_in(value: Any) -> Iterator[Any]:
    """Every Wagtail image in a field's value: a chosen image, a stream's blocks, rich text."""
    if isinstance(value, AbstractImage):
        yield value
    elif isinstance(value, StreamValue):
        for child in value:
            yield from images_in(child.value)
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from images_in(item)
    elif isinstance(value, list | tuple) or type(value).__name__ == "ListValue":
        for item in value:
            yield from images_in(item)
    elif isinstance(value, str) or hasattr(value, "source"):
        yield from _embedded_images(getattr(value, "source", value))


def _embedded_images(html: str) -> Iterator[Any]:
    from wagtail.images import get_image_model

    ids = [
        int(found.group(1))
        for embed in _EMBEDDED_IMAGE.findall(html or "")
        if (found := _EMBED_ID.search(embed))
    ]
    if ids:
        yield from get_image_model()._default_manager.filter(pk__in=ids)


# --- Renditions made before ---------------------------------------------------------


def drop_renditions(sender: Any, instance: ModeratedImage, **kwargs: Any) -> None:
    """Delete the renditions of an image that a verdict has just withheld."""
    model = instance.content_type.model_class()
    if model is None or not issubclass(model, AbstractImage):
        return
    if instance.verdict in shown_verdicts():
        return
    image: models.Model | None = model._default_manager.filter(pk=instance.object_id).first()
    if image is not None:
        # Wagtail deletes the files after the commit (its post_delete receiver).
        image.renditions.all().delete()  # type: ignore[attr-defined]
