"""What the moderator pages and the host-app helpers share: stylesheet, URLs, permission, scope.

A site scopes its moderators (e.g. per tenant) in one place: the
:class:`~nsfw_moderation.admin.ModeratedImageAdmin` it registers, through
``get_queryset`` and ``has_review_permission``. The admins of the records
about those rows (appeals, statements, events, the blocklist, bank entries)
read that same admin, on their own site, through :class:`ScopedByImageMixin`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from django import forms
from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ChangeList
from django.contrib.auth import get_permission_codename
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponseBase
from django.urls import NoReverseMatch, reverse

from nsfw_moderation import params
from nsfw_moderation.models import ModeratedImage

CSS = "nsfw_moderation/admin.css"

_R = TypeVar("_R", bound=models.Model)


def may_review(user: Any) -> bool:
    """May ``user`` see previews and approve or reject images (``review_moderatedimage``)?"""
    opts = ModeratedImage._meta
    return bool(user.has_perm(f"{opts.app_label}.{get_permission_codename('review', opts)}"))


def admin_url(site_name: str, model: type[models.Model], view: str, *args: Any) -> str | None:
    """The URL of ``view`` (``"change"``, ``"review"``…) of ``model`` in admin site ``site_name``.

    Reversed in that site's own namespace, so a page never links into another
    site; ``None`` when the site does not register ``model``.
    """
    opts = model._meta
    try:
        return reverse(f"{site_name}:{opts.app_label}_{opts.model_name}_{view}", args=args)
    except NoReverseMatch:
        return None


def deny_framing(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
    """No page of ``view`` may be shown in a frame, whatever the host's middleware.

    A framed review page could be overlaid to trick a moderator into clicking
    "approve" (clickjacking); ``XFrameOptionsMiddleware`` is the host's to
    remove, so these pages say it themselves, in both headers browsers read.
    """

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> HttpResponseBase:
        response = view(*args, **kwargs)
        response["X-Frame-Options"] = "DENY"
        policy = response.get("Content-Security-Policy")
        if policy is None:
            response["Content-Security-Policy"] = "frame-ancestors 'none'"
        elif "frame-ancestors" not in policy:
            response["Content-Security-Policy"] = f"{policy}; frame-ancestors 'none'"
        return response

    return wrapper


class StylesheetMixin:
    """An admin whose pages load the moderation stylesheet (:data:`CSS`)."""

    @property
    def media(self) -> forms.Media:
        return super().media + forms.Media(css={"all": [CSS]})  # type: ignore[misc]


class DenyFramingMixin:
    """An admin whose list, change and history pages cannot be framed (:func:`deny_framing`)."""

    def changelist_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        return deny_framing(super().changelist_view)(request, *args, **kwargs)  # type: ignore[misc]

    def change_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        return deny_framing(super().change_view)(request, *args, **kwargs)  # type: ignore[misc]

    def history_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        return deny_framing(super().history_view)(request, *args, **kwargs)  # type: ignore[misc]


# --- Scope: what a moderator may see and decide on a site ----------------------------


def image_admin(site: admin.AdminSite) -> Any:
    """The admin of :class:`ModeratedImage` on ``site``: where the site scopes its moderators.

    ``None`` when the site registers none: then nothing is scoped (every row,
    and the review permission alone).
    """
    return site._registry.get(ModeratedImage)


def visible_rows(site: admin.AdminSite, request: HttpRequest) -> QuerySet[ModeratedImage]:
    """The moderated rows ``request.user`` may see on ``site``."""
    registered = image_admin(site)
    if registered is None:
        return ModeratedImage.objects.all()
    rows: QuerySet[ModeratedImage] = registered.get_queryset(request)
    return rows


def sees_every_row(rows: QuerySet[ModeratedImage]) -> bool:
    """Does ``rows`` (a :func:`visible_rows`) hold every row, unscoped?

    Only then are the records without a row (their object deleted, a bank's
    changes, imported bank entries) shown: nothing says whose they were, so
    a scoped moderator never sees them.
    """
    query = rows.query
    return not (query.has_filters() or query.is_sliced or query.combinator)


def may_review_on(site: admin.AdminSite, request: HttpRequest, row: Any = None) -> bool:
    """May ``request.user`` review on ``site`` (``row``: that row; ``None``: any of theirs)?"""
    registered = image_admin(site)
    if registered is None or not hasattr(registered, "has_review_permission"):
        return may_review(request.user)
    return bool(registered.has_review_permission(request, row))


class ScopedByImageMixin:
    """Records about moderated rows, scoped as the site's :class:`ModeratedImageAdmin` scopes them.

    Lists, change and history pages, actions and inlines all read
    ``get_queryset``: a record is in it when its row (``image_path``) is one
    the moderator sees; a record whose row is gone only for those who see
    every row (:func:`sees_every_row`).
    """

    admin_site: admin.AdminSite
    #: The path from the record to its moderated row.
    image_path = "image"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        records: QuerySet[Any] = super().get_queryset(request)  # type: ignore[misc]
        return scoped_by_image(records, self.admin_site, request, self.image_path)


def scoped_by_image(
    records: QuerySet[_R], site: admin.AdminSite, request: HttpRequest, image_path: str
) -> QuerySet[_R]:
    """The ``records`` whose row (at ``image_path``) ``request.user`` sees on ``site``."""
    rows = visible_rows(site, request)
    if sees_every_row(rows):
        return records
    return records.filter(**{f"{image_path}__in": rows.values("pk")})


class CleanLookupsMixin:
    """A changelist asked to filter or search by text holding a NUL shows its unfiltered page.

    PostgreSQL refuses NUL in any text, so such a filter (the admin's own
    ``verdict__exact``, ``kind__exact`` as much as ours) would fail as the page
    renders, a 500. Refused up front, the admin redirects to the list with
    ``?e=1``, as it does for any lookup it cannot apply.
    """

    def get_changelist_instance(self, request: HttpRequest) -> ChangeList:
        if params.has_nul(request.GET.lists()):
            raise IncorrectLookupParameters("A NUL character in the query string.")
        return super().get_changelist_instance(request)  # type: ignore[misc]


class ReadOnlyMixin(CleanLookupsMixin):
    """Pages of a record: nobody adds to it, changes it or deletes from it."""

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class ReadOnlyForReviewersMixin(ReadOnlyMixin):
    """A read-only record that reviewers may read, whatever their model permissions."""

    def has_view_permission(self, request: HttpRequest, obj: object = None) -> bool:
        # What a reviewer reads before (re-)deciding; the site's own review permission.
        site = self.admin_site  # type: ignore[attr-defined]
        allowed = super().has_view_permission(request, obj)  # type: ignore[misc]
        return bool(allowed or may_review_on(site, request))
