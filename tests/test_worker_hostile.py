"""The worker against hostile uploads: a clear outcome for each, a preview to judge by.

Saved through the models with ``QUEUE="sync"``, so each upload goes through
the real pipeline (read, decode, classify, store) as a worker runs it.
"""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.core.files.base import ContentFile
from PIL import Image

from nsfw_moderation import imaging, registry, storage
from nsfw_moderation.models import ModeratedImage, ModerationEvent, Preview, Status, Verdict
from nsfw_moderation.worker.tasks import classify
from tests import hostile
from tests.conftest import moderation
from tests.images import image_bytes
from tests.testapp.models import Document, Photo

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("colour_backend")]


def row_of(obj: Any) -> ModeratedImage:
    (field_name,) = registry.fields_for(type(obj))
    return ModeratedImage.objects.of_object(obj, field_name).get()


def preview_of(row: ModeratedImage) -> Preview | None:
    return Preview.objects.filter(image=row, file_name=row.file_name).first()


# -- Files that look crafted: flagged whatever ON_ERROR says --------------------------


@pytest.mark.parametrize("name", ["x.pdf", "x.eps", "x.svg"])
def test_png_named_as_another_format_is_flagged_even_where_failures_are_allowed(
    name: str,
) -> None:
    with moderation(ON_ERROR="allow"):
        document = Document.objects.create(file=ContentFile(image_bytes(fmt="PNG"), name=name))
    row = row_of(document)
    assert (row.status, row.verdict) == (Status.FAILED, Verdict.FLAGGED)
    assert "its name and its contents disagree" in row.error
    # The pixels are fine to look at: the moderator gets a preview of them.
    assert preview_of(row) is not None
    (event,) = ModerationEvent.objects.filter(image=row)
    assert event.verdict_after == Verdict.FLAGGED


@pytest.mark.parametrize(
    ("fmt", "name"),
    [("PNG", "screenshot.jpg"), ("JPEG", "photo.png"), ("WEBP", "cdn.jpg"), ("GIF", "a.png")],
)
def test_a_raster_image_named_as_another_raster_type_is_classified_as_what_it_is(
    fmt: str, name: str
) -> None:
    with moderation(ON_ERROR="allow"):
        photo = Photo.objects.create(image=ContentFile(image_bytes(fmt=fmt), name=name))
    row = row_of(photo)
    assert (row.status, row.error) == (Status.DONE, "")
    assert row.score is not None
    assert row.file_format == fmt
    assert preview_of(row) is not None


def test_every_classified_file_records_its_format() -> None:
    photo = Photo.objects.create(image=ContentFile(image_bytes(fmt="PNG"), name="a.png"))
    assert row_of(photo).file_format == "PNG"
    # A new file under the same field: the row forgets the old format until its
    # bytes are read (django_q: the task waits in the broker, no cluster runs it).
    photo.image = ContentFile(image_bytes(fmt="JPEG"), name="b.jpg")
    with moderation(QUEUE="django_q"):
        photo.save()
    assert (row_of(photo).status, row_of(photo).file_format) == (Status.QUEUED, "")
    classify(row_of(photo).pk)
    assert row_of(photo).file_format == "JPEG"


def test_the_change_page_says_when_the_name_and_the_format_disagree() -> None:
    from django.contrib.auth.models import User
    from django.test import Client

    named = Photo.objects.create(image=ContentFile(image_bytes(fmt="PNG"), name="shot.jpg"))
    honest = Photo.objects.create(image=ContentFile(image_bytes(fmt="PNG"), name="shot.png"))
    client = Client()
    client.force_login(User.objects.create_superuser("root"))
    url = "/admin/nsfw_moderation/moderatedimage/{}/change/"
    page = client.get(url.format(row_of(named).pk))
    assert page.status_code == 200
    assert "PNG, named .jpg" in page.text
    assert "PNG, named" not in client.get(url.format(row_of(honest).pk)).text


@pytest.mark.parametrize(
    ("build", "name", "reason"),
    [
        (lambda: hostile.gif_frames(50_000), "a.gif", "at most 2,000 are examined"),
        (lambda: hostile.apng_frames(50_000), "a.png", "at most 2,000 are examined"),
        (lambda: hostile.webp_frames(50_000), "a.webp", "at most 2,000 are examined"),
        (lambda: hostile.gif_comment_blocks(5_000_000), "a.gif", "too many small blocks"),
        (
            lambda: hostile.gif_frames(300, canvas=(1_000, 1_000)),
            "a.gif",
            "over the 256,000,000-pixel",
        ),
    ],
    ids=["gif-frames", "apng-frames", "webp-frames", "gif-blocks", "gif-pixels"],
)
def test_files_over_a_work_budget_fail_fast_and_are_flagged(
    build: Any, name: str, reason: str
) -> None:
    with moderation(ON_ERROR="allow"):
        document = Document.objects.create(file=ContentFile(build(), name=name))
    row = row_of(document)
    assert (row.status, row.verdict) == (Status.FAILED, Verdict.FLAGGED)
    assert reason in row.error
    assert preview_of(row) is None  # nothing was decoded to show


