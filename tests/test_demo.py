"""The demo site: its settings load, it migrates, and an upload gets a verdict.

The demo runs with its own settings (``demo_site.settings``), so these tests
drive it through ``manage.py`` in subprocesses, against a temporary database
and media directory, with ``QUEUE="sync"`` so no worker is needed.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from demo_site import model_choice

ROOT = Path(__file__).resolve().parent.parent

# Runs inside `manage.py shell` with the demo's settings; prints one JSON line.
SCRIPT = r"""
import json
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext, setup_test_environment
from demo_site import samples
from demo_site.accounts.models import Profile
from demo_site.gallery.models import Photo
from nsfw_moderation.models import ModeratedImage

setup_test_environment()

def row_of(obj):
    row = ModeratedImage.objects.get(
        content_type__model=obj._meta.model_name, object_id=str(obj.pk)
    )
    return {"status": row.status, "verdict": row.verdict, "model_name": row.model_name,
            "error": row.error}

result = {}
_, image = next(samples.sample_files())
photo = Photo.objects.create(title="Saved in a script", image=image)
result["photo"] = row_of(photo)

user = User.objects.create_user("someone")
profile = Profile.objects.create(user=user, avatar=samples.avatar("s"))
result["avatar"] = row_of(profile)

client = Client()
upload = client.post("/", {"title": "Uploaded", "image": samples.as_file(samples.waves(), "w.png")})
result["upload_status"] = upload.status_code
uploaded = Photo.objects.get(title="Uploaded")
result["uploaded"] = row_of(uploaded)

client.get("/")  # warm the content type cache
with CaptureQueriesContext(connection) as queries:
    page = client.get("/")
html = page.content.decode()
result["page_status"] = page.status_code
result["page_queries"] = len(queries)
result["shows_upload"] = f'id="photo-{uploaded.pk}" data-verdict="allowed"' in html
result["image_status"] = client.get(f"/photos/{uploaded.pk}/image").status_code

ModeratedImage.objects.filter(object_id=str(uploaded.pk), content_type__model="photo").update(
    verdict="rejected"
)
html = client.get("/").content.decode()
result["rejected_card"] = f'id="photo-{uploaded.pk}" data-verdict="rejected"' in html
result["rejected_image_in_page"] = f"/photos/{uploaded.pk}/image" in html
result["rejected_image_status"] = client.get(f"/photos/{uploaded.pk}/image").status_code
result["raw_media_status"] = client.get("/media/" + uploaded.image.name).status_code
staff = Client()
staff.force_login(User.objects.create_superuser("moderator"))
result["raw_media_status_for_staff"] = staff.get("/media/" + uploaded.image.name).status_code
result["visible_raw_media_status"] = client.get("/media/" + photo.image.name).status_code
import importlib.util
if importlib.util.find_spec("rest_framework"):
    listed = client.get("/api/photos/").json()["results"]
    result["api_images"] = {str(item["id"]): item["image"] for item in listed}

ModeratedImage.objects.filter(object_id=str(photo.pk), content_type__model="photo").update(
    verdict="pending", status="queued"
)
html = client.get("/").content.decode()
result["pending_card"] = f'id="photo-{photo.pk}" data-verdict="pending"' in html
result["pending_image_in_page"] = f"/photos/{photo.pk}/image" in html
result["pending_image_status"] = client.get(f"/photos/{photo.pk}/image").status_code
result["pending_raw_media_status"] = client.get("/media/" + photo.image.name).status_code

count = Photo.objects.count()
big = samples.as_file(samples.waves(), "big.png")
big = SimpleUploadedFile("big.png", big.read() + b"\0" * (10 * 1024 * 1024))
refused = client.post("/", {"title": "Too big", "image": big})
result["too_big"] = [refused.status_code, "files of up to 10" in refused.content.decode()]
pdf = SimpleUploadedFile("x.pdf", samples.as_file(samples.waves(), "w.png").read())
refused = client.post("/", {"title": "Polyglot", "image": pdf})
misnamed = "does not match its contents" in refused.content.decode()
result["misnamed"] = [refused.status_code, misnamed]
result["refused_saved"] = Photo.objects.count() - count
result["uploaded_pk"], result["photo_pk"] = str(uploaded.pk), str(photo.pk)
result["photo_url"] = photo.image.url

import importlib.util
if importlib.util.find_spec("av"):  # the [video] extra
    from tests import videos
    clip = SimpleUploadedFile("clip.mp4", videos.clip([(0.0, videos.SAFE)], seconds=2, gop=5))
    result["clip_status"] = client.post("/", {"title": "A clip", "image": clip}).status_code
    clip_photo = Photo.objects.get(title="A clip")
    result["clip"] = row_of(clip_photo)
    html = client.get("/").content.decode()
    result["clip_shown_as_video"] = f'<video src="/photos/{clip_photo.pk}/image' in html
