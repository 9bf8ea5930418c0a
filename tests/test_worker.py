"""End to end: saves in this process, a real qcluster process classifies them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db.models import Count

from nsfw_moderation.models import ModeratedImage, ModerationEvent, Status
from tests.conftest import TINY_LIMITS, moderation
from tests.images import image_file
from tests.testapp.models import Document, Photo, Profile
from tests.workers import ROOT, Cluster, wait_until

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("empty_broker"),
]


def colour(i: int) -> tuple[int, int, int]:
    return ((i * 37) % 256, (i * 91) % 256, (i * 53) % 256)


def test_qcluster_classifies_every_saved_image(tmp_path: Path, worker_backend):
    env, model_name = worker_backend
    with moderation(QUEUE="django_q"):
        photos = [
            Photo.objects.create(image=image_file(f"p{i}.png", color=colour(i))) for i in range(30)
        ]
        profiles = [
            Profile.objects.create(
                avatar=image_file("a.jpg", color=colour(i)),
                banner=image_file("b.png", color=colour(i + 1)),
            )
            for i in range(3)
        ]
    expected = len(photos) + 2 * len(profiles)
    assert ModeratedImage.objects.filter(status=Status.QUEUED).count() == expected

    with Cluster(tmp_path / "qcluster.log", **env) as cluster:
        done = wait_until(
            lambda: ModeratedImage.objects.filter(status=Status.DONE).count() == expected,
            timeout=180,
        )
        assert done, cluster.log()

    rows = ModeratedImage.objects.all()
    assert all(row.model_name.startswith(model_name) for row in rows)
    for row in rows:
        assert sum(row.scores.values()) == pytest.approx(1.0, abs=1e-5)
        assert row.sha256
        assert row.classified_at
        assert row.attempts == 1
    # Exactly one classification event per row.
    per_row = ModerationEvent.objects.values("image").annotate(n=Count("pk"))
    assert {entry["n"] for entry in per_row} == {1}
    assert len(per_row) == expected


def test_qcluster_runs_openvino_in_its_forked_workers(
    tmp_path: Path, spread_model_dir: Path, openvino_cache: Path
):
    """Two workers (django-q2's default here), each loading the converted model after the fork."""
    env = {
        "NSFW_TEST_BACKEND": "openvino",
        "NSFW_TEST_MODEL_DIR": str(spread_model_dir),
        "NSFW_TEST_PRECISION": "int8",
        "NSFW_TEST_OPENVINO_CACHE": str(openvino_cache),
        "NSFW_TEST_MAX_SCORE_DIFFERENCE": str(TINY_LIMITS["MAX_SCORE_DIFFERENCE"]),
        "NSFW_TEST_MAX_VERDICT_FLIPS": str(TINY_LIMITS["MAX_VERDICT_FLIPS"]),
        "NSFW_TEST_WORKERS": "2",
    }
    with moderation(QUEUE="django_q"):
        for i in range(24):
            Photo.objects.create(image=image_file(f"p{i}.png", color=colour(i), size=(300, 200)))
    with Cluster(tmp_path / "qcluster.log", **env) as cluster:
        done = wait_until(
            lambda: ModeratedImage.objects.filter(status=Status.DONE).count() == 24, timeout=180
        )
        assert done, cluster.log()
        assert cluster.process is not None
        tree = process_tree(cluster.process.pid)
    # The runtime was loaded in the workers only, never in a process that forks.
    with_runtime = {pid for pid, maps in tree.items() if "libopenvino" in maps[1]}
    forking = {pid for pid, (children, _) in tree.items() if children}
    assert with_runtime
    assert not with_runtime & forking
    rows = ModeratedImage.objects.all()
    assert {row.model_name for row in rows} == {str(spread_model_dir)}
    assert {row.attempts for row in rows} == {1}
    for row in rows:
        assert sum(row.scores.values()) == pytest.approx(1.0, abs=1e-5)


def process_tree(root: int) -> dict[int, tuple[list[int], str]]:
    """Each process under ``root`` (included): its children and its memory maps."""
    tree: dict[int, tuple[list[int], str]] = {}
    pending = [root]
    while pending:
        pid = pending.pop()
        children = [
            int(child)
            for task in Path(f"/proc/{pid}/task").iterdir()
            for child in (task / "children").read_text().split()
        ]
        tree[pid] = (children, Path(f"/proc/{pid}/maps").read_text())
        pending += children
    return tree


def test_saving_with_the_django_q_queue_never_imports_torch(tmp_path: Path):
    script = """
import sys
import django
django.setup()
from django.core.files.base import ContentFile
from django.core.management import call_command
call_command("migrate", verbosity=0)
from django_q.models import OrmQ
from nsfw_moderation.models import ModeratedImage
from tests.images import image_bytes
from tests.testapp.models import Photo
import PIL.Image
opened = []
real_open = PIL.Image.open
PIL.Image.open = lambda *a, **k: opened.append(a) or real_open(*a, **k)
photo = Photo.objects.create(image=ContentFile(image_bytes(), name="x.png"))
photo.image = ContentFile(image_bytes((9, 9, 9)), name="y.png")
photo.save()
assert ModeratedImage.objects.get().status == "queued"
assert OrmQ.objects.count() == 2, OrmQ.objects.count()
assert opened == [], "an image was decoded while saving"
for module in ("torch", "transformers", "onnxruntime", "nsfw_moderation.backends.transformers"):
    assert module not in sys.modules, module + " was imported"
print("ok")
"""
    # The web side on its own: SQLite and the ORM broker, whatever this run uses.
    inherited = {
        k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "NSFW_TEST_BROKER")
    }
    env = {
        **inherited,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "NSFW_TEST_DB_NAME": str(tmp_path / "web.sqlite3"),
        "NSFW_TEST_MEDIA_ROOT": str(tmp_path / "media"),
        "NSFW_TEST_QUEUE": "django_q",
    }
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_django_q_queue_does_not_classify_in_process():
    with moderation(QUEUE="django_q"):
        Document.objects.create(file=image_file("d.png"))
    assert ModeratedImage.objects.get().status == Status.QUEUED
