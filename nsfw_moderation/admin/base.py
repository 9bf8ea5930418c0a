"""What the moderator pages and the host-app helpers share: the stylesheet, URLs, permission."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ChangeList
from django.contrib.auth import get_permission_codename
from django.db import models
from django.http import HttpRequest, HttpResponseBase
from django.urls import NoReverseMatch, reverse

from nsfw_moderation import params
from nsfw_moderation.models import ModeratedImage

CSS = "nsfw_moderation/admin.css"


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
        # What a reviewer reads before (re-)deciding.
        return super().has_view_permission(request, obj) or may_review(request.user)  # type: ignore[misc]