print("RESULT " + json.dumps(result))
"""


@pytest.fixture
def demo_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NSFW_DEMO_", "DEMO_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="demo_site.settings",
        DEMO_DB_PATH=str(tmp_path / "demo.sqlite3"),
        DEMO_MEDIA_ROOT=str(tmp_path / "media"),
        NSFW_DEMO_QUEUE="sync",
    )
    return env


def manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    process = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert process.returncode == 0, process.stdout + process.stderr
    return process


@pytest.mark.slow
def test_check_migrate_and_migrations_up_to_date(demo_env: dict[str, str]) -> None:
    assert "no issues" in manage(demo_env, "check").stdout
    manage(demo_env, "migrate", "--noinput")
    manage(demo_env, "makemigrations", "--check", "--dry-run", "gallery", "accounts")
    assert Path(demo_env["DEMO_DB_PATH"]).exists()


@pytest.mark.slow
def test_uploads_get_a_verdict_and_the_gallery_shows_it(demo_env: dict[str, str]) -> None:
    manage(demo_env, "migrate", "--noinput")
    output = manage(demo_env, "shell", "-c", SCRIPT).stdout
    result = json.loads(output.split("RESULT ", 1)[1])

    if model_choice.falconsai_cached():
        expected_model = model_choice.FALCONSAI
    else:
        expected_model = "yahoo/open_nsfw"
    for key in ("photo", "avatar", "uploaded"):  # settings MODELS, register(), a form upload
        row = result[key]
        assert row["status"] == "done", row
        assert row["verdict"] == "allowed", row
        assert row["model_name"].startswith(expected_model), row
    assert result["upload_status"] == 302
    assert result["page_status"] == 200
    assert result["page_queries"] == 1  # photos and their verdicts in one query
    assert result["shows_upload"]
    assert result["image_status"] == 200
    assert result["rejected_card"]
    assert not result["rejected_image_in_page"]
    assert result["rejected_image_status"] == 404
    # Raw media only through the visibility check: not for staff either.
    assert result["raw_media_status"] == 404
    assert result["raw_media_status_for_staff"] == 404
    assert result["visible_raw_media_status"] == 200
    if "api_images" in result:  # the REST API, where DRF is installed: same rule
        assert result["api_images"][result["uploaded_pk"]] is None
        assert result["api_images"][result["photo_pk"]].endswith(result["photo_url"])
    # Pending images wait unseen: a card without the picture.
    assert result["pending_card"]
    assert not result["pending_image_in_page"]
    assert result["pending_image_status"] == 404
    assert result["pending_raw_media_status"] == 404
    # The upload form refuses oversize and misnamed files.
    assert result["too_big"] == [200, True]
    assert result["misnamed"] == [200, True]
    assert result["refused_saved"] == 0
    # A short clip is accepted, sampled by the worker and shown as a video.
    if importlib.util.find_spec("av") is None:
        return
    assert result["clip_status"] == 302
    assert (result["clip"]["status"], result["clip"]["verdict"]) == ("done", "allowed")
    assert result["clip_shown_as_video"]


# The appeal flow as the demo sets it up (run.set_up, its users and samples), in `manage.py shell`.
APPEAL_SCRIPT = r"""
import json, os
from pathlib import Path
from django.contrib.auth.models import User
from django.test import Client
from django.test.utils import setup_test_environment
from demo_site import run, samples
from demo_site.gallery.models import Photo
from nsfw_moderation import review
from nsfw_moderation.models import Appeal, ModeratedImage, Statement

setup_test_environment()
run.PASSWORD_FILE = Path(os.environ["DEMO_TEST_PASSWORDS"]) / ".admin-password"
passwords = run.set_up()
result = {"new_passwords": sorted(k for k, v in passwords.items() if v)}
uploader = User.objects.get(username="uploader")
moderator2 = User.objects.get(username="moderator2")
result["roles"] = [uploader.is_staff, moderator2.is_staff, moderator2.is_superuser,
                   moderator2.has_perm("nsfw_moderation.review_moderatedimage")]
owned = Photo.objects.filter(uploaded_by=uploader).count()
result["samples_owned"] = owned == Photo.objects.count()

client = Client()
login = client.post("/accounts/login/", {"username": "uploader", "password": passwords["uploader"]})
result["login"] = [login.status_code, login.url]
result["login_page"] = "Log in" in Client().get("/accounts/login/").text
upload = client.post("/", {"title": "Mine", "image": samples.as_file(samples.waves(), "m.png")})
result["upload_owner"] = Photo.objects.get(title="Mine").uploaded_by_id == uploader.pk

