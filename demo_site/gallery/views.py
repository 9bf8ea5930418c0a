from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.views.decorators.http import require_GET

from demo_site.gallery.forms import PhotoForm
from demo_site.gallery.models import Photo

PAGE_SIZE = 48

#: How each verdict is shown: (badge text, css class, note under hidden images).
VERDICTS = {
    "allowed": ("allowed", "ok", ""),
    "approved": ("approved", "ok", ""),
    "pending": ("pending", "wait", "Being checked…"),
    "flagged": ("flagged", "warn", "Hidden while a moderator reviews it."),
    "blocked": ("blocked", "bad", "Hidden: the classifier is confident it is unsafe."),
    "rejected": ("rejected", "bad", "Removed by a moderator."),
    None: ("not checked", "wait", "Not moderated yet."),
}


def index(request: HttpRequest) -> HttpResponse:
    """The public gallery: newest photos with their verdicts, and the upload form."""
    if request.method == "POST":
        form = PhotoForm(request.POST, request.FILES)
        if form.is_valid():
            return _save_upload(request, form)
    else:
        form = PhotoForm()
    # One query: the moderation fields come in as subquery annotations.
    photos = list(Photo.objects.select_related("uploaded_by").with_moderation()[:PAGE_SIZE])
    for photo in photos:
        photo.badge, photo.badge_class, photo.hidden_note = VERDICTS.get(  # type: ignore[attr-defined]
            photo.moderation_verdict,  # type: ignore[attr-defined]
            VERDICTS[None],
        )
    context = {
        "form": form,
        "photos": photos,
        "any_pending": any(p.moderation_verdict == "pending" for p in photos),  # type: ignore[attr-defined]
        "choice": settings.NSFW_DEMO_CHOICE,
    }
    return TemplateResponse(request, "gallery/index.html", context)


def _save_upload(request: HttpRequest, form: PhotoForm) -> HttpResponse:
    photo = form.save(commit=False)
    if request.user.is_authenticated:
        photo.uploaded_by = request.user
    photo.save()  # nsfw_moderation queues the new file once this commits
    messages.success(request, f"Thanks! “{photo.title}” is being checked.")
    return redirect("gallery:index")


@require_GET
def photo_image(request: HttpRequest, pk: int) -> FileResponse:
    """A photo's image, only while its verdict lets the public see it."""
    photo = get_object_or_404(Photo.objects.with_moderation(), pk=pk)
    if not photo.is_visible:
        raise Http404("This image is not available.")
    response = FileResponse(photo.image.open("rb"))
    # A verdict can change at any time: never let a cache keep the bytes.
    response["Cache-Control"] = "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response
