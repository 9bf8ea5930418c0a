"""An owner's view of their own object: each moderated field's state, in the uploader's words.

Owners are who ``OWNER`` names (:func:`nsfw_moderation.notices.owner_of_object`);
for anyone else the object does not exist (a 404, as for statements). The
state says where the decision stands, never a score.
"""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.core.exceptions import ValidationError
from django.db import models
from django.http import Http404
from django.utils.translation import gettext_lazy as _

from nsfw_moderation import appeals, notices, query, registry
from nsfw_moderation.models import ModeratedImage, Verdict

#: The uploader's states, with the words they read.
STATES = {
    "empty": _("No file"),
    "pending": _("Being checked"),
    "approved": _("Visible"),
    "in_review": _("Hidden until a moderator has looked at it"),
    "removed": _("Removed"),
}

_STATE_OF_VERDICT = {
    "": "pending",  # no row for the current file yet: it is on its way
    Verdict.PENDING: "pending",
    Verdict.ALLOWED: "approved",
    Verdict.APPROVED: "approved",
    Verdict.FLAGGED: "in_review",
    Verdict.BLOCKED: "removed",
    Verdict.REJECTED: "removed",
}


def own_object(user: Any, model_label: str, pk: str) -> models.Model:
    """``user``'s object ``pk`` of a moderated model; :class:`Http404` for anyone else's."""
    try:
        model = apps.get_model(model_label)
    except (LookupError, ValueError):
        raise Http404 from None
    if not registry.fields_for(model):
        raise Http404
    try:
        obj = model._default_manager.filter(pk=pk).first()
    except (ValidationError, ValueError, TypeError):
        raise Http404 from None
    owner = notices.owner_of_object(obj) if obj is not None else None
    if owner is None or user.pk is None or owner.pk != user.pk:
        raise Http404
    return obj


def status_of(user: Any, obj: models.Model) -> dict[str, Any]:
    """Where the moderation of each of ``obj``'s fields stands, for its owner ``user``."""
    fields = [_field_status(user, obj, name) for name in registry.fields_for(type(obj))]
    return {"model": obj._meta.label_lower, "pk": str(obj.pk), "files": fields}


def _field_status(user: Any, obj: models.Model, field_name: str) -> dict[str, Any]:
    verdict = query.verdict_of(obj, field_name)
    state = "empty" if not registry.file_name(obj, field_name) else _STATE_OF_VERDICT[verdict]
    return {
        "field": field_name,
        "state": state,
        "state_display": STATES[state],
        "visible": query.is_visible(obj, field_name),
        "verdict": verdict or None,
        "verdict_display": Verdict(verdict).label if verdict else None,
        "statement": _latest_statement(user, obj, field_name),
    }


def _latest_statement(user: Any, obj: models.Model, field_name: str) -> Any:
    """The public id of the newest statement ``user`` holds about this field, or ``None``."""
    statements = appeals.statements_of(user).filter(
        image__in=ModeratedImage.objects.of_object(obj, field_name)
    )
    return statements.values_list("public_id", flat=True).first()
