"""``nsfw_export_decisions``: the moderators' decisions as a CSV or JSON Lines manifest."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import CommandError, call_command
from django.utils import timezone

from nsfw_moderation import append_only, review
from nsfw_moderation.models import ModeratedImage, ModerationEvent, Verdict
from tests.images import image_bytes
from tests.testapp.models import Photo

pytest_plugins = ["tests.admin_fixtures"]
pytestmark = pytest.mark.django_db


@pytest.fixture
def stored(make_row: Callable[..., ModeratedImage]) -> Callable[..., ModeratedImage]:
    """A row of a photo whose generated picture is really in storage, with its SHA-256."""

    def stored(colour: tuple[int, int, int], **values: Any) -> ModeratedImage:
        data = image_bytes(colour)
        name = default_storage.save("photos/pic.png", ContentFile(data))
        photo = Photo.objects.create(title="stored")
        Photo.objects.filter(pk=photo.pk).update(image=name)
        sha256 = hashlib.sha256(data).hexdigest()
        return make_row(photo, file_name=name, sha256=sha256, **values)

    return stored


@pytest.fixture
def decided(stored, reviewer: User) -> list[ModeratedImage]:
    rejected = stored((200, 10, 10), score=0.93, shadow_score=0.7, shadow_model_name="shadow/x")
    approved = stored((10, 200, 10), score=0.71)
    sample = stored((10, 10, 200), verdict=Verdict.ALLOWED, score=0.04, audit=True)
    review.reject(rejected, user=reviewer)
    review.approve(approved, user=reviewer)
    review.reject(sample, user=reviewer)
    return [rejected, approved, sample]


def export(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("nsfw_export_decisions", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_a_csv_line_per_decided_image_without_reviewers(decided):
    text, err = export()
    lines = list(csv.DictReader(io.StringIO(text)))
    assert "reviewer" not in lines[0]
    assert "Exported 3 decisions." in err
    by_sha = {line["sha256"]: line for line in lines}
    rejected, approved, sample = (by_sha[row.sha256] for row in decided)
    assert rejected == {
        "file_name": decided[0].file_name,
        "url": f"/media/{decided[0].file_name}",
        "content_type": "testapp.photo",
        "object_id": decided[0].object_id,
        "field": "image",
        "sha256": decided[0].sha256,
        "verdict": "rejected",
        "decided_at": rejected["decided_at"],
        "verdict_before": "flagged",
        "model": "tests/colour",
        "score": "0.93",
        "shadow_model": "shadow/x",
        "shadow_score": "0.7",
        "audit": "False",
    }
    assert (approved["verdict"], approved["shadow_score"]) == ("approved", "")
    assert (sample["verdict"], sample["verdict_before"], sample["audit"]) == (
        "rejected",
        "allowed",
        "True",
    )
    assert "reviewer" not in text  # the username, and the column


def test_json_lines_of_the_audit_samples_to_a_file(decided, tmp_path):
    target = tmp_path / "labels.jsonl"
    text, _ = export("--format", "jsonl", "--audit-only", "--output", str(target), "--reviewers")
    assert text == ""
    (record,) = [json.loads(line) for line in target.read_text().splitlines()]
    assert (record["sha256"], record["audit"], record["score"]) == (decided[2].sha256, True, 0.04)
    assert record["reviewer"] == "reviewer"


def test_only_the_latest_decision_and_the_days_asked_for(decided, reviewer):
    review.approve(decided[0], user=reviewer)  # changed their mind
    old = decided[1]
    with append_only.lifted():  # back-dated past the triggers, as only a test may
        ModerationEvent._base_manager.filter(image=old).update(
            created_at=timezone.now() - timedelta(days=30)
        )
    lines = list(csv.DictReader(io.StringIO(export("--days", "7")[0])))
    assert {line["sha256"]: line["verdict"] for line in lines} == {
        decided[0].sha256: "approved",
        decided[2].sha256: "rejected",
    }


def test_no_bytes_are_copied_unless_asked(decided, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    export("--output", str(out / "labels.csv"))
    assert [p.name for p in out.iterdir()] == ["labels.csv"]


def test_copied_images_are_checked_and_named_by_their_sha256(decided, tmp_path):
    rejected, approved, sample = decided
    # One file changed since the decision, one is gone.
    with default_storage.open(approved.file_name, "wb") as handle:
        handle.write(image_bytes((1, 2, 3)))
    default_storage.delete(sample.file_name)
    copies = tmp_path / "images"
    _, err = export("--copy-images", str(copies))
    assert [p.name for p in copies.iterdir()] == [f"{rejected.sha256}.png"]
    data = (copies / f"{rejected.sha256}.png").read_bytes()
    assert hashlib.sha256(data).hexdigest() == rejected.sha256
    assert f"Skipped {approved.file_name}: changed" in err
    assert f"Skipped {sample.file_name}: missing" in err
    assert "Copied 1 images" in err
    assert "skipped 2" in err


def test_a_new_file_in_the_field_is_not_copied_for_the_old_decision(decided, tmp_path):
    ModeratedImage.objects.filter(pk=decided[0].pk).update(sha256="f" * 64)
    _, err = export("--copy-images", str(tmp_path))
    assert f"{decided[0].sha256}.png" not in [p.name for p in tmp_path.iterdir()]
    assert "another file is stored there now" in err


def test_an_unwritable_output_is_a_command_error(decided, tmp_path):
    with pytest.raises(CommandError, match="Cannot write"):
        export("--output", str(tmp_path / "missing" / "labels.csv"))


def test_a_spreadsheet_reads_names_as_text_never_as_formulas(stored, make_user):
    formula = stored((200, 10, 10), score=0.9)
    ModeratedImage.objects.filter(pk=formula.pk).update(file_name="=HYPERLINK(1)")
    formula.refresh_from_db()
    named = make_user("-2+3", "nsfw_moderation.review_moderatedimage")
    review.reject(formula, user=named)
    text, _ = export("--reviewers")
    (line,) = csv.DictReader(io.StringIO(text))
    assert (line["file_name"], line["reviewer"]) == ("'=HYPERLINK(1)", "'-2+3")
    jsonl, _ = export("--format", "jsonl", "--reviewers")
    assert json.loads(jsonl)["file_name"] == "=HYPERLINK(1)"  # JSON is data, never a formula


def test_copying_never_follows_a_link_or_replaces_a_file(decided, tmp_path):
    target = tmp_path / "images"
    target.mkdir()
    elsewhere = tmp_path / "elsewhere.txt"
    elsewhere.write_text("keep me")
    rejected, approved, _sample = decided
    (target / f"{rejected.sha256}.png").symlink_to(elsewhere)
    (target / f"{approved.sha256}.png").write_bytes(b"other bytes")
    _, err = export("--copy-images", str(target))
    assert elsewhere.read_text() == "keep me"
    assert (target / f"{approved.sha256}.png").read_bytes() == b"other bytes"
    assert "Copied 1 images" in err
    assert "skipped 2" in err
    assert err.count("exists:") == 2


def test_an_unreadable_or_too_large_file_is_skipped_and_the_export_goes_on(
    decided, tmp_path, monkeypatch
):
    from nsfw_moderation import storage

    rejected, approved, _sample = decided
    real = storage.read_file

    def read_file(row: ModeratedImage) -> bytes:
        if row.pk == rejected.pk:
            raise OSError("the bucket is unreachable")
        return real(row)

    monkeypatch.setattr(storage, "read_file", read_file)
    size = len(default_storage.open(approved.file_name).read())
    from tests.conftest import moderation

    with moderation(MAX_FILE_SIZE=size - 1):
        _, err = export("--copy-images", str(tmp_path))
    assert "unreadable: OSError: the bucket is unreachable" in err
    assert "too large" in err
    assert not list(tmp_path.glob(f"{approved.sha256}*"))


def test_a_copy_keeps_only_an_image_extension(stored, reviewer, tmp_path):
    row = stored((200, 10, 10), score=0.9)
    default_storage.save("photos/page.php", ContentFile(default_storage.open(row.file_name).read()))
    ModeratedImage.objects.filter(pk=row.pk).update(file_name="photos/page.php")
    Photo.objects.filter(pk=row.object_id).update(image="photos/page.php")
    row.refresh_from_db()
    review.reject(row, user=reviewer)
    export("--copy-images", str(tmp_path / "copies"))
    assert [path.name for path in (tmp_path / "copies").iterdir()] == [row.sha256]
