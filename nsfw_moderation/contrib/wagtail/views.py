"""The review and appeal queues in Wagtail's admin: the Django admin's logic, Wagtail's chrome.

Who may review, and which rows they see, is what the site's Django admin says
(:func:`~nsfw_moderation.admin.base.visible_rows` and
:func:`~nsfw_moderation.admin.base.may_review_on` on the default admin site, so
a ``ModeratedImageAdmin`` that scopes rows per tenant scopes these pages too);
the admin's URLs need not be mounted. Filters, decisions and previews are the
admin's own functions; so are the appeals in scope, who may decide them, and
the decision (:mod:`nsfw_moderation.admin.appeals`).
"""

from __future__ import annotations

import functools
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseBase, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET, require_POST
from django.views.generic import TemplateView
from wagtail.admin.views.generic.base import WagtailAdminTemplateMixin

from nsfw_moderation import previews, review, stats
from nsfw_moderation.admin import appeals, decisions
from nsfw_moderation.admin.base import deny_framing, may_review_on, visible_rows
from nsfw_moderation.admin.forms import queue_filters
from nsfw_moderation.admin.listing import CountingPaginator
from nsfw_moderation.admin.moderation import PAGE_SIZE, PREFERENCES, PREFERENCES_KEY, Card
from nsfw_moderation.models import Appeal, ModeratedImage

NAMESPACE = "nsfw_moderation_wagtail"


def rows_for(request: HttpRequest) -> QuerySet[ModeratedImage]:
    """The rows ``request.user`` may review; 403 for a user without the review permission."""
    if not may_review_on(admin.site, request):
        raise PermissionDenied
    return visible_rows(admin.site, request)


def url(view: str, *args: Any) -> str:
    return reverse(f"{NAMESPACE}:{view}", args=args)


class ModerationPage(WagtailAdminTemplateMixin, TemplateView):
    """A moderation page: reviewers only, never framed, the same links everywhere."""

    header_icon = "warning"

    @method_decorator(deny_framing)
    @method_decorator(require_GET)
    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        self.rows = rows_for(request)
        return super().dispatch(request, *args, **kwargs)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        names = ("review", "decide", "dashboard", "appeals")
        links = {f"{name}_url": url(name) for name in names}
        return {**super().get_context_data(**kwargs), **links}


class ReviewQueueView(ModerationPage):
    template_name = "nsfw_moderation_wagtail/review_queue.html"
    page_title = _("Review queue")

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        form = queue_filters(self.request, self.rows)
        rows = form.filter(self.rows.select_related("content_type", "reviewed_by"))
        page = CountingPaginator(rows, PAGE_SIZE).get_page(self.request.GET.get("p"))
        stored = self.request.session.get(PREFERENCES_KEY, {})
        return {
            **super().get_context_data(**kwargs),
            "form": form,
            "page": page,
            "cards": [card(row) for row in page.object_list],
            "preferences": {name: bool(stored.get(name)) for name in PREFERENCES},
            "preferences_url": url("preferences"),
            "decisions": review.DECISIONS,
        }


class DashboardView(ModerationPage):
    template_name = "nsfw_moderation_wagtail/dashboard.html"
    page_title = _("Moderation dashboard")

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        figures = stats.dashboard_stats(timezone.now(), self.rows)
        return {**super().get_context_data(**kwargs), **figures}


class AppealQueueView(ModerationPage):
    template_name = "nsfw_moderation_wagtail/appeal_queue.html"
    page_title = _("Appeal queue")

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        waiting = open_appeals(self.request)[: appeals.QUEUE_SIZE]
        return {
            **super().get_context_data(**kwargs),
            "cards": [appeal_card(self.request, appeal) for appeal in waiting],
            "decide_appeal_url": url("decide_appeal"),
        }


def open_appeals(request: HttpRequest) -> QuerySet[Appeal]:
    """The appeals waiting in ``request.user``'s scope, as the Django admin's queue has them."""
    return appeals.open_appeals(appeals.in_scope(admin.site, request))


def appeal_card(request: HttpRequest, appeal: Appeal) -> appeals.AppealCard:
    image_id = appeal.statement.image_id
    preview = url("preview", image_id) if image_id else None
    return appeals.appeal_card(admin.site, request, appeal, preview)


@deny_framing
@require_POST
def decide_appeal_view(request: HttpRequest) -> HttpResponse:
    """Uphold an appeal or keep the restriction: the Django admin's decision."""
    rows_for(request)
    appeals.decide_posted(admin.site, request, open_appeals(request))
    return HttpResponseRedirect(url("appeals"))


def card(row: ModeratedImage) -> Card:
    """One image of the grid: its blurred preview, and the host object's Wagtail page if any."""
    ct = row.content_type
    query = urlencode({"sha256": row.sha256})
    return Card(
        row=row,
        preview_url=f"{url('preview', row.pk)}?{query}",
        change_url=None,
        object_url=_edit_url(row),
        object_label=f"{ct.name} {row.object_id}",
    )


def _edit_url(row: ModeratedImage) -> str | None:
    """The Wagtail edit page of a moderated image (other models have none here)."""
    if (row.content_type.app_label, row.content_type.model) != _image_model_key():
        return None
    try:
        return reverse("wagtailimages:edit", args=[row.object_id])
    except NoReverseMatch:
        return None


def _image_model_key() -> tuple[str, str]:
    from wagtail.images import get_image_model

    opts = get_image_model()._meta
    return opts.app_label, opts.model_name or ""


@deny_framing
@require_POST
def decide_view(request: HttpRequest) -> HttpResponse:
    """Approve or reject the posted rows: the Django admin's decision, for Wagtail's queue."""
    decisions.decide_posted(request, rows_for(request), functools.partial(_decide, request))
    return HttpResponseRedirect(_next_url(request))


def _decide(
    request: HttpRequest, chosen: QuerySet[ModeratedImage], verdict: str, **options: Any
) -> int:
    """Decide the rows of ``chosen`` that the moderator may review; say how many."""
    rows = [row for row in chosen if may_review_on(admin.site, request, row)]
    events = review.decide_many(rows, verdict, user=request.user, **options)
    if events:
        messages.success(request, decisions.decided_message(len(events), verdict))
    return len(events)


@deny_framing
@require_POST
def preferences_view(request: HttpRequest) -> HttpResponse:
    """Remember "reveal all" and "grayscale" for this session (as the admin's queue does)."""
    rows_for(request)
    request.session[PREFERENCES_KEY] = {name: name in request.POST for name in PREFERENCES}
    return HttpResponseRedirect(_next_url(request))


@require_GET
def preview_view(request: HttpRequest, pk: int) -> HttpResponse:
    """The worker's re-encoded preview, as the Django admin serves it."""
    row = get_object_or_404(rows_for(request), pk=pk)
    if not may_review_on(admin.site, request, row):
        raise PermissionDenied
    return previews.preview_response(*previews.row_preview(row, request.GET.get("sha256")))


def _next_url(request: HttpRequest) -> str:
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return url("review")
