"""Management commands: nsfw_scan, nsfw_classify, nsfw_evaluate and nsfw_model."""

from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.contenttypes.models import ContentType
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import call_command, execute_from_command_line
from django.core.management.base import CommandError

from nsfw_moderation.management.commands.nsfw_scan import configured_model_name
from nsfw_moderation.models import ModeratedImage, Status, Verdict
from nsfw_moderation.queues import django_q as django_q_queue
from tests.conftest import TINY_MAX_DIFFERENCE, moderation
from tests.images import blue, image_bytes, red
from tests.testapp.models import Document, Photo, Slide

BROKEN = "tests.backends.BrokenBackend"


def run(*args: Any, **kwargs: Any) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO(), **kwargs)
    return out.getvalue()


def fails(*args: Any, **kwargs: Any) -> CommandError:
    with pytest.raises(CommandError) as info:
        run(*args, **kwargs)
    return info.value


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


# --- nsfw_scan --------------------------------------------------------------

scan_db = pytest.mark.django_db(transaction=True)


def bulk_photos(*contents: Any) -> list[Photo]:
    """Photos created without save signals, their files stored beforehand."""
    names = [default_storage.save(f"photos/{c.name}", c) for c in contents]
    Photo.objects.bulk_create([Photo(image=name) for name in names])
    return list(Photo.objects.order_by("pk"))


def rows(model: Any = Photo) -> Any:
    return ModeratedImage.objects.filter(content_type=ContentType.objects.get_for_model(model))


@scan_db
@pytest.mark.usefixtures("colour_backend")
def test_scan_classifies_bulk_created_objects():
    photos = bulk_photos(red(), blue(), blue())
    assert not rows().exists()
    out = run("nsfw_scan")
    verdicts = {int(r.object_id): (r.status, r.verdict) for r in rows()}
    assert verdicts == {
        photos[0].pk: (Status.DONE, Verdict.FLAGGED),
        photos[1].pk: (Status.DONE, Verdict.ALLOWED),
        photos[2].pk: (Status.DONE, Verdict.ALLOWED),
    }
    assert "testapp.Photo.image: 3/3 checked, 3 queued" in out
    assert "Checked 3 object(s). Queued 3 (3 new); 0 up to date." in out


@scan_db
@pytest.mark.usefixtures("colour_backend")
def test_scan_is_resumable_and_notices_files_changed_behind_its_back():
    photos = bulk_photos(red(), blue())
    run("nsfw_scan")
    first = {r.pk: r.classified_at for r in rows()}
    out = run("nsfw_scan")
    assert "Queued 0; 2 up to date." in out
    assert {r.pk: r.classified_at for r in rows()} == first
    new_name = default_storage.save("photos/now-red.png", red())
    Photo.objects.filter(pk=photos[1].pk).update(image=new_name)
    out = run("nsfw_scan")
    assert "Queued 1 (1 changed); 1 up to date." in out
    row = rows().get(object_id=str(photos[1].pk))
    assert (row.file_name, row.verdict) == (new_name, Verdict.FLAGGED)


@scan_db
@pytest.mark.usefixtures("colour_backend")
def test_scan_skips_queued_and_processing_rows_and_empty_fields():
    bulk_photos(red(), blue())
    Photo.objects.bulk_create([Photo(image="")])
    run("nsfw_scan")
    rows().filter(verdict=Verdict.FLAGGED).update(status=Status.QUEUED)
    rows().filter(verdict=Verdict.ALLOWED).update(status=Status.PROCESSING)
    assert "Checked 2 object(s). Queued 0; 2 up to date." in run("nsfw_scan")


