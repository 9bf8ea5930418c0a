"""The shadow model (SHADOW_MODEL): classified beside the live one, stored, never acted on."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.checks import run_checks
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.core.management.base import CommandError, SystemCheckError

from nsfw_moderation import enqueue, imaging, policy, review, storage
from nsfw_moderation.backends import (
    ModelUnavailable,
    get_shadow_backend,
    reset_backend,
)
from nsfw_moderation.backends.transformers import TransformersBackend
from nsfw_moderation.models import ModeratedImage, ModerationEvent, Status, Verdict
from nsfw_moderation.worker import tasks
from tests import backends
from tests.conftest import build_tiny_vit, has_torch, moderation
from tests.images import blue, image_file, red
from tests.testapp.models import Photo
from tests.workers import Cluster, wait_until

COLOUR = "tests.backends.ColourBackend"
SEVERITIES = ("neutral", "low", "medium", "high")
SHADOW_LOG = "nsfw_moderation.worker.shadow"


def blue_shadow(backend: str = "BlueShadow", **changes: Any) -> dict[str, Any]:
    """A SHADOW_MODEL of a cheap test backend, judged by its own label."""
    return {
        "BACKEND": f"tests.backends.{backend}",
        "MODEL": "tests/blue",
        "UNSAFE_LABELS": ["explicit"],
        **changes,
    }


@pytest.fixture(autouse=True)
def _fresh_shadow() -> None:
    backends.shadow_calls.clear()
    backends.shadow_builds.clear()


@pytest.fixture(scope="session")
def severity_vit(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A second tiny ViT, with four labels: another model than the live one."""
    if not has_torch():
        pytest.skip("torch and transformers are not installed (the transformers backend)")
    directory = tmp_path_factory.mktemp("severity-vit")
    build_tiny_vit(directory, labels=SEVERITIES)
    return directory


def severity_shadow(directory: Path, **changes: Any) -> dict[str, Any]:
    return {"MODEL": str(directory), "UNSAFE_LABELS": ["low", "medium", "high"], **changes}


