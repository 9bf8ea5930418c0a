"""The moderator's views: review queue, decisions, previews and dashboard.

They are mounted by :class:`~nsfw_moderation.admin.ModeratedImageAdmin` through
``get_urls()`` (so the admin's login, CSRF and site context apply) and each one
checks the ``review_moderatedimage`` permission itself.

Previews are never the uploaded bytes: the stored file is decoded by the same
safe loader the worker uses and re-encoded as a small JPEG. A file that does
not decode gets a generated placeholder instead.
"""

from __future__ import annotations

import functools
import io
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import messages
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Count, F, Min, Q, QuerySet
from django.db.models.functions import Floor, TruncDate
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.http import require_GET, require_POST
from PIL import Image, ImageDraw

from nsfw_moderation import imaging, review
from nsfw_moderation.models import ModeratedImage, ModerationEvent, Status, Verdict
from nsfw_moderation.tasks import InputMissing, decode_limits, read_file

if TYPE_CHECKING:
    from nsfw_moderation.admin import ModeratedImageAdmin

logger = logging.getLogger(__name__)

#: Longest side of a preview, in pixels.
PREVIEW_SIZE = 480
PREVIEW_QUALITY = 80
PAGE_SIZE = 24
#: Where a moderator's display preferences live in their session.
PREFERENCES_KEY = "nsfw_moderation.review"
PREFERENCES = ("reveal_all", "grayscale")
HISTOGRAM_BINS = 10
FLAGGED_DAYS = 30

ORDERINGS = {
    "oldest": ("created_at", "pk"),
    "newest": ("-created_at", "-pk"),
    "score": ("-score", "created_at", "pk"),
}


def require_reviewer(request: HttpRequest, model_admin: ModeratedImageAdmin) -> None:
    if not model_admin.has_review_permission(request):
        raise PermissionDenied


# --- Review queue -----------------------------------------------------------


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

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        used = ModeratedImage.objects.values("content_type")
        self.fields["content_type"].queryset = ContentType.objects.filter(pk__in=used)  # type: ignore[attr-defined]
        names = (
            ModeratedImage.objects.exclude(model_name="")
            .order_by()
            .values_list("model_name", flat=True)
            .distinct()
        )
        self.fields["model_name"].choices = [  # type: ignore[attr-defined]
            ("", _("Any model")),
            *((name, name) for name in sorted(set(names))),
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


def queue_filters(request: HttpRequest) -> QueueFilterForm:
    # The queue is for flagged images unless the moderator asks otherwise;
    # an explicit empty ``verdict=`` means "any verdict".
    data = request.GET.copy()
    data.setdefault("verdict", Verdict.FLAGGED)
    return QueueFilterForm(data)


@dataclass
class Card:
    """One image in the review grid."""

    row: ModeratedImage
    preview_url: str
    change_url: str
    object_url: str | None
    object_label: str


def card_for(row: ModeratedImage, site_name: str) -> Card:
    ct = row.content_type
    return Card(
        row=row,
        preview_url=reverse(f"{site_name}:nsfw_moderation_moderatedimage_preview", args=[row.pk]),
        change_url=reverse(f"{site_name}:nsfw_moderation_moderatedimage_change", args=[row.pk]),
        object_url=object_admin_url(row, site_name),
        object_label=f"{ct.name} {row.object_id}",
    )


def object_admin_url(row: ModeratedImage, site_name: str) -> str | None:
    """The host object's change page in ``site_name``, if that admin has one."""
    ct = row.content_type
    try:
        return reverse(f"{site_name}:{ct.app_label}_{ct.model}_change", args=[row.object_id])
    except NoReverseMatch:
        return None


@require_GET
def review_queue(request: HttpRequest, model_admin: ModeratedImageAdmin) -> TemplateResponse:
    require_reviewer(request, model_admin)
    form = queue_filters(request)
    rows = form.filter(ModeratedImage.objects.select_related("content_type", "reviewed_by"))
    page = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("p"))
    site_name = model_admin.admin_site.name
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.opts,
        "title": _("Review queue"),
        "form": form,
        "page": page,
        "cards": [card_for(row, site_name) for row in page.object_list],
        "preferences": preferences_of(request),
        "decisions": review.DECISIONS,
    }
    return TemplateResponse(request, "nsfw_moderation/review_queue.html", context)


# --- Decisions and preferences ---------------------------------------------