@scan_db
@pytest.mark.usefixtures("colour_backend")
def test_rescan_variants():
    bulk_photos(red(), blue(), blue("other.png"))
    run("nsfw_scan")
    failed, old, current = list(rows().order_by("object_id"))
    rows().filter(pk=failed.pk).update(status=Status.FAILED, model_name="")
    rows().filter(pk=old.pk).update(model_name="old/model")

    assert "Would queue 1 (1 rescan)" in run("nsfw_scan", "--rescan=failed", "--dry-run")
    assert "Would queue 1 (1 rescan)" in run("nsfw_scan", "--rescan", "other-model", "--dry-run")
    assert "Would queue 3 (3 rescan)" in run("nsfw_scan", "--rescan", "--dry-run")

    run("nsfw_scan", "--rescan=other-model")
    assert rows().get(pk=old.pk).model_name == "tests/colour"
    assert rows().get(pk=failed.pk).status == Status.FAILED
    run("nsfw_scan", "--rescan=failed")
    assert rows().get(pk=failed.pk).status == Status.DONE
    before = rows().get(pk=current.pk).classified_at
    run("nsfw_scan", "--rescan")
    assert rows().get(pk=current.pk).classified_at > before


@scan_db
@pytest.mark.usefixtures("colour_backend")
def test_dry_run_writes_nothing():
    bulk_photos(red(), blue())
    out = run("nsfw_scan", "--dry-run")
    assert "testapp.Photo.image: 2/2 checked, 2 to queue" in out
    assert "Would queue 2 (2 new); 0 up to date." in out
    assert not ModeratedImage.objects.exists()


@scan_db
@pytest.mark.usefixtures("colour_backend")
def test_scan_goes_through_the_queue(monkeypatch):
    enqueued: list[int] = []
    monkeypatch.setattr(django_q_queue, "send", lambda task, pk: enqueued.append(pk))
    bulk_photos(red(), blue())
    with moderation(QUEUE="django_q"):
        run("nsfw_scan")
    assert sorted(enqueued) == sorted(rows().values_list("pk", flat=True))
    assert set(rows().values_list("status", flat=True)) == {Status.QUEUED}


@scan_db
@pytest.mark.usefixtures("colour_backend")
def test_sync_classifies_in_process_without_the_queue(monkeypatch):
    enqueued: list[int] = []
    monkeypatch.setattr(django_q_queue, "send", lambda task, pk: enqueued.append(pk))
    bulk_photos(red(), blue(), blue("b2.png"), red("r2.png"), blue("b3.png"))
    with moderation(QUEUE="django_q", BATCH_SIZE=2):
        out = run("nsfw_scan", "--sync", "--chunk-size", "3")
    assert enqueued == []
    assert sorted(rows().values_list("verdict", flat=True)) == sorted(
        [Verdict.FLAGGED] * 2 + [Verdict.ALLOWED] * 3
    )
    assert "Classified: 5 done, 0 failed, 0 to retry." in out


@scan_db
def test_sync_with_a_model_that_cannot_load_fails_before_writing():
    bulk_photos(red())
    with moderation(BACKEND=BROKEN), pytest.raises(CommandError, match="No model here"):
        run("nsfw_scan", "--sync")
    assert not ModeratedImage.objects.exists()


@scan_db
@pytest.mark.usefixtures("colour_backend")
def test_scan_in_chunks_over_int_uuid_and_string_pks():
    bulk_photos(*(blue(f"b{i}.png") for i in range(5)))
    Document.objects.bulk_create([Document(file="docs/missing.png") for _ in range(3)])
    Slide.objects.bulk_create(
        [Slide(slug=s, picture=default_storage.save("slides/r.png", red())) for s in "cab"]
    )
    out = run("nsfw_scan", "--chunk-size", "2")
    lines = [line for line in out.splitlines() if line.startswith("testapp.Photo.image")]
    assert lines[-1] == "testapp.Photo.image: 5/5 checked, 5 queued"
    assert len(lines) == 3
    assert rows(Document).count() == 3
    # A Document's file is not in its storage: a clear failure on the row, not a crash.
    assert set(rows(Document).values_list("status", flat=True)) == {Status.FAILED}
    assert set(rows(Slide).values_list("object_id", "verdict")) == {
        (s, Verdict.FLAGGED) for s in "abc"
    }
    assert "Queued 11 (11 rescan)" in run("nsfw_scan", "--rescan", "--chunk-size", "1")