@pytest.fixture
def batches(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Uploads wait in the queue until the test runs a batch with ``tasks.classify()``."""
    monkeypatch.setattr(enqueue, "enqueue", lambda pk, delay=0: None)
    with moderation(QUEUE="django_q"):
        yield


def row_of(photo: Photo) -> ModeratedImage:
    return ModeratedImage.objects.get(object_id=str(photo.pk), field_name="image")


def shadow_fields(row: ModeratedImage) -> tuple[Any, ...]:
    return (row.shadow_score, row.shadow_scores, row.shadow_model_name)


NO_SHADOW = (None, {}, "")


def live_outcome(row: ModeratedImage) -> tuple[Any, ...]:
    """Everything a live outcome decides, but its timestamps."""
    return (
        row.status,
        row.verdict,
        row.score,
        row.scores,
        row.model_name,
        row.error,
        row.attempts,
        row.waits,
        row.retry_at,
        row.frame,
        row.sha256,
    )


def mixed() -> Any:
    return image_file("purple.png", color=(120, 0, 200))


def shadow_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == SHADOW_LOG]


# --- Loading -----------------------------------------------------------------------------------


def test_no_shadow_model_by_default():
    assert get_shadow_backend() is None


def test_the_shadow_is_built_with_its_own_model_revision_and_precision():
    with moderation(SHADOW_MODEL=blue_shadow(MODEL_REVISION="abc123", PRECISION="bf16")):
        shadow = get_shadow_backend()
    assert shadow is not None
    assert shadow.name == "tests/blue"
    assert backends.shadow_builds == [
        {"model": "tests/blue", "revision": "abc123", "precision": "bf16"}
    ]


def test_the_shadow_inherits_the_live_precision_but_never_the_live_model():
    with moderation(PRECISION="int8", MODEL_REVISION="live-rev", SHADOW_MODEL=blue_shadow()):
        get_shadow_backend()
    (build,) = backends.shadow_builds
    assert build == {"model": "tests/blue", "revision": None, "precision": "int8"}


def test_the_shadow_is_loaded_once_per_process_and_again_after_a_reset():
    with moderation(SHADOW_MODEL=blue_shadow()):
        first = get_shadow_backend()
        assert get_shadow_backend() is first
        reset_backend()
        assert get_shadow_backend() is not first
    assert len(backends.shadow_builds) == 2


@pytest.mark.parametrize(
    ("backend", "message"),
    [
        ("UnloadableShadow", "No shadow model here: the files are missing."),
        (
            "CrashingShadow",
            "The shadow model failed to load: RuntimeError('CUDA error: out of memory')",
        ),
    ],
)
def test_a_shadow_that_cannot_load_is_not_tried_again_on_every_batch(backend, message):
    with moderation(SHADOW_MODEL=blue_shadow(backend)):
        for _ in range(3):
            with pytest.raises(ModelUnavailable) as info:
                get_shadow_backend()
            assert str(info.value) == message
    assert len(backends.shadow_builds) == 1


@pytest.mark.parametrize(
    ("shadow", "message"),
    [
        # A backend whose constructor takes no model, named by the shadow or inherited.
        ({"BACKEND": "opennsfw", "MODEL": "x"}, "'opennsfw' cannot load another model"),
        ({"MODEL": "x"}, f"{COLOUR!r} cannot load another model"),
        (blue_shadow("ModelOnlyShadow", PRECISION="bf16"), "takes no `precision`"),
        (blue_shadow("ModelOnlyShadow", MODEL_REVISION="v2"), "takes no `revision`"),
        ({"BACKEND": "tests.backends.Nope", "MODEL": "x"}, "Cannot import the classifier"),
    ],
)
def test_a_backend_that_cannot_load_the_shadow_model_says_why(shadow, message):
    with moderation(BACKEND=COLOUR, SHADOW_MODEL=shadow), pytest.raises(ModelUnavailable) as info:
        get_shadow_backend()
    assert message in str(info.value)


def test_a_backend_that_takes_only_a_model_gets_only_the_model():
    with moderation(PRECISION="int8", SHADOW_MODEL=blue_shadow("ModelOnlyShadow")):
        assert get_shadow_backend() is not None
    assert backends.shadow_builds == [{"model": "tests/blue", "revision": None, "precision": None}]


# --- Policy ------------------------------------------------------------------------------------


def test_policy_judges_by_the_labels_it_is_given_and_by_default_by_unsafe_labels():
    scores = {"neutral": 0.1, "low": 0.2, "medium": 0.3, "high": 0.4}
    assert policy.unsafe_score(scores) == 0.0  # the live UNSAFE_LABELS: nsfw
    assert policy.unsafe_score(scores, ["medium", "high"]) == pytest.approx(0.7)
    frames = [scores, {"neutral": 0.0, "low": 0.0, "medium": 0.0, "high": 1.0}]
    assert policy.worst_frame(frames, ["low"]) == (0, pytest.approx(0.2))
    assert policy.worst_frame(frames, ["high"]) == (1, 1.0)
    assert policy.label_mismatch(SEVERITIES) != ""
    assert policy.label_mismatch(SEVERITIES, ["high"]) == ""
    message = policy.label_mismatch(SEVERITIES, ["nsfw"], setting="SHADOW_MODEL['UNSAFE_LABELS']")
    assert message.endswith("Fix SHADOW_MODEL['UNSAFE_LABELS'].")


# --- Worker ------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_shadow_scores_are_stored_beside_the_live_ones(tiny_vit, severity_vit):
    with moderation(SHADOW_MODEL=severity_shadow(severity_vit)):
        photo = Photo.objects.create(image=mixed())
    row = row_of(photo)
    assert (row.status, row.model_name) == (Status.DONE, str(tiny_vit))
    assert row.shadow_model_name == str(severity_vit)
    assert set(row.shadow_scores) == set(SEVERITIES)
    # The shadow's unsafe score is its own labels' sum, from the same decoded pixels.
    with photo.image.open("rb") as handle:
        frames = imaging.load_frames(handle.read(), storage.decode_limits())
    (expected,) = TransformersBackend(str(severity_vit)).classify(frames)
    assert row.shadow_scores == pytest.approx(expected, abs=1e-5)
    unsafe = expected["low"] + expected["medium"] + expected["high"]
    assert row.shadow_score == pytest.approx(unsafe, abs=1e-5)
    assert row.shadow_score != pytest.approx(row.score)
    # The classified event is the live verdict's, written before the shadow ran.
    event = row.events.get(kind=ModerationEvent.Kind.CLASSIFIED)
    assert (event.score, event.model_name) == (row.score, row.model_name)
    assert (event.shadow_score, event.shadow_model_name) == (None, "")
    # A moderator's decision carries both scores: what the comparison is made of.
    decision = review.reject(row)
    assert decision is not None
    assert (decision.shadow_score, decision.shadow_model_name) == (
        row.shadow_score,
        str(severity_vit),
    )


@pytest.mark.django_db(transaction=True)
def test_the_live_outcome_is_the_same_with_and_without_a_shadow(tiny_vit, severity_vit, batches):
    photos = [Photo.objects.create(image=image) for image in (red(), blue(), mixed())]
    tasks.classify()
    without = [live_outcome(row_of(photo)) for photo in photos]
    enqueue.requeue(ModeratedImage.objects.all())
    with moderation(QUEUE="django_q", SHADOW_MODEL=severity_shadow(severity_vit)):
        tasks.classify()
    rows = [row_of(photo) for photo in photos]
    assert [live_outcome(row) for row in rows] == without
    assert all(row.shadow_model_name == str(severity_vit) for row in rows)


BROKEN_SHADOWS = {
    "cannot load": (blue_shadow("UnloadableShadow"), "No shadow model here"),
    "labels": (blue_shadow(UNSAFE_LABELS=["nsfw"]), "name none of the model's labels"),
    "raises": (blue_shadow("FailingShadow"), "the shadow model failed"),
    "NaN": (blue_shadow("NaNShadow"), "no usable probabilities (NaN or infinite)"),
}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("broken", BROKEN_SHADOWS, ids=list(BROKEN_SHADOWS))
def test_a_broken_shadow_leaves_the_live_outcome_as_it_is(broken, batches, caplog):
    shadow, reason = BROKEN_SHADOWS[broken]
    with moderation(QUEUE="django_q", BACKEND=COLOUR):
        photos = [Photo.objects.create(image=image) for image in (red(), blue(), mixed())]
        tasks.classify()
        without = [live_outcome(row_of(photo)) for photo in photos]
        enqueue.requeue(ModeratedImage.objects.all())
    with moderation(QUEUE="django_q", BACKEND=COLOUR, SHADOW_MODEL=shadow):
        counts = tasks.classify()
    assert counts == {"claimed": 3, "done": 3, "failed": 0, "retrying": 0, "stale": 0}
    rows = [row_of(photo) for photo in photos]
    assert [live_outcome(row) for row in rows] == without
    assert [shadow_fields(row) for row in rows] == [NO_SHADOW] * 3
    assert all(event.shadow_score is None for event in ModerationEvent.objects.all())
    # Logged once for the batch, with the reason.
    (warning,) = shadow_warnings(caplog)
    assert warning.startswith("No shadow scores for 3 image(s)")
    assert reason in warning


@pytest.mark.django_db(transaction=True)
def test_a_shadow_that_raises_logs_its_traceback(batches, caplog):
    with moderation(QUEUE="django_q", BACKEND=COLOUR, SHADOW_MODEL=blue_shadow("FailingShadow")):
        Photo.objects.create(image=red())
        tasks.classify()
    (record,) = [r for r in caplog.records if r.name == SHADOW_LOG]
    assert record.exc_info is not None
    assert "ran out of memory" in str(record.exc_info[1])


@pytest.mark.django_db(transaction=True)
def test_the_live_verdicts_are_stored_before_the_shadow_runs(batches):
    """However slow the shadow, it cannot hold up a live verdict, or have it retried."""
    backends.shadow_saw.clear()
    with moderation(QUEUE="django_q", BACKEND=COLOUR, SHADOW_MODEL=blue_shadow("ObservingShadow")):
        for image in (red(), blue()):
            Photo.objects.create(image=image)
        tasks.classify()
    assert len(backends.shadow_saw) == 2
    assert all(status == Status.DONE for status, _verdict in backends.shadow_saw)
    assert {verdict for _status, verdict in backends.shadow_saw} == {"allowed", "flagged"}
    assert all(row.shadow_model_name == "tests/blue" for row in ModeratedImage.objects.all())


@pytest.mark.django_db(transaction=True)
def test_a_file_replaced_while_the_shadow_runs_gets_no_shadow_scores(batches):
    with moderation(QUEUE="django_q", BACKEND=COLOUR, SHADOW_MODEL=blue_shadow("ReplacingShadow")):
        photo = Photo.objects.create(image=red())
        tasks.classify()
    row = row_of(photo)
    assert (row.status, row.sha256) == (Status.QUEUED, "")
    assert shadow_fields(row) == (None, {}, "")


@pytest.mark.django_db(transaction=True)
def test_the_shadow_is_judged_by_its_own_labels_and_thresholds_never_acted_on():
    shadow = blue_shadow(FLAG_THRESHOLD=0.1)
    with moderation(BACKEND=COLOUR, SHADOW_MODEL=shadow):
        safe_blue = row_of(Photo.objects.create(image=blue()))
        unsafe_red = row_of(Photo.objects.create(image=red()))
    # The shadow calls the blue image explicit: the live verdict stands.
    assert (safe_blue.verdict, safe_blue.score, safe_blue.shadow_score) == (
        Verdict.ALLOWED,
        0.0,
        1.0,
    )
    assert safe_blue.shadow_scores == {"safe": 0.0, "explicit": 1.0}
    assert (unsafe_red.verdict, unsafe_red.shadow_score) == (Verdict.FLAGGED, 0.0)


@pytest.mark.django_db(transaction=True)
def test_identical_bytes_reuse_the_shadow_scores_of_the_same_shadow_model():
    with moderation(BACKEND=COLOUR, SHADOW_MODEL=blue_shadow()):
        original = row_of(Photo.objects.create(image=blue()))
        copy = row_of(Photo.objects.create(image=blue("copy.png")))
    assert copy.reused_from == original
    assert backends.calls == [1]
    assert backends.shadow_calls == [1]
    assert shadow_fields(copy) == shadow_fields(original) == (1.0, copy.shadow_scores, "tests/blue")
    # Another shadow model: the live scores are reused, the shadow classifies the copy.
    with moderation(BACKEND=COLOUR, SHADOW_MODEL=blue_shadow(MODEL="tests/blue-v2")):
        again = row_of(Photo.objects.create(image=blue("again.png")))
    assert again.reused_from == original
    assert backends.calls == [1]
    assert backends.shadow_calls == [1, 1]
    assert (again.shadow_score, again.shadow_model_name) == (1.0, "tests/blue-v2")


@pytest.mark.django_db(transaction=True)
def test_identical_bytes_classified_before_the_shadow_get_shadow_scores():
    with moderation(BACKEND=COLOUR):
        original = row_of(Photo.objects.create(image=blue()))
    with moderation(BACKEND=COLOUR, SHADOW_MODEL=blue_shadow()):
        copy = row_of(Photo.objects.create(image=blue("copy.png")))
    assert copy.reused_from == original
    assert backends.calls == [1]
    assert shadow_fields(original) == NO_SHADOW
    assert (copy.shadow_score, copy.shadow_model_name) == (1.0, "tests/blue")


@pytest.mark.django_db(transaction=True)
def test_reused_shadow_scores_are_judged_by_the_current_unsafe_labels():
    with moderation(BACKEND=COLOUR, SHADOW_MODEL=blue_shadow()):
        Photo.objects.create(image=blue())
    with moderation(BACKEND=COLOUR, SHADOW_MODEL=blue_shadow(UNSAFE_LABELS=["safe"])):
        copy = row_of(Photo.objects.create(image=blue("copy.png")))
    assert backends.shadow_calls == [1]
    assert copy.shadow_score == 0.0


@pytest.mark.django_db(transaction=True)
def test_rows_that_fail_or_are_refused_get_no_shadow_scores():
    shadow = blue_shadow()
    with moderation(BACKEND="tests.backends.NaNBackend", SHADOW_MODEL=shadow):
        nan = row_of(Photo.objects.create(image=blue()))
    with moderation(BACKEND=COLOUR, SHADOW_MODEL=shadow):
        refused = row_of(Photo.objects.create(image=ContentFile(b"not an image", "x.png")))
    assert (nan.status, refused.status) == (Status.FAILED, Status.FAILED)
    assert shadow_fields(nan) == shadow_fields(refused) == NO_SHADOW
    assert backends.shadow_calls == []


@pytest.mark.django_db(transaction=True)
def test_without_a_shadow_a_classified_row_keeps_no_old_shadow_score(batches):
    with moderation(QUEUE="django_q", BACKEND=COLOUR, SHADOW_MODEL=blue_shadow()):
        photo = Photo.objects.create(image=blue())
        tasks.classify()
    assert row_of(photo).shadow_model_name == "tests/blue"
    # Back in the queue with its shadow fields (not reset to FRESH), classified
    # again once SHADOW_MODEL is gone.
    ModeratedImage.objects.update(status=Status.QUEUED, claim_token=None)
    with moderation(QUEUE="django_q", BACKEND=COLOUR):
        assert tasks.classify()["done"] == 1
    row = row_of(photo)
    assert shadow_fields(row) == NO_SHADOW
    assert row.events.latest("pk").shadow_model_name == ""
    assert backends.shadow_calls == [1]


# --- Switching to the shadow model -------------------------------------------------------------


def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


@pytest.mark.django_db(transaction=True)
def test_switching_to_the_shadow_model_with_nsfw_scan(tiny_vit, severity_vit):
    old = {"MODEL": str(tiny_vit), "UNSAFE_LABELS": ["nsfw"]}
    with moderation(SHADOW_MODEL=severity_shadow(severity_vit)):
        photos = [Photo.objects.create(image=image) for image in (red(), blue(), mixed())]
    rejected, approved, undecided = (row_of(photo) for photo in photos)
    review.reject(rejected)
    review.approve(approved)

    # The switch: the shadow's settings become the live ones; the old model,
    # the shadow, to keep comparing.
    new = {"MODEL": str(severity_vit), "UNSAFE_LABELS": ["low", "medium", "high"]}
    with moderation(**new, FLAG_THRESHOLD=0.9, SHADOW_MODEL=old):
        out = run("nsfw_scan", "--rescan", "other-model", "--undecided-only")
        assert "Queued 1 (1 rescan); 0 up to date, 2 kept as moderators decided." in out
        row = row_of(photos[2])
        # Judged by the new model's labels and threshold.
        assert row.verdict == policy.verdict_for(row.score)
    # The new live score is the one it had as the shadow, and the other way round.
    assert (row.model_name, row.shadow_model_name) == (str(severity_vit), str(tiny_vit))
    assert row.score == pytest.approx(undecided.shadow_score, abs=1e-5)
    assert row.shadow_score == pytest.approx(undecided.score, abs=1e-5)
    for kept, verdict in ((photos[0], Verdict.REJECTED), (photos[1], Verdict.APPROVED)):
        assert (row_of(kept).verdict, row_of(kept).model_name) == (verdict, str(tiny_vit))

    # Without --undecided-only, the moderators' decisions go back to pending
    # and are classified again: the approval is lost, rejected bytes stay blocked.
    with moderation(**new, FLAG_THRESHOLD=0.9, SHADOW_MODEL=old):
        out = run("nsfw_scan", "--rescan", "other-model")
    assert "Queued 2 (2 rescan); 1 up to date." in out
    assert row_of(photos[0]).verdict == Verdict.BLOCKED
    assert row_of(photos[1]).verdict in (Verdict.ALLOWED, Verdict.FLAGGED)
    assert row_of(photos[1]).reviewed_at is None
    assert {row_of(photo).model_name for photo in photos} == {str(severity_vit)}


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("colour_backend")
def test_undecided_only_needs_rescan():
    with pytest.raises(CommandError, match="--undecided-only applies to --rescan only"):
        run("nsfw_scan", "--undecided-only")


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("colour_backend")
def test_undecided_only_keeps_decided_rows_but_not_changed_files():
    photo = Photo.objects.create(image=red())
    review.reject(row_of(photo))
    out = run("nsfw_scan", "--rescan", "all", "--undecided-only")
    assert "Queued 0; 0 up to date, 1 kept as moderators decided." in out
    assert row_of(photo).verdict == Verdict.REJECTED
    # New bytes: the decision was about the old ones.
    Photo.objects.filter(pk=photo.pk).update(image=default_storage.save("photos/new.png", blue()))
    out = run("nsfw_scan", "--rescan", "all", "--undecided-only")
    assert "Queued 1 (1 changed)" in out
    assert row_of(photo).verdict == Verdict.ALLOWED


# --- nsfw_model verify / info ------------------------------------------------------------------


def test_download_fetches_the_shadow_model_too(tiny_vit, severity_vit):
    with moderation(SHADOW_MODEL=severity_shadow(severity_vit)):
        out = run("nsfw_model", "download")
    live, shadow = out.split("Shadow model (SHADOW_MODEL):\n")
    assert f"MODEL is already local: {tiny_vit.resolve()}" in live
    assert f"MODEL is already local: {severity_vit.resolve()}" in shadow


def test_verify_checks_the_shadow_model_too(tiny_vit, severity_vit):
    with moderation(SHADOW_MODEL=severity_shadow(severity_vit)):
        out = run("nsfw_model", "verify")
    live, shadow = out.split("Shadow model (SHADOW_MODEL, never acted on):\n")
    assert f"model:       {tiny_vit}" in live
    assert f"model:       {severity_vit}" in shadow
    assert "labels:      neutral, low, medium, high" in shadow
    assert "unsafe:      low, medium, high" in shadow
    assert shadow.rstrip().endswith("OK: the model loads and classifies.")


def test_verify_refuses_a_shadow_without_its_unsafe_labels(tiny_vit, severity_vit):
    with (
        moderation(SHADOW_MODEL=severity_shadow(severity_vit, UNSAFE_LABELS=["nsfw"])),
        pytest.raises(CommandError) as info,
    ):
        run("nsfw_model", "verify")
    assert "name none of the model's labels ['neutral', 'low', 'medium', 'high']" in str(info.value)
    assert "Fix NSFW_MODERATION['SHADOW_MODEL']['UNSAFE_LABELS']." in str(info.value)


def test_verify_and_info_fail_when_the_shadow_cannot_load(tiny_vit):
    with moderation(SHADOW_MODEL=blue_shadow("UnloadableShadow")):
        for action in ("verify", "info"):
            with pytest.raises(CommandError) as info:
                run("nsfw_model", action)
            assert str(info.value) == (
                "Cannot load the shadow model: No shadow model here: the files are missing."
            )


def test_info_shows_the_shadow_model(tiny_vit, severity_vit):
    with moderation(SHADOW_MODEL=severity_shadow(severity_vit, MODEL_REVISION="v2")):
        out = run("nsfw_model", "info")
    live, shadow = out.split("Shadow model (SHADOW_MODEL, never acted on):\n")
    assert "unsafe:      nsfw" in live
    assert f"model:       {severity_vit}" in shadow
    assert "revision:    v2" in shadow
    assert "labels:      neutral, low, medium, high" in shadow
    assert "unsafe:      low, medium, high" in shadow


def test_info_without_a_shadow_says_nothing_of_one(tiny_vit):
    assert "Shadow model" not in run("nsfw_model", "info")


# --- System check E029 -------------------------------------------------------------------------

checks_db = pytest.mark.django_db(databases="__all__")
SHADOW_UNPINNED = "nsfw_moderation.W009"


def check_ids(**changes: Any) -> list[str]:
    with moderation(**changes):
        return sorted(m.id for m in run_checks() if m.id and m.id.startswith("nsfw_moderation."))


@checks_db
@pytest.mark.parametrize(
    "shadow",
    [
        None,
        {"MODEL": "some/model"},
        {
            "BACKEND": "transformers",
            "MODEL": "some/model",
            "MODEL_REVISION": "abc",
            "PRECISION": "bf16",
            "UNSAFE_LABELS": ["low", "high"],
            "FLAG_THRESHOLD": 0.7,
        },
        blue_shadow("ModelOnlyShadow"),
    ],
)
def test_valid_shadow_models_pass(shadow):
    # The live backend named, so that a shadow without its own BACKEND (which
    # takes the live one's) is judged the same wherever the suite runs.
    # (W009, a shadow from the Hub without MODEL_REVISION, has tests of its own.)
    found = [
        i for i in check_ids(BACKEND="transformers", SHADOW_MODEL=shadow) if i != SHADOW_UNPINNED
    ]
    assert "nsfw_moderation.E029" not in found
    assert found == check_ids(BACKEND="transformers", SHADOW_MODEL=None)


@checks_db
@pytest.mark.parametrize(
    ("shadow", "problem"),
    [
        ("some/model", "it must be None or a dict"),
        (["some/model"], "it must be None or a dict"),
        ({}, "it must name a MODEL"),
        ({"MODEL": ""}, "it must name a MODEL"),
        ({"MODEL": "x", "DEVICE": "cuda"}, "it has unknown keys ['DEVICE']"),
        ({"MODEL": "x", "PRECISION": "fp8"}, "its PRECISION must be one of"),
        ({"MODEL": "x", "FLAG_THRESHOLD": 1.5}, "its FLAG_THRESHOLD must be a number"),
        ({"MODEL": "x", "FLAG_THRESHOLD": "0.5"}, "its FLAG_THRESHOLD must be a number"),
        ({"MODEL": "x", "UNSAFE_LABELS": []}, "its UNSAFE_LABELS must be a non-empty list"),
        ({"MODEL": "x", "UNSAFE_LABELS": "nsfw"}, "its UNSAFE_LABELS must be a non-empty list"),
        ({"MODEL": "x", "BACKEND": "tests.backends.Nope"}, "its BACKEND cannot be imported"),
        ({"MODEL": "x", "BACKEND": "opennsfw"}, "'opennsfw' cannot load another model"),
    ],
)
def test_bad_shadow_models(shadow, problem):
    with moderation(SHADOW_MODEL=shadow):
        (error,) = [m for m in run_checks() if m.id == "nsfw_moderation.E029"]
    assert problem in error.msg
    assert "Keys: BACKEND, MODEL" in error.hint


@checks_db
def test_a_shadow_inheriting_a_live_backend_that_takes_no_model_is_refused():
    assert check_ids(BACKEND=COLOUR, SHADOW_MODEL={"MODEL": "x"}) == ["nsfw_moderation.E029"]
    # An unimportable live BACKEND is reported once, by its own check.
    assert check_ids(BACKEND="tests.backends.Nope", SHADOW_MODEL={"MODEL": "x"}) == [
        "nsfw_moderation.E013"
    ]


@checks_db
def test_check_command_runs_the_shadow_check():
    with (
        moderation(SHADOW_MODEL={"MODEL": "x", "PRECISION": "fp8"}),
        pytest.raises(SystemCheckError, match=r"nsfw_moderation\.E029"),
    ):
        call_command("check")


# --- A real worker -----------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("empty_broker")
def test_a_qcluster_worker_stores_the_shadow_scores(tmp_path, tiny_model_dir, severity_vit):
    shadow = json.dumps(severity_shadow(severity_vit))
    with moderation(QUEUE="django_q"):
        photos = [Photo.objects.create(image=image) for image in (red(), blue(), mixed())]
    env = {"NSFW_TEST_BACKEND": "transformers", "NSFW_TEST_SHADOW_MODEL": shadow}
    with Cluster(tmp_path / "qcluster.log", NSFW_TEST_LOG_LEVEL="INFO", **env) as cluster:
        done = wait_until(
            lambda: ModeratedImage.objects.filter(status=Status.DONE).count() == len(photos),
            timeout=90,
        )
        assert done, cluster.log()
    rows = [row_of(photo) for photo in photos]
    assert {row.model_name for row in rows} == {str(tiny_model_dir)}
    assert {row.shadow_model_name for row in rows} == {str(severity_vit)}
    assert all(0 <= row.shadow_score <= 1 and len(row.shadow_scores) == 4 for row in rows)
    # Loaded in the worker, after the fork, once.
    assert cluster.log().count("Shadow classifier ready") == 1
