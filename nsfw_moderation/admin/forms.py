"""The review queue's filters: verdict, status, score range, content type, model, dates, order.

The queue shows by default what waits for a person: flagged images and the
audit samples (automatic verdicts drawn for a check, ``AUDIT_SAMPLE_RATE``).
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.contenttypes.models import ContentType
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from nsfw_moderation.admin import listing
from nsfw_moderation.models import ModeratedImage, Status, Verdict

#: (field, descending) pairs; the rows without a score come last.
ORDERINGS: dict[str, listing.Ordering] = {
    "oldest": (("created_at", False), ("id", False)),
    "newest": (("created_at", True), ("id", True)),
    "score": (("score", True), ("created_at", False), ("id", False)),
}

#: The "verdict" choice of what waits for a person: flagged images and audit samples.
NEEDS_REVIEW = "needs_review"
#: The "verdict" choice of audit samples only, whatever their verdict.
AUDIT_SAMPLES = "audit"


class QueueFilterForm(forms.Form):
    """What part of the queue to show. Unset fields do not filter."""

    verdict = forms.ChoiceField(
        label=gettext_lazy("Verdict"),
        choices=[
            (NEEDS_REVIEW, gettext_lazy("Needs review (flagged and audit samples)")),
            (AUDIT_SAMPLES, gettext_lazy("Audit samples")),
            ("", gettext_lazy("Any verdict")),
            *Verdict.choices,
        ],
        required=False,
    )
    status = forms.ChoiceField(
        label=gettext_lazy("Status"),
        choices=[("", gettext_lazy("Any status")), *Status.choices],
        required=False,
    )
    score_min = forms.FloatField(
        label=gettext_lazy("Score from"), min_value=0, max_value=1, required=False
    )
    score_max = forms.FloatField(
        label=gettext_lazy("Score to"), min_value=0, max_value=1, required=False
    )
    content_type = forms.ModelChoiceField(
        label=gettext_lazy("Content type"),
        queryset=ContentType.objects.none(),
        empty_label=gettext_lazy("Any content type"),
        required=False,
    )
    model_name = forms.ChoiceField(label=gettext_lazy("Model"), required=False)
    date_from = forms.DateField(
        label=gettext_lazy("Uploaded from"),
        widget=forms.DateInput(attrs={"type": "date"}),
        required=False,
    )
    date_to = forms.DateField(
        label=gettext_lazy("Uploaded to"),
        widget=forms.DateInput(attrs={"type": "date"}),
        required=False,
    )
    order = forms.ChoiceField(
        label=gettext_lazy("Order"),
        choices=[
            ("oldest", gettext_lazy("Oldest first")),
            ("newest", gettext_lazy("Newest first")),
            ("score", gettext_lazy("Highest score first")),
        ],
        required=False,
    )

    def __init__(
        self, *args: Any, rows: QuerySet[ModeratedImage] | None = None, **kwargs: Any
    ) -> None:
        """``rows``: what the moderator may see (the choices offered come from it)."""
        super().__init__(*args, **kwargs)
        rows = ModeratedImage.objects.all() if rows is None else rows
        used = [ct.pk for ct in listing.content_types_in(rows)]
        self.fields["content_type"].queryset = ContentType.objects.filter(pk__in=used)  # type: ignore[attr-defined]
        self.fields["model_name"].choices = [  # type: ignore[attr-defined]
            ("", _("Any model")),
            *((name, name) for name in listing.model_names_in(rows)),
        ]

    def filter(self, rows: QuerySet[ModeratedImage]) -> QuerySet[ModeratedImage] | listing.Merged:
        """``rows`` narrowed by every valid field, in order; invalid fields are ignored."""
        self.is_valid()
        data = self.cleaned_data
        verdict = data.get("verdict")
        lookups = {
            "verdict": None if verdict in (NEEDS_REVIEW, AUDIT_SAMPLES) else verdict,
            "audit": True if verdict == AUDIT_SAMPLES else None,
            "status": data.get("status"),
            "score__gte": data.get("score_min"),
            "score__lte": data.get("score_max"),
            "content_type": data.get("content_type"),
            "model_name": data.get("model_name"),
            "created_at__date__gte": data.get("date_from"),
            "created_at__date__lte": data.get("date_to"),
        }
        rows = rows.filter(
            **{key: value for key, value in lookups.items() if value not in (None, "")}
        )
        ordering = ORDERINGS.get(data.get("order") or "oldest", ORDERINGS["oldest"])
        if verdict == NEEDS_REVIEW:
            return needing_review(rows, ordering)
        return listing.order_by(rows, ordering)


def needing_review(rows: QuerySet[ModeratedImage], ordering: listing.Ordering) -> listing.Merged:
    """The flagged images of ``rows`` and its audit samples, each once, in ``ordering``.

    Two parts merged, not one ``OR``: each is read in order from its own index
    (flagged rows by date, the partial index of audit samples), so a page
    reads a page's worth however many flagged rows wait, and the flagged ones
    are counted from the kept counts.
    """
    flagged = rows.filter(verdict=Verdict.FLAGGED)
    samples = rows.filter(audit=True).exclude(verdict=Verdict.FLAGGED)
    return listing.Merged([flagged, samples], ordering)


def queue_filters(request: HttpRequest, rows: QuerySet[ModeratedImage]) -> QueueFilterForm:
    # The queue is for what waits for a person unless the moderator asks
    # otherwise; an explicit empty ``verdict=`` means "any verdict".
    data = request.GET.copy()
    data.setdefault("verdict", NEEDS_REVIEW)
    return QueueFilterForm(data, rows=rows)