@scan_db
@pytest.mark.usefixtures("colour_backend")
def test_scan_selects_models_and_fields():
    bulk_photos(red())
    Slide.objects.bulk_create([Slide(slug="s", picture="slides/x.png")])
    out = run("nsfw_scan", "--model", "testapp.Slide", "--dry-run")
    assert "testapp.Slide.picture" in out
    assert "Photo" not in out
    out = run("nsfw_scan", "--field", "image", "--dry-run")
    assert "testapp.Photo.image: 1/1" in out
    assert "Slide" not in out
    assert "testapp.Photo.image" in run("nsfw_scan", "--model", "testapp.ProxyPhoto", "--dry-run")


@scan_db
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "nope.Model"], "Unknown model 'nope.Model'"),
        (["--model", "Photo"], "use app_label.ModelName"),
        (["--model", "auth.User"], "auth.User has no moderated fields"),
        (["--field", "nope"], "Nothing moderated matches. Moderated fields: testapp.Banner.image,"),
        (["--chunk-size", "0"], "--chunk-size must be at least 1"),
        (["--rescan=everything"], "invalid choice: 'everything'"),
    ],
)
def test_scan_usage_errors(args, message):
    assert message in str(fails("nsfw_scan", *args))


@scan_db
def test_scan_with_nothing_registered(monkeypatch):
    from nsfw_moderation import registry

    monkeypatch.setattr(registry, "_registered", {})
    assert "No fields are moderated" in str(fails("nsfw_scan"))


@scan_db
@pytest.mark.usefixtures("colour_backend")
def test_scan_shows_a_progress_bar_on_a_terminal():
    bulk_photos(red(), blue())
    terminal = Terminal()
    call_command("nsfw_scan", "--dry-run", stdout=terminal)
    output = terminal.getvalue()
    assert "testapp.Photo.image: 100%" in output
    assert "2/2 checked" not in output  # the log lines are for non-terminals


@scan_db
@pytest.mark.usefixtures("colour_backend")
def test_scan_is_quiet_at_verbosity_zero():
    bulk_photos(red())
    assert run("nsfw_scan", "--verbosity", "0") == ""
    assert rows().get().verdict == Verdict.FLAGGED


def test_configured_model_name_needs_no_model_load(tiny_model_dir):
    with moderation(BACKEND="transformers", MODEL="someone/some-model"):
        assert configured_model_name() == "someone/some-model"
    with moderation(BACKEND="openvino", MODEL="someone/some-model", OPENVINO_CACHE="/nowhere"):
        assert configured_model_name() == "someone/some-model"
    with moderation(BACKEND="tests.backends.ColourBackend"):
        assert configured_model_name() == "tests/colour"
    with moderation(BACKEND="no.such.Backend"), pytest.raises(CommandError, match="import"):
        configured_model_name()


# --- nsfw_classify ----------------------------------------------------------


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


RED = image_bytes(color=(255, 0, 0))
BLUE = image_bytes(color=(0, 0, 255))


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "pics"
    write(root / "a-blue.png", BLUE)
    write(root / "nested" / "deeper" / "b-red.jpg", image_bytes(color=(255, 0, 0), fmt="JPEG"))
    write(root / ".hidden" / "skip.png", RED)
    write(root / "notes.txt", b"not an image")
    return root


@pytest.mark.usefixtures("colour_backend")
def test_classify_folder_prints_a_table_and_exits_1_when_flagged(folder):
    out = io.StringIO()
    with pytest.raises(CommandError) as info:
        call_command("nsfw_classify", str(folder), stdout=out)
    assert info.value.returncode == 1
    assert "1 of 2 image(s) at or above the flag threshold 0.5" in str(info.value)
    lines = out.getvalue().splitlines()
    assert lines[0].split() == ["path", "verdict", "score", "model"]
    assert lines[1].split() == [str(folder / "a-blue.png"), "allowed", "0.0000", "tests/colour"]
    path, verdict, score, model = lines[2].split()
    assert (path, verdict, model) == (
        str(folder / "nested/deeper/b-red.jpg"),
        "flagged",
        "tests/colour",
    )
    assert float(score) > 0.95
    assert len(lines) == 3  # hidden folders and non-image files are skipped


