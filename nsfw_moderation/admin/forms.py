"""The review queue's filters: verdict, status, score range, content type, model, dates, order."""

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

ORDERINGS = {
    "oldest": ("created_at", "pk"),
    "newest": ("-created_at", "-pk"),
    "score": ("-score", "created_at", "pk"),
}


class QueueFilterForm(forms.Form):
    """What part of the queue to show. Unset fields do not filter."""

    verdict = forms.ChoiceField(
        label=gettext_lazy("Verdict"),
        choices=[("", gettext_lazy("Any verdict")), *Verdict.choices],
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

    def filter(self, rows: QuerySet[ModeratedImage]) -> QuerySet[ModeratedImage]:
        """``rows`` narrowed by every valid field; invalid fields are ignored."""
        self.is_valid()
        data = self.cleaned_data
        lookups = {
            "verdict": data.get("verdict"),
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
        return rows.order_by(*ORDERINGS.get(data.get("order") or "oldest", ORDERINGS["oldest"]))


def queue_filters(request: HttpRequest, rows: QuerySet[ModeratedImage]) -> QueueFilterForm:
    # The queue is for flagged images unless the moderator asks otherwise;
    # an explicit empty ``verdict=`` means "any verdict".
    data = request.GET.copy()
    data.setdefault("verdict", Verdict.FLAGGED)
    return QueueFilterForm(data, rows=rows)