@require_POST
def decide(request: HttpRequest, model_admin: ModeratedImageAdmin) -> HttpResponseRedirect:
    """Approve or reject the posted rows.

    A per-image button posts ``decide_one=<decision>:<pk>``; the bulk buttons
    post ``decision=<decision>`` with the ticked ``ids``.
    """
    require_reviewer(request, model_admin)
    decision, pks = _posted_decision(request)
    if decision is None:
        messages.error(request, _("Choose approve or reject."))
    elif not pks:
        messages.warning(request, _("Select at least one image."))
    else:
        _decide_and_report(request, decision, pks)
    return HttpResponseRedirect(_next_url(request, model_admin))


def _posted_decision(request: HttpRequest) -> tuple[str | None, list[int]]:
    one = request.POST.get("decide_one", "")
    if one:
        decision, _sep, pk = one.partition(":")
        return (decision if decision in review.DECISIONS else None), _int_list([pk])
    decision = request.POST.get("decision", "")
    pks = _int_list(request.POST.getlist("ids"))
    return (decision if decision in review.DECISIONS else None), pks


def _int_list(values: list[str]) -> list[int]:
    return [int(value) for value in values if value.isdigit()]


def _decide_and_report(request: HttpRequest, decision: str, pks: list[int]) -> None:
    note = request.POST.get("note", "").strip()
    rows = ModeratedImage.objects.filter(pk__in=pks)
    events = review.decide_many(rows, review.DECISIONS[decision], user=request.user, note=note)
    verdict = Verdict(review.DECISIONS[decision]).label
    if events:
        messages.success(
            request,
            ngettext(
                "%(count)d image marked %(verdict)s.",
                "%(count)d images marked %(verdict)s.",
                len(events),
            )
            % {"count": len(events), "verdict": verdict},
        )
    skipped = len(pks) - len(events)
    if skipped:
        messages.warning(
            request,
            ngettext(
                "%(count)d image was not decided: it is missing or being classified.",
                "%(count)d images were not decided: they are missing or being classified.",
                skipped,
            )
            % {"count": skipped},
        )


def _next_url(request: HttpRequest, model_admin: ModeratedImageAdmin) -> str:
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return reverse(f"{model_admin.admin_site.name}:nsfw_moderation_moderatedimage_review")


def preferences_of(request: HttpRequest) -> dict[str, bool]:
    stored = request.session.get(PREFERENCES_KEY, {})
    return {name: bool(stored.get(name)) for name in PREFERENCES}


@require_POST
def save_preferences(
    request: HttpRequest, model_admin: ModeratedImageAdmin
) -> HttpResponseRedirect:
    """Remember "reveal all" and "grayscale" for this moderator's session."""
    require_reviewer(request, model_admin)
    request.session[PREFERENCES_KEY] = {name: name in request.POST for name in PREFERENCES}
    return HttpResponseRedirect(_next_url(request, model_admin))


# --- Previews ---------------------------------------------------------------


@require_GET
def preview(request: HttpRequest, model_admin: ModeratedImageAdmin, pk: int) -> HttpResponse:
    require_reviewer(request, model_admin)
    row = get_object_or_404(ModeratedImage.objects.select_related("content_type"), pk=pk)
    data, kind = preview_bytes(row)
    response = HttpResponse(data, content_type="image/jpeg")
    response["Cache-Control"] = "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Disposition"] = 'inline; filename="preview.jpg"'
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["X-Moderation-Preview"] = kind
    return response


def preview_bytes(row: ModeratedImage) -> tuple[bytes, str]:
    """A re-encoded JPEG thumbnail of ``row``'s file, or a placeholder.

    Returns ``(jpeg, "image")`` or ``(jpeg, "placeholder")``.
    """
    try:
        # The worker's limits: a file it could decode can be previewed, and a
        # decompression bomb is refused here too.
        frames = imaging.load_frames(read_file(row), decode_limits())
    except (imaging.ImageDecodeError, InputMissing):
        return placeholder_jpeg(), "placeholder"
    except Exception:  # a storage failure must not break the whole grid
        logger.warning("Could not read %s for a preview", row.file_name, exc_info=True)
        return placeholder_jpeg(), "placeholder"
    # Show the frame of an animation that scored highest: the one to judge.
    frame = frames[min(row.frame or 0, len(frames) - 1)]
    return encode_jpeg(frame), "image"


def encode_jpeg(image: Image.Image) -> bytes:
    thumbnail = image.convert("RGB")
    thumbnail.thumbnail((PREVIEW_SIZE, PREVIEW_SIZE))
    # Pixels only: Pillow would copy the upload's comment (and other info)
    # into the JPEG, and the upload's bytes must not reach the browser.
    clean = Image.new("RGB", thumbnail.size)
    clean.paste(thumbnail)
    buffer = io.BytesIO()
    clean.save(buffer, format="JPEG", quality=PREVIEW_QUALITY)
    return buffer.getvalue()


