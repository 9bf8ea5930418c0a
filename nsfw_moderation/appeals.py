"""The owner's side of a decision: read the statement of reasons, appeal once.

Mount the views with ``path("moderation/", include("nsfw_moderation.urls"))``.
Only the owner that ``OWNER`` found when the statement was written may see it
or appeal (anyone else gets a 404, so statements cannot be probed); an appeal
is one short text, at most one per statement, at most ``APPEALS_PER_HOUR``
per user and hour (counted under a lock on the user's appeals, so concurrent
posts cannot exceed it). Every appeal is an ``appealed`` event in the audit
trail. No page here may be cached: each shows one user's decisions.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from uuid import UUID

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import IntegrityError, connections, models
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import resolve_url
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from nsfw_moderation import notices, previews
from nsfw_moderation.conf import conf
from nsfw_moderation.db import moderation_db, write_transaction
from nsfw_moderation.models import Appeal, ModerationEvent, Statement

APPEAL_MAX_LENGTH = 2000


class AppealForm(forms.Form):
    text = forms.CharField(
        label=gettext_lazy("Why is the decision wrong?"),
        max_length=APPEAL_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 5}),
    )


class AppealRefused(Exception):
    """The appeal cannot be filed; the message says why."""


class TooManyAppeals(AppealRefused):
    """The user has filed ``APPEALS_PER_HOUR`` appeals in the last hour."""


def appealable(statement: Statement) -> bool:
    """Is ``statement`` still open to an appeal: none yet, same bytes, restriction still on?"""
    row = statement.image
    return (
        not Appeal.objects.filter(statement=statement).exists()
        and row is not None
        and row.sha256 == statement.sha256
        and row.verdict == statement.verdict
    )


def file_appeal(statement: Statement, user: Any, text: str) -> Appeal:
    """Record ``user``'s appeal against ``statement``, audited; raises :class:`AppealRefused`."""
    if statement.owner_id is None or statement.owner_id != user.pk:
        raise AppealRefused(_("Only the owner of the image may appeal."))
    try:
        with write_transaction():
            # Counted and written in one transaction, under the user's lock.
            lock_appeals_of(user)
            if _sent_last_hour(user) >= conf.APPEALS_PER_HOUR:
                raise TooManyAppeals(_("You have sent too many appeals. Try again in an hour."))
            if not appealable(statement):
                raise AppealRefused(_("This decision can no longer be appealed."))
            appeal = Appeal.objects.create(statement=statement, owner=user, text=text)
            row = statement.image
            assert row is not None
            kind = ModerationEvent.Kind.APPEALED
            ModerationEvent.record(row, kind, verdict_before=row.verdict, actor=user, note=text)
    except IntegrityError:
        raise AppealRefused(_("This decision can no longer be appealed.")) from None
    return appeal


def _sent_last_hour(user: Any) -> int:
    since = timezone.now() - timedelta(hours=1)
    return Appeal.objects.filter(owner=user, created_at__gte=since).count()


def lock_appeals_of(user: Any) -> None:
    """Until the transaction ends, no other transaction files an appeal of ``user``'s.

    Under PostgreSQL's READ COMMITTED two transactions would both count N-1
    appeals and both insert: a transaction-scoped advisory lock keyed on the
    user serializes them (the user's row may live in another database). On
    SQLite, ``write_transaction`` began ``IMMEDIATE``: holding the write lock is
    the lock. Elsewhere, the user's statements are locked, in one order.
    """
    using = moderation_db()
    connection = connections[using]
    if connection.vendor == "sqlite":
        return
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_lock_key(user.pk)])
        return
    statements = Statement.objects.using(using).select_for_update().filter(owner=user)
    list(statements.order_by("pk").values_list("pk", flat=True))