@pytest.mark.usefixtures("colour_backend")
def test_classify_clean_files_exit_0_and_json(tmp_path):
    one = write(tmp_path / "one.png", BLUE)
    animated = tmp_path / "anim.gif"
    from PIL import Image

    frames = [Image.new("RGB", (32, 32), c) for c in ("blue", "red", "blue")]
    frames[0].save(animated, save_all=True, append_images=frames[1:])
    out = run("nsfw_classify", str(one), "--json")
    assert json.loads(out) == [
        {
            "path": str(one),
            "verdict": "allowed",
            "score": 0.0,
            "model": "tests/colour",
            "scores": {"normal": 1.0, "nsfw": 0.0},
            "error": "",
        }
    ]
    # An animation is as unsafe as its worst frame, as in the worker.
    with pytest.raises(CommandError) as info:
        run("nsfw_classify", str(animated), "--json")
    assert info.value.returncode == 1


@pytest.mark.usefixtures("colour_backend")
def test_classify_reports_unreadable_files_and_exits_3(tmp_path):
    good = write(tmp_path / "good.png", BLUE)
    bad = write(tmp_path / "bad.png", b"\x89PNG\r\n\x1a\n truncated")
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError) as info:
        call_command("nsfw_classify", str(bad), str(good), stdout=out, stderr=err)
    assert info.value.returncode == 3
    assert "1 of 2 file(s) could not be classified" in str(info.value)
    assert out.getvalue().splitlines()[1].split()[:3] == [str(bad), "error", "-"]
    assert f"{bad}: The " in err.getvalue()
    # Flagged wins over unreadable: the stronger signal for a CI gate.
    red_file = write(tmp_path / "red.png", RED)
    with pytest.raises(CommandError) as info:
        run("nsfw_classify", str(bad), str(red_file))
    assert info.value.returncode == 1


@pytest.mark.usefixtures("colour_backend")
def test_classify_usage_errors_exit_2(tmp_path):
    assert fails("nsfw_classify", str(tmp_path / "missing.png")).returncode == 2
    assert fails("nsfw_classify", str(tmp_path)).returncode == 2  # empty folder
    write(tmp_path / "x.png", BLUE)
    assert fails("nsfw_classify", str(tmp_path), "--batch-size", "0").returncode == 2
    with moderation(BACKEND=BROKEN):
        error = fails("nsfw_classify", str(tmp_path))
    assert (error.returncode, str(error)) == (2, "No model here: the files are missing.")


@pytest.mark.usefixtures("colour_backend")
# The real process runs system checks, which may query every database.
@pytest.mark.django_db(databases="__all__")
def test_classify_exit_status_of_the_real_process(tmp_path, capsys):
    clean = write(tmp_path / "clean.png", BLUE)
    flagged = write(tmp_path / "flagged.png", RED)
    execute_from_command_line(["manage.py", "nsfw_classify", str(clean)])
    for argv, status in (
        ([str(flagged)], 1),
        ([], 2),
        ([str(tmp_path / "missing")], 2),
        ([str(clean), "--bogus-option"], 2),
    ):
        with pytest.raises(SystemExit) as info:
            execute_from_command_line(["manage.py", "nsfw_classify", *argv])
        assert info.value.code == status, argv
    assert "CommandError: 1 of 1 image(s)" in capsys.readouterr().err


def test_classify_with_the_transformers_backend(tiny_vit, tmp_path):
    files = [write(tmp_path / f"{i}.png", image_bytes(color=(i * 60, 90, 200))) for i in range(3)]
    with moderation(FLAG_THRESHOLD=1.0, BATCH_SIZE=2):
        results = json.loads(run("nsfw_classify", *map(str, files), "--json"))
    assert [r["model"] for r in results] == [str(tiny_vit)] * 3
    for result in results:
        assert set(result["scores"]) == {"normal", "nsfw"}
        assert result["score"] == pytest.approx(result["scores"]["nsfw"])


