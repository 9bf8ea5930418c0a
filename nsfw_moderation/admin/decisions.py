"""Decisions posted from a review page (the Django admin's or Wagtail's): parse, apply, report.

A review page posts either one card's button (``decide_one=<decision>:<pk>``)
or a bulk button (``decision=<decision>`` with the ticked ``ids``), the hashes
of the images it showed (``seen=<pk>:<sha256>``) and two notes. Whatever admin
renders the page, the same function decides and tells the moderator what
happened, through Django's messages (both admins show them).
"""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from nsfw_moderation import params, review
from nsfw_moderation.models import ModeratedImage, Verdict


def decided_message(count: int, verdict: str) -> str:
    """ "N image(s) marked <verdict>." — after a decision in the queue or by an admin action."""
    message = ngettext(
        "%(count)d image marked %(verdict)s.", "%(count)d images marked %(verdict)s.", count
    )
    return message % {"count": count, "verdict": Verdict(verdict).label}


def decide_posted(
    request: HttpRequest, rows: QuerySet[ModeratedImage], decide: Callable[..., int]
) -> None:
    """Apply the posted decision to the posted rows among ``rows`` (the moderator's scope).

    ``decide(chosen, verdict, seen=..., note=..., user_note=...)`` decides the
    rows the moderator may review, reports it, and returns how many it decided;
    this function reports the rest (bad input, changed files, skipped rows).
    """
    decision, pks = posted_decision(request)
    if decision is None:
        messages.error(request, _("Choose approve or reject."))
        return
    if not pks:
        messages.warning(request, _("Select at least one image."))
        return
    chosen = rows.filter(pk__in=pks)
    seen = posted_seen(request)
    notes = {
        name: params.clean_text(request.POST.get(name, "")).strip()
        for name in ("note", "user_note")
    }
    decided = decide(chosen, review.DECISIONS[decision], seen=seen, **notes)
    changed = len(review.changed_since(chosen, seen))
    _report_changed(request, changed)
    _report_skipped(request, len(pks) - decided - changed)


def posted_decision(request: HttpRequest) -> tuple[str | None, list[int]]:
    """The posted decision name (``None`` if unknown) and the row ids it is for."""
    one = request.POST.get("decide_one", "")
    if one:
        decision, pk = params.parse_pair(one)
        return (decision if decision in review.DECISIONS else None), [] if pk is None else [pk]
    decision = request.POST.get("decision", "")
    pks = params.parse_ids(request.POST.getlist("ids"))
    return (decision if decision in review.DECISIONS else None), pks


def posted_seen(request: HttpRequest) -> dict[int, str]:
    """``{pk: sha256}`` of the images the page showed (``seen=<pk>:<sha256>``)."""
    pairs = (value.partition(":") for value in request.POST.getlist("seen"))
    parsed = ((params.parse_id(pk), sha256) for pk, _sep, sha256 in pairs)
    return {pk: sha256 for pk, sha256 in parsed if pk is not None}


def _report_changed(request: HttpRequest, changed: int) -> None:
    if changed:
        messages.warning(
            request,
            ngettext(
                "%(count)d image was not decided: its file changed after the page was "
                "shown. Look at it again.",
                "%(count)d images were not decided: their files changed after the page "
                "was shown. Look at them again.",
                changed,
            )
            % {"count": changed},
        )


def _report_skipped(request: HttpRequest, skipped: int) -> None:
    if skipped > 0:
        messages.warning(
            request,
            ngettext(
                "%(count)d image was not decided: it is missing or being classified.",
                "%(count)d images were not decided: they are missing or being classified.",
                skipped,
            )
            % {"count": skipped},
        )