photo = Photo.objects.get(title="Mine")
row = ModeratedImage.objects.get(object_id=str(photo.pk), content_type__model="photo")
review.reject(row, user=User.objects.get(username="admin"), note="internal", user_note="too red")
statement = Statement.objects.get(image=row)
path = f"/moderation/decisions/{statement.public_id}/"
result["why_link_for_owner"] = f'href="{path}"' in client.get("/").text
result["why_link_for_others"] = f'href="{path}"' in Client().get("/").text
page = client.get(path).text
result["statement_in_site_layout"] = ["Demo gallery" in page, "Mine" in page, "internal" in page]
client.post(path, {"text": "It is only waves."})

moderator = Client()
moderator.post("/admin/login/", {"username": "moderator2", "password": passwords["moderator2"]})
queue = moderator.get("/admin/nsfw_moderation/appeal/queue/")
result["queue"] = [queue.status_code, "It is only waves." in queue.text]
review.decide_appeal(Appeal.objects.get(), user=moderator2, upheld=True)
result["after"] = "Restored after appeal" in client.get("/moderation/decisions/").text
print("RESULT " + json.dumps(result))
"""


@pytest.mark.slow
def test_the_demo_users_walk_an_appeal(demo_env: dict[str, str], tmp_path: Path) -> None:
    env = {**demo_env, "DEMO_TEST_PASSWORDS": str(tmp_path)}
    output = manage(env, "shell", "-c", APPEAL_SCRIPT).stdout
    result = json.loads(output.split("RESULT ", 1)[1])
    assert result["new_passwords"] == ["admin", "moderator2", "uploader"]
    assert result["roles"] == [False, True, False, True]
    assert result["samples_owned"]
    assert result["login"] == [302, "/"]
    assert result["login_page"]
    assert result["upload_owner"]
    assert (result["why_link_for_owner"], result["why_link_for_others"]) == (True, False)
    assert result["statement_in_site_layout"] == [True, True, False]
    assert result["queue"] == [200, True]
    assert result["after"]
    assert {p.name for p in tmp_path.glob(".*-password")} == {
        ".admin-password",
        ".moderator2-password",
        ".uploader-password",
    }


def test_backend_forced_by_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(model_choice.ENV_VAR, "Transformers")
    choice = model_choice.choose_backend()
    assert choice.backend == "transformers"
    assert not choice.is_fallback


def test_forcing_opennsfw_is_not_reported_as_a_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(model_choice.ENV_VAR, "opennsfw")
    assert not model_choice.choose_backend().is_fallback


def test_unknown_forced_backend_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(model_choice.ENV_VAR, "magic")
    with pytest.raises(ImproperlyConfigured, match="transformers, opennsfw"):
        model_choice.choose_backend()


def test_falls_back_to_opennsfw_without_the_cached_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(model_choice.ENV_VAR, raising=False)
    monkeypatch.setattr(model_choice, "falconsai_cached", lambda: False)
    choice = model_choice.choose_backend()
    assert (choice.backend, choice.is_fallback) == ("opennsfw", True)
    warning = model_choice.fallback_warning(choice)
    assert "hf download Falconsai/nsfw_image_detection" in warning


def test_uses_falconsai_when_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(model_choice.ENV_VAR, raising=False)
    monkeypatch.setattr(model_choice, "falconsai_cached", lambda: True)
    assert model_choice.choose_backend().backend == "transformers"


def test_only_safetensors_weights_count_as_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    huggingface_hub = pytest.importorskip("huggingface_hub")
    snapshot = "/cache/models--Falconsai--nsfw_image_detection/snapshots/" + "c" * 40
    present = {"config.json", "preprocessor_config.json", "pytorch_model.bin"}

    def lookup(repo_id: str, filename: str) -> str | None:
        return f"{snapshot}/{filename}" if filename in present else None

    monkeypatch.setattr(huggingface_hub, "try_to_load_from_cache", lookup)
    assert not model_choice.falconsai_cached()
    present.add("model.safetensors")
    assert model_choice.falconsai_cached()
    assert model_choice.cached_revision() == "c" * 40


@pytest.mark.django_db
def test_admin_password_is_printed_only_when_it_is_set(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from demo_site import run

    monkeypatch.setattr(run, "PASSWORD_FILE", tmp_path / ".admin-password")
    user, password = run.ensure_admin()
    assert password is not None
    assert (tmp_path / ".admin-password").stat().st_mode & 0o777 == 0o600
    run.print_login("8000", password)
    assert password in capsys.readouterr().out
    again, none = run.ensure_admin()
    assert (again, none) == (user, None)
    run.print_login("8000", None)
    out = capsys.readouterr().out
    assert password not in out
    assert "Password: in " in out
