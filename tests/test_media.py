"""Serving uploads through the visibility check, and the upload form validators."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.http import Http404, HttpRequest, HttpResponse
from django.test import RequestFactory
from django.views.static import serve
from PIL import Image

from nsfw_moderation.media import serve_visible, visible_file, visible_media_only
from nsfw_moderation.models import Verdict
from nsfw_moderation.validators import MaxFileSizeValidator, validate_raster_image
from tests.hostile import encode, palette_png
from tests.images import blue, image_bytes
from tests.test_query import build_cases
from tests.testapp.models import Document, Photo, Profile

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("colour_backend")]

HIDDEN = ("flagged", "rejected", "pending", "stale")


def get(path: str, **kwargs: Any) -> HttpResponse:
    request = RequestFactory().get("/media/" + path)
    return serve_visible(request, path, **kwargs)  # type: ignore[return-value]


def body(response: Any) -> bytes:
    return b"".join(response.streaming_content)


# -- serve_visible -----------------------------------------------------------------


@pytest.mark.parametrize("model", [Photo, Document], ids=["filesystem", "in-memory storage"])
def test_visible_files_are_served_and_hidden_ones_are_not(model: type[Any]) -> None:
    field = "image" if model is Photo else "file"
    cases = build_cases(model, field)
    for state in ("allowed", "approved"):
        file = getattr(cases[state], field)
        response = get(file.name)
        assert response.status_code == 200
        assert body(response) == file.storage.open(file.name).read()
        assert response["Content-Type"] == "image/png"
        assert response["Cache-Control"] == "private, no-store"
        assert response["X-Content-Type-Options"] == "nosniff"
    for state in HIDDEN:
        name = getattr(cases[state], field).name
        assert visible_file(name) is None, state
        with pytest.raises(Http404):
            get(name)


def test_pending_files_are_served_only_with_show_pending(settings: Any) -> None:
    cases = build_cases(Photo, "image")
    name = cases["pending"].image.name
    with pytest.raises(Http404):
        get(name)
    settings.NSFW_MODERATION = {**settings.NSFW_MODERATION, "SHOW_PENDING": True}
    assert get(name).status_code == 200


def test_a_file_no_moderated_field_holds_is_not_served() -> None:
    profile = Profile.objects.create(attachment=SimpleUploadedFile("a.png", image_bytes()))
    assert profile.attachment.storage.exists(profile.attachment.name)
    with pytest.raises(Http404):
        get(profile.attachment.name)


def test_a_file_held_by_a_hidden_object_too_is_not_served() -> None:
    shown = Photo.objects.create(image=blue())
    other = Photo.objects.create(image=blue())
    Photo.objects.filter(pk=other.pk).update(image=shown.image.name)
    # `other` has no row for the file it now holds: hidden, and so is the file.
    with pytest.raises(Http404):
        get(shown.image.name)


@pytest.mark.parametrize(
    "path", ["", "/etc/passwd", "../settings.py", "photos/../../x.png", "photos//x.png", "./x"]
)
def test_odd_paths_are_refused_before_any_lookup(path: str) -> None:
    with pytest.raises(Http404):
        get(path)


def test_accel_redirect_names_the_file_for_the_web_server() -> None:
    photo = Photo.objects.create(image=blue("café.png"))
    response = get(photo.image.name, accel_redirect="/protected-media/")
    assert response["X-Accel-Redirect"] == "/protected-media/photos/caf%C3%A9.png"
    assert response.content == b""
    assert response["Content-Type"] == "image/png"


def test_sendfile_names_the_files_path() -> None:
    photo = Photo.objects.create(image=blue())
    response = get(photo.image.name, sendfile=True)
    assert response["X-Sendfile"] == photo.image.path
    assert response.content == b""


def test_only_safe_methods() -> None:
    photo = Photo.objects.create(image=blue())
    request = RequestFactory().post("/media/" + photo.image.name)
    assert serve_visible(request, photo.image.name).status_code == 405


def test_decorator_guards_another_serving_view(settings: Any) -> None:
    cases = build_cases(Photo, "image")
    guarded = visible_media_only(serve)

    def fetch(name: str) -> HttpResponse:
        request: HttpRequest = RequestFactory().get("/media/" + name)
        return guarded(request, name, document_root=settings.MEDIA_ROOT)

    response = fetch(cases["allowed"].image.name)
    assert response.status_code == 200
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Cache-Control"] == "private, no-store"
    with pytest.raises(Http404):
        fetch(cases["rejected"].image.name)


def test_a_verdict_change_takes_effect_at_once() -> None:
    photo = Photo.objects.create(image=blue())
    assert get(photo.image.name).status_code == 200
    from nsfw_moderation.models import ModeratedImage

    ModeratedImage.objects.filter(object_id=str(photo.pk)).update(verdict=Verdict.REJECTED)
    with pytest.raises(Http404):
        get(photo.image.name)


# -- Upload validators -------------------------------------------------------------


def upload(name: str, data: bytes) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data)


@pytest.mark.parametrize(
    ("name", "fmt"), [("a.png", "PNG"), ("a.JPG", "JPEG"), ("a.gif", "GIF"), ("a.webp", "WEBP")]
)
def test_raster_images_named_for_their_format_pass(name: str, fmt: str) -> None:
    file = upload(name, image_bytes(fmt=fmt))
    file.read(3)
    validate_raster_image(file)
    assert file.tell() == 0  # left for the next reader


@pytest.mark.parametrize(
    ("name", "fmt"), [("a.jpg", "PNG"), ("a.png", "JPEG"), ("a.jpg", "WEBP"), ("a.png", "GIF")]
)
def test_raster_images_named_as_another_raster_type_pass(name: str, fmt: str) -> None:
    """Browsers sniff image bytes whatever image type they are served as: nothing to refuse."""
    validate_raster_image(upload(name, image_bytes(fmt=fmt)))


@pytest.mark.parametrize("name", ["a.pdf", "a.eps", "a.svg", "a.html", "a.xml", "a.txt"])
def test_png_under_another_name_is_refused(name: str) -> None:
    with pytest.raises(ValidationError) as caught:
        validate_raster_image(upload(name, image_bytes(fmt="PNG")))
    assert caught.value.code == "name_mismatch"


@pytest.mark.parametrize(
    "data",
    [
        b"%PDF-1.4\n%%EOF",
        b'<svg xmlns="http://www.w3.org/2000/svg"/>',
        encode(Image.new("RGB", (16, 16)), "ICO"),
    ],
    ids=["pdf", "svg", "ico"],
)
def test_other_formats_are_refused(data: bytes) -> None:
    with pytest.raises(ValidationError) as caught:
        validate_raster_image(upload("a.png", data))
    assert caught.value.code == "not_a_raster_image"


def test_validator_reads_only_the_header(monkeypatch: pytest.MonkeyPatch) -> None:
    from PIL import ImageFile

    loads: list[object] = []
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: loads.append(self))
    validate_raster_image(upload("big.png", palette_png()))
    assert loads == []


def test_max_file_size() -> None:
    validator = MaxFileSizeValidator(1_000)
    validator(upload("a.png", b"x" * 1_000))
    with pytest.raises(ValidationError) as caught:
        validator(upload("a.png", b"x" * 1_001))
    assert caught.value.code == "file_too_large"
    assert caught.value.messages == [
        "The file is 1001\xa0bytes; files of up to 1000\xa0bytes are accepted."
    ]


def test_max_file_size_defaults_to_the_setting(settings: Any) -> None:
    settings.NSFW_MODERATION = {**settings.NSFW_MODERATION, "MAX_FILE_SIZE": 10}
    with pytest.raises(ValidationError):
        MaxFileSizeValidator()(upload("a.png", b"x" * 11))
    assert MaxFileSizeValidator() == MaxFileSizeValidator(None)
    assert MaxFileSizeValidator(5).deconstruct()[1:] == ((5,), {})