def test_plain_decode_failures_still_follow_on_error() -> None:
    with moderation(ON_ERROR="allow"):
        photo = Photo.objects.create(image=ContentFile(b"not an image", name="x.png"))
    row = row_of(photo)
    assert (row.status, row.verdict) == (Status.FAILED, Verdict.ALLOWED)


# -- Reasons on rows are ours; details go to the log ------------------------------------


def test_storage_errors_stay_out_of_the_row(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(row: ModeratedImage) -> bytes:
        raise PermissionError(13, "Permission denied", "/srv/secret/media/photos/x.png")

    monkeypatch.setattr(storage, "opened", broken)
    with moderation(MAX_ATTEMPTS=1):
        photo = Photo.objects.create(image=ContentFile(image_bytes(), name="x.png"))
    row = row_of(photo)
    assert row.status == Status.QUEUED  # unreachable storage is not the file's fault: it waits
    assert row.error == "Could not read the file from storage; see the worker's log."
    assert "/srv/secret" in caplog.text


def test_decoder_messages_stay_out_of_the_row(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="nsfw_moderation")
    data = image_bytes(size=(200, 200))
    photo = Photo.objects.create(image=ContentFile(data[: len(data) // 2], name="cut.png"))
    row = row_of(photo)
    assert row.error == "The image is damaged or truncated."
    assert "cut" in caplog.text


# -- Previews -------------------------------------------------------------------------


def test_every_classified_row_gets_a_preview_of_its_worst_frame() -> None:
    colours = [(0, 0, 255), (255, 0, 0), (0, 0, 255)]  # the red frame scores worst
    frames = [Image.new("RGB", (32, 32), colour) for colour in colours]
    data = hostile.encode(frames[0], "GIF", save_all=True, append_images=frames[1:])
    photo = Photo.objects.create(image=ContentFile(data, name="anim.gif"))
    row = row_of(photo)
    assert (row.status, row.frame) == (Status.DONE, 1)
    preview = preview_of(row)
    assert preview is not None
    picture = Image.open(io.BytesIO(bytes(preview.jpeg))).convert("RGB")
    red, _, blue = picture.getpixel((5, 5))  # type: ignore[misc]
    assert red > 200
    assert blue < 60


@pytest.mark.slow
def test_a_hostile_batch_of_16_big_palette_pngs(monkeypatch: pytest.MonkeyPatch) -> None:
    budgets: list[imaging.PixelBudget] = []
    real_budget = imaging.PixelBudget

    def remembered(capacity: int) -> imaging.PixelBudget:
        budgets.append(real_budget(capacity))
        return budgets[-1]

    monkeypatch.setattr(imaging, "PixelBudget", remembered)
    data = hostile.palette_png((8_000, 8_000))
    with moderation(QUEUE="django_q", BATCH_SIZE=16):
        photos = [
            Photo.objects.create(image=ContentFile(data, name=f"big{i}.png")) for i in range(16)
        ]
        counts = pipeline_run()
    assert counts["done"] == 16
    rows = [row_of(photo) for photo in photos]
    assert {row.status for row in rows} == {Status.DONE}
    assert all(preview_of(row) is not None for row in rows)
    (budget,) = budgets
    assert budget.peak <= 64_000_000  # one 64-megapixel canvas decoded at a time


def pipeline_run() -> dict[str, int]:
    from nsfw_moderation.worker import tasks

    return tasks.classify()


@pytest.mark.parametrize(
    ("data", "handed_back"),
    [
        # Decoded at 1/8 of its size: a 500×375 canvas, reused by the next decode.
        (hostile.encode(Image.new("RGB", (4_000, 3_000), "teal"), "JPEG"), False),
        # libjpeg holds every coefficient of a progressive one, whatever the draft.
        (hostile.encode(Image.new("RGB", (4_000, 3_000), "teal"), "JPEG", progressive=True), True),
        (hostile.palette_png((4_000, 2_000)), True),
    ],
    ids=["12-megapixel JPEG", "12-megapixel progressive JPEG", "8-megapixel PNG"],
)
def test_pages_are_handed_back_after_a_big_canvas_only(
    monkeypatch: pytest.MonkeyPatch, data: bytes, handed_back: bool
) -> None:
    import functools

    from nsfw_moderation.worker import pipeline

    # Trimming walks every free page of the process: what other work freed too.
    trims: list[int] = []
    monkeypatch.setattr(pipeline, "release_freed_memory", lambda: trims.append(1))
    budget = imaging.PixelBudget(64_000_000)
    admit = functools.partial(pipeline._admitted, budget)
    (frame,) = imaging.load_frames(data, imaging.Limits(), admit=admit)
    assert max(frame.size) == 448
    assert trims == ([1] if handed_back else [])
    assert budget.in_use == 0