# --- nsfw_evaluate ----------------------------------------------------------


@pytest.fixture
def labelled(tmp_path: Path) -> Path:
    """Colour-backend scores: nsfw 1.0, 0.784, 0.235; normal 0.0, 0.0, 0.588."""
    root = tmp_path / "labelled"
    for label, colours in {
        "nsfw": [(255, 0, 0), (200, 0, 55), (60, 0, 195)],
        "normal": [(0, 0, 255), (0, 100, 155), (150, 0, 105)],
    }.items():
        for i, colour in enumerate(colours):
            write(root / label / f"{i}.png", image_bytes(color=colour))
    return root


@pytest.mark.usefixtures("colour_backend")
def test_evaluate_prints_metrics_matrix_and_table(labelled):
    err = io.StringIO()
    out = io.StringIO()
    call_command("nsfw_evaluate", str(labelled), stdout=out, stderr=err)
    text = out.getvalue()
    assert "Model: tests/colour" in text
    assert "nsfw (unsafe): 3 images, mean score 0.673" in text
    # At 0.5: tp 2 (1.0, 0.784), fn 1 (0.235), fp 1 (0.588), tn 2.
    for line in ("accuracy  0.667", "precision 0.667", "recall    0.667", "f1        0.667"):
        assert line in text
    assert "roc_auc   0.889" in text  # 8 of 9 (unsafe, safe) pairs ordered right
    assert "  unsafe               2        1" in text
    assert "  safe                 1        2" in text
    table = text.split("Threshold table:\n")[1].splitlines()
    assert len(table) == 22
    assert table[1].split() == ["0.00", "0.500", "1.000", "0.667", "0.500", "3", "3", "0", "0"]
    assert table[17].split() == ["0.80", "1.000", "0.333", "0.500", "0.667", "1", "0", "3", "2"]
    assert err.getvalue() == ""


@pytest.mark.usefixtures("colour_backend")
def test_evaluate_threshold_plot_and_skipped_files(labelled, tmp_path):
    write(labelled / "normal" / "broken.png", b"\x89PNG\r\n\x1a\n broken")
    plot = tmp_path / "out.svg"
    err = io.StringIO()
    out = io.StringIO()
    call_command(
        "nsfw_evaluate", str(labelled), "--threshold", "0.2", "--step", "0.25",
        "--plot", str(plot), stdout=out, stderr=err,
    )  # fmt: skip
    assert "Skipped" in err.getvalue()
    assert "broken.png" in err.getvalue()
    assert "recall    1.000" in out.getvalue()
    assert len(out.getvalue().split("Threshold table:\n")[1].splitlines()) == 1 + 5 + 2
    root = ET.fromstring(plot.read_text())
    titles = [el.findtext("{http://www.w3.org/2000/svg}title") for el in root.iter()]
    assert {"label normal", "label nsfw", "precision", "recall", "threshold 0.2"} <= set(titles)


@pytest.mark.usefixtures("colour_backend")
@pytest.mark.parametrize(
    ("layout", "args", "message"),
    [
        ({}, [], "needs one sub-folder per label"),
        ({"normal/a.png": BLUE}, [], "Found: normal"),
        ({"nsfw/a.png": RED}, [], "at least one other"),
        ({"nsfw/a.png": RED, "normal/a.txt": b"x"}, [], "one among the others"),
        ({"nsfw/a.png": RED, "normal/a.png": BLUE}, ["--threshold", "2"], "--threshold must be"),
        ({"nsfw/a.png": RED, "normal/a.png": BLUE}, ["--batch-size", "0"], "--batch-size at"),
    ],
)
def test_evaluate_errors(tmp_path, layout, args, message):
    for name, data in layout.items():
        write(tmp_path / name, data)
    assert message in str(fails("nsfw_evaluate", str(tmp_path), *args))