def _lock_key(pk: Any) -> int:
    """A signed 64-bit advisory lock key for the appeals of user ``pk``."""
    digest = hashlib.blake2b(f"nsfw_moderation.appeals:{pk}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def statements_of(user: Any) -> models.QuerySet[Statement]:
    """The statements of reasons whose owner is ``user``, newest first."""
    return Statement.objects.filter(owner_id=user.pk)


def own_statement(user: Any, public_id: UUID | str) -> Statement:
    """``user``'s statement ``public_id``; :class:`~django.http.Http404` for anyone else's.

    One answer for "not yours" and "no such statement", so that nobody can
    probe which statements exist.
    """
    statement = Statement.objects.select_related("image").filter(public_id=public_id).first()
    if statement is None or statement.owner_id is None or statement.owner_id != user.pk:
        raise Http404
    return statement


@never_cache
@login_required
@require_http_methods(["GET"])
def statement_list_view(request: HttpRequest) -> TemplateResponse:
    """The user's statements of reasons, newest first, each with where it stands now."""
    statements = list(statements_of(request.user).select_related("image", "appeal__outcome")[:100])
    objects = notices.hosted_objects(statements)
    context = {
        **_page_context(_("Decisions about your images")),
        "statements": statements,  # as before, for templates a site overrode
        "decisions": [_decision(s, objects.get(_key(s))) for s in statements],
    }
    return TemplateResponse(request, "nsfw_moderation/appeals/statement_list.html", context)


@dataclass(frozen=True)
class OwnerDecision:
    """One statement as its owner's pages show it."""

    statement: Statement
    name: str
    description: str
    state: notices.OwnerState
    preview_url: str


def _decision(statement: Statement, obj: Any) -> OwnerDecision:
    return OwnerDecision(
        statement=statement,
        name=notices.object_name(statement, obj),
        description=notices.object_description(statement, obj),
        state=notices.owner_state(statement),
        preview_url=reverse("nsfw_moderation:statement_preview", args=[statement.public_id]),
    )


def _key(statement: Statement) -> tuple[int | None, str]:
    return (statement.content_type_id, statement.object_id)


def _page_context(title: str) -> dict[str, Any]:
    """What the layout (``nsfw_moderation/layouts/base.html``) reads besides the page's blocks."""
    # Where "back to the site" leads: where the site sends users once logged in, if it says.
    overridden = settings.is_overridden("LOGIN_REDIRECT_URL")  # type: ignore[misc]
    site = settings.LOGIN_REDIRECT_URL if overridden else "/"
    return {"title": title, "site_url": resolve_url(site)}


@never_cache
@login_required
@require_http_methods(["GET"])
def statement_preview_view(request: HttpRequest, public_id: UUID) -> HttpResponse:
    """The stored preview of the image a statement is about, for its owner only (else 404)."""
    statement = own_statement(request.user, public_id)
    # The worker's re-encoded thumbnail: this process never serves the upload's bytes.
    return previews.preview_response(*previews.statement_preview(statement))


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def statement_view(request: HttpRequest, public_id: UUID) -> HttpResponse:
    """One statement of reasons; its owner may appeal against it here, once."""
    statement = own_statement(request.user, public_id)
    form = AppealForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            file_appeal(statement, request.user, form.cleaned_data["text"])
        except AppealRefused as refused:
            messages.error(request, str(refused))
        else:
            messages.success(request, _("Thank you. A moderator will look at your appeal."))
        return HttpResponseRedirect(reverse("nsfw_moderation:statement", args=[public_id]))
    appeal = Appeal.objects.filter(statement=statement).select_related("outcome").first()
    context = {
        **_page_context(_("Statement of reasons")),
        "decision": _decision(statement, notices.hosted_objects([statement]).get(_key(statement))),
        "statement": statement,
        "reasons": notices.reasons(statement),
        "appeal": appeal,
        "outcome": getattr(appeal, "outcome", None) if appeal else None,
        "form": form if appealable(statement) else None,
    }
    return TemplateResponse(request, "nsfw_moderation/appeals/statement.html", context)