@functools.cache
def placeholder_jpeg() -> bytes:
    """A grey card with a cross: "there is no picture to show"."""
    width, height = 240, 180
    image = Image.new("RGB", (width, height), (150, 150, 150))
    draw = ImageDraw.Draw(image)
    draw.line([(0, 0), (width, height)], fill=(110, 110, 110), width=3)
    draw.line([(0, height), (width, 0)], fill=(110, 110, 110), width=3)
    return encode_jpeg(image)


# --- Dashboard --------------------------------------------------------------


@require_GET
def dashboard(request: HttpRequest, model_admin: ModeratedImageAdmin) -> TemplateResponse:
    require_reviewer(request, model_admin)
    now = timezone.now()
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.opts,
        "title": _("Moderation dashboard"),
        "review_url": reverse(
            f"{model_admin.admin_site.name}:nsfw_moderation_moderatedimage_review"
        ),
        **dashboard_stats(now),
    }
    return TemplateResponse(request, "nsfw_moderation/dashboard.html", context)


def dashboard_stats(now: Any) -> dict[str, Any]:
    """Everything the dashboard shows, in a handful of aggregate queries."""
    rows = ModeratedImage.objects.all()
    return {
        "verdict_counts": _counts(rows, "verdict", Verdict.choices),
        "status_counts": _counts(rows, "status", Status.choices),
        **_queue_depth(rows, now),
        **_throughput(now),
        "score_histogram": score_histogram(rows),
        "flagged_per_day": flagged_per_day(now),
    }


def _counts(rows: QuerySet[ModeratedImage], field: str, choices: Any) -> list[tuple[str, str, int]]:
    found = dict(rows.order_by().values_list(field).annotate(n=Count("pk")))
    return [(value, str(label), found.get(value, 0)) for value, label in choices]


def _queue_depth(rows: QuerySet[ModeratedImage], now: Any) -> dict[str, Any]:
    waiting = rows.filter(status__in=[Status.QUEUED, Status.PROCESSING])
    oldest = waiting.filter(status=Status.QUEUED).aggregate(oldest=Min("updated_at"))["oldest"]
    return {
        "queue_depth": waiting.count(),
        "oldest_queued_age": (now - oldest) if oldest else None,
        "awaiting_review": rows.filter(verdict=Verdict.FLAGGED).count(),
    }


def _throughput(now: Any) -> dict[str, int]:
    recent = ModerationEvent.objects.filter(created_at__gte=now - timedelta(hours=24))
    totals = recent.aggregate(
        classified=Count("pk", filter=Q(kind=ModerationEvent.Kind.CLASSIFIED)),
        failed=Count("pk", filter=Q(kind=ModerationEvent.Kind.FAILED)),
        reviewed=Count("pk", filter=Q(kind=ModerationEvent.Kind.REVIEWED)),
    )
    return {f"{name}_24h": value for name, value in totals.items()}


def score_histogram(rows: QuerySet[ModeratedImage]) -> list[tuple[str, int]]:
    """Scored rows per tenth of the score range: ``[("0.0–0.1", n), ...]``."""
    buckets = (
        rows.filter(score__isnull=False)
        .order_by()
        .annotate(bucket=Floor(F("score") * HISTOGRAM_BINS))
        .values_list("bucket")
        .annotate(n=Count("pk"))
    )
    counts = [0] * HISTOGRAM_BINS
    for bucket, n in buckets:
        # A score of exactly 1.0 belongs in the top bin, not an 11th one.
        counts[min(max(int(bucket), 0), HISTOGRAM_BINS - 1)] += n
    step = 1 / HISTOGRAM_BINS
    return [(f"{i * step:.1f}–{(i + 1) * step:.1f}", n) for i, n in enumerate(counts)]


def flagged_per_day(now: Any) -> list[tuple[str, int]]:
    """Images the classifier flagged on each of the last ``FLAGGED_DAYS`` days."""
    today = timezone.localdate(now)
    first = today - timedelta(days=FLAGGED_DAYS - 1)
    found = dict(
        ModerationEvent.objects.filter(
            kind=ModerationEvent.Kind.CLASSIFIED,
            verdict_after=Verdict.FLAGGED,
            created_at__date__gte=first,
        )
        .annotate(day=TruncDate("created_at"))
        .order_by()
        .values_list("day")
        .annotate(n=Count("pk"))
    )
    days = (first + timedelta(days=i) for i in range(FLAGGED_DAYS))
    return [(day.strftime("%m-%d"), found.get(day, 0)) for day in days]