@pytest.mark.usefixtures("colour_backend")
def test_evaluate_missing_folder_and_broken_model(tmp_path, labelled):
    assert "is not a folder" in str(fails("nsfw_evaluate", str(tmp_path / "nope")))
    with moderation(BACKEND=BROKEN):
        assert "No model here" in str(fails("nsfw_evaluate", str(labelled)))


# --- nsfw_model -------------------------------------------------------------


def test_download_reports_a_local_model(tiny_vit):
    assert f"MODEL is already local: {tiny_vit.resolve()}" in run("nsfw_model", "download")


def test_download_offline_is_a_clear_error(monkeypatch, tmp_path):
    pytest.importorskip("huggingface_hub")
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with moderation(MODEL="nobody-here/no-such-model"):
        error = fails("nsfw_model", "download", "--cache-dir", str(tmp_path))
    assert "Hugging Face Hub is not reachable" in str(error)
    assert error.returncode == 1


def test_download_invalid_repo_id(tmp_path):
    pytest.importorskip("huggingface_hub")
    with moderation(MODEL="not a/valid//repo id"):
        error = fails("nsfw_model", "download", "--cache-dir", str(tmp_path))
    assert "There is no model 'not a/valid//repo id'" in str(error)


def test_verify_transformers_model(tiny_vit):
    out = run("nsfw_model", "verify")
    assert f"model:       {tiny_vit}" in out
    assert "device:      cpu" in out
    assert "precision:   fp32" in out
    assert "labels:      normal, nsfw" in out
    assert "load time:" in out
    from nsfw_moderation.backends import onednn

    packed = "layers packed for oneDNN" if onednn.available() else "not packed for oneDNN"
    assert packed in out.split("linear:")[1].splitlines()[0]
    assert "OK: the model loads and classifies." in out


def test_verify_fails_with_the_reason():
    with moderation(BACKEND=BROKEN):
        error = fails("nsfw_model", "verify")
    assert str(error) == "Cannot load the model: No model here: the files are missing."
    assert error.returncode == 1


def test_verify_refuses_unsafe_labels_the_model_does_not_have(tiny_vit):
    with moderation(UNSAFE_LABELS=["NSFW"]):
        error = fails("nsfw_model", "verify")
    message = str(error)
    assert "UNSAFE_LABELS ['NSFW'] name none of the model's labels ['normal', 'nsfw']" in message


def test_info_transformers_model(tiny_vit):
    from transformers import AutoModelForImageClassification

    expected = AutoModelForImageClassification.from_pretrained(tiny_vit).num_parameters()
    out = run("nsfw_model", "info")
    assert "labels:      normal, nsfw" in out
    assert f"parameters:  {expected:,}" in out
    assert f"on disk:     {tiny_vit.resolve()} (" in out
    assert "KB)" in out


@pytest.mark.usefixtures("colour_backend")
def test_info_other_backend_and_uncached_model(tmp_path):
    with moderation(MODEL="nobody-here/no-such-model"):
        out = run("nsfw_model", "info", "--cache-dir", str(tmp_path))
    assert "on disk:     not in the Hugging Face cache" in out
    assert "parameters:  n/a for this backend" in out
    with moderation(BACKEND=BROKEN):
        assert "No model here" in str(fails("nsfw_model", "info"))


def test_model_needs_an_action():
    assert "required: ACTION" in str(fails("nsfw_model"))


# The real process runs system checks, which may query every database.
@pytest.mark.django_db(databases="__all__")
def test_model_accepts_djangos_options_after_the_action(capsys):
    with moderation(BACKEND="opennsfw"):
        execute_from_command_line(["manage.py", "nsfw_model", "info", "--settings=tests.settings"])
    assert "labels:      normal, nsfw" in capsys.readouterr().out


# --- nsfw_model optimize (the openvino backend) --------------------------------


@pytest.fixture
def calibration_folder(tmp_path: Path) -> Path:
    from tests.conftest import calibration_images

    folder = tmp_path / "calibration"
    folder.mkdir()
    for index, image in enumerate(calibration_images()):
        image.save(folder / f"{index}.jpg", quality=92)
    (folder / "notes.txt").write_text("not an image")
    return folder


@pytest.fixture
def empty_cache(openvino: Path, tmp_path: Path) -> Iterator[Path]:
    with moderation(OPENVINO_CACHE=str(tmp_path / "cache")):
        yield tmp_path / "cache"


def test_optimize_converts_checks_and_activates(empty_cache, calibration_folder):
    out = run(
        "nsfw_model",
        "optimize",
        *("--calibration-dir", str(calibration_folder), "--precision", "fp32"),
        *("--precision", "int8"),
    )
    assert f"calibration: 24 images from the folder {calibration_folder}" in out
    assert "Only 24 images: a few hundred are better." in out
    assert "fp32: active: 24 images, max |Δp| 0.0000, 0 verdict flip(s)" in out
    assert "int8: active: 24 images, max |Δp| 0." in out
    assert str(empty_cache) in out
    assert "int8-openvino-" in out


def test_optimize_refusal_says_why_and_exits_1(empty_cache, calibration_folder, monkeypatch):
    from tests.test_openvino import broken_quantisation

    broken_quantisation(monkeypatch)
    out = io.StringIO()
    with pytest.raises(CommandError, match=r"The accuracy guard refused int8\.") as info:
        call_command(
            "nsfw_model",
            "optimize",
            "--precision",
            "int8",
            "--calibration-dir",
            str(calibration_folder),
            stdout=out,
        )
    assert info.value.returncode == 1
    assert "int8: refused: 24 images, max |Δp|" in out.getvalue()
    assert f"is over MAX_SCORE_DIFFERENCE {TINY_MAX_DIFFERENCE}" in out.getvalue()
    assert "Nothing changed in" in out.getvalue()
    info_out = io.StringIO()
    with moderation(PRECISION="int8"), pytest.raises(CommandError, match="was refused"):
        call_command("nsfw_model", "info", stdout=info_out)
    assert "converted:   none (run: manage.py nsfw_model optimize)" in info_out.getvalue()
    assert "guard:       refused" in info_out.getvalue()
    assert "agreement:   24 images, max |Δp|" in info_out.getvalue()


@scan_db
def test_optimize_calibrates_on_the_sites_own_images_by_default(empty_cache):
    from tests.conftest import calibration_images

    with moderation(QUEUE="sync", BACKEND="tests.backends.ColourBackend"):
        for index, image in enumerate(calibration_images(6)):
            buffer = io.BytesIO()
            image.save(buffer, "PNG")
            Photo.objects.create(image=ContentFile(buffer.getvalue(), name=f"{index}.png"))
    out = run("nsfw_model", "optimize", "--images", "5")
    assert "calibration: 5 images from the site's most recently classified images" in out
    assert "fp32: active: 5 images" in out


@pytest.mark.django_db
def test_optimize_without_images_says_what_to_do(empty_cache):
    error = fails("nsfw_model", "optimize")
    assert "classify some uploads first, or give a folder" in str(error)
    assert error.returncode == 1
    assert "--images must be at least 1" in str(fails("nsfw_model", "optimize", "--images", "0"))


def test_verify_and_info_openvino_model(openvino):
    out = run("nsfw_model", "verify")
    assert f"model:       {openvino}" in out
    assert "precision:   fp32" in out
    assert "runtime:     OpenVINO " in out
    assert "runs as:     f32, " in out
    assert "fp32-openvino-" in out
    assert " MB)" in out
    assert "agreement:   24 images, max |Δp| 0.0000, 0 verdict flip(s)" in out
    out = run("nsfw_model", "info")
    assert "runtime:     OpenVINO " in out
    assert "calibration: 24 images from tests" in out
    assert f"limits:      max |Δp| {TINY_MAX_DIFFERENCE}, 1 flip(s)" in out
    assert "guard:       within the limits" in out
    assert "labels:      normal, nsfw" in out
