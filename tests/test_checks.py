"""System checks: each bad setting gets its own stable id and a hint."""

from __future__ import annotations

import pytest
from django.core.checks import run_checks
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from tests.conftest import moderation

# Model checks may query the database (Django 6 asks SQLite about JSON support).
# Every database: Django 6 asks each configured one (the tests configure two).
pytestmark = pytest.mark.django_db(databases="__all__")


def ids(**changes: object) -> list[str]:
    with moderation(**changes):
        return sorted(m.id for m in run_checks() if m.id and m.id.startswith("nsfw_moderation."))


def test_project_settings_are_clean():
    assert ids() == []


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"MODELS": {"testapp.Nope": ["image"]}}, ["nsfw_moderation.E001"]),
        ({"MODELS": {"nolabel": ["image"]}}, ["nsfw_moderation.E001"]),
        ({"MODELS": ["testapp.Photo"]}, ["nsfw_moderation.E018"]),
        ({"MODELS": {"testapp.Photo": ["picture"]}}, ["nsfw_moderation.E002"]),
        ({"MODELS": {"testapp.Photo": "image"}}, ["nsfw_moderation.E019"]),
        ({"MODELS": {"testapp.Photo": ["title"]}}, ["nsfw_moderation.E003"]),
        ({"FLAG_THRESHOLD": 1.5}, ["nsfw_moderation.E004"]),
        ({"FLAG_THRESHOLD": "0.5"}, ["nsfw_moderation.E004"]),
        ({"BLOCK_THRESHOLD": -0.1}, ["nsfw_moderation.E005"]),
        ({"BLOCK_THRESHOLD": 0.3, "FLAG_THRESHOLD": 0.5}, ["nsfw_moderation.W001"]),
        ({"QUEUE": "rabbit"}, ["nsfw_moderation.E006"]),
        ({"PRECISION": "fp8"}, ["nsfw_moderation.E008"]),
        ({"DEVICE": "tpu"}, ["nsfw_moderation.E009"]),
        ({"ON_ERROR": "ignore"}, ["nsfw_moderation.E010"]),
        ({"BATCH_SIZE": 0}, ["nsfw_moderation.E011"]),
        ({"MAX_FRAMES": 2.5}, ["nsfw_moderation.E011"]),
        ({"UNSAFE_LABELS": "nsfw"}, ["nsfw_moderation.E012"]),
        ({"BACKEND": "nowhere.Backend"}, ["nsfw_moderation.E013"]),
        ({"FLAG_TRESHOLD": 0.4}, ["nsfw_moderation.W002"]),
        ({"BLOCKLIST_DISTANCE": 6}, ["nsfw_moderation.W005"]),
        ({"PDQ_DISTANCE": 256}, ["nsfw_moderation.E024"]),
        ({"PDQ_DISTANCE": "31"}, ["nsfw_moderation.E024"]),
        ({"ON_REJECT": "nowhere.hook"}, ["nsfw_moderation.E017"]),
        ({"ON_REJECT": "nsfw_moderation.conf.DEFAULTS"}, ["nsfw_moderation.E017"]),
        ({"RECONCILE_BATCH": 0}, ["nsfw_moderation.E011"]),
        ({"VIDEO_MAX_FRAMES": 0}, ["nsfw_moderation.E011"]),
        ({"VIDEO_MAX_PIXELS": -1}, ["nsfw_moderation.E011"]),
        ({"VIDEO_MAX_STREAMS": 1.5}, ["nsfw_moderation.E011"]),
        ({"VIDEO_MAX_FILE_SIZE": None}, ["nsfw_moderation.E011"]),
        ({"VIDEO_FRAME_INTERVAL": 0}, ["nsfw_moderation.E020"]),
        ({"VIDEO_MAX_DURATION": "3600"}, ["nsfw_moderation.E020"]),
        ({"VIDEO_DECODE_TIMEOUT": -5}, ["nsfw_moderation.E020"]),
        ({"RETRY_MAX_DELAY": 0}, ["nsfw_moderation.E020"]),
        ({"STALE_AFTER": "600"}, ["nsfw_moderation.E020"]),
        ({"OWNER": "nowhere.owner_of"}, ["nsfw_moderation.E021"]),
        ({"OWNER": "nsfw_moderation.conf.DEFAULTS"}, ["nsfw_moderation.E021"]),
        ({"APPEALS_PER_HOUR": 0}, ["nsfw_moderation.E011"]),
        ({"APPEALS_PER_HOUR": "10"}, ["nsfw_moderation.E011"]),
        ({"CALIBRATION_IMAGES": 0}, ["nsfw_moderation.E011"]),
        ({"BACKEND": "openvino", "PRECISION": "fp16"}, ["nsfw_moderation.E025"]),
        ({"BACKEND": "openvino", "DEVICE": "cuda"}, ["nsfw_moderation.E025"]),
        ({"MAX_SCORE_DIFFERENCE": 1.5}, ["nsfw_moderation.E026"]),
        ({"MAX_SCORE_DIFFERENCE": "0.02"}, ["nsfw_moderation.E026"]),
        ({"MAX_VERDICT_FLIPS": -1}, ["nsfw_moderation.E027"]),
        ({"MAX_VERDICT_FLIPS": 0.5}, ["nsfw_moderation.E027"]),
        # The timm backend: "hf-hub:org/name" or a folder; the revision in MODEL_REVISION.
        ({"BACKEND": "timm", "MODEL": "Falconsai/nsfw_image_detection"}, ["nsfw_moderation.W008"]),
        (
            {"BACKEND": "timm", "MODEL": "hf-hub:org/name@v1", "MODEL_REVISION": "v1"},
            ["nsfw_moderation.E030"],
        ),
        ({"BACKEND": "timm", "MODEL": "hf-hub:", "MODEL_REVISION": "v1"}, ["nsfw_moderation.E030"]),
    ],
)
def test_bad_settings(changes, expected):
    assert ids(**changes) == expected


def test_good_alternatives_pass():
    assert (
        ids(
            DEVICE="cuda:1",
            PRECISION="int8",
            BLOCK_THRESHOLD=0.9,
            QUEUE="sync",
            BACKEND="opennsfw",
            ON_ERROR="allow",
            OWNER="tests.owners.owner_of",
        )
        == []
    )


def test_the_timm_backend_takes_hub_models_and_folders(tmp_path):
    hub = "hf-hub:Marqo/nsfw-image-detection-384"
    assert ids(BACKEND="timm", MODEL=hub, MODEL_REVISION="a" * 40) == []
    assert ids(BACKEND="timm", MODEL=str(tmp_path)) == []
    assert ids(BACKEND="timm", MODEL=f"local-dir:{tmp_path}") == []
    assert ids(BACKEND="timm", MODEL=str(tmp_path / "elsewhere")) == ["nsfw_moderation.W008"]
    with moderation(BACKEND="timm", MODEL="Marqo/nsfw-image-detection-384"):
        (message,) = [m for m in run_checks() if m.id == "nsfw_moderation.W008"]
    assert '"hf-hub:org/name"' in message.hint
    assert "BACKEND" in message.hint


def test_django_q_must_be_installed_for_its_queue(settings):
    apps_without_q = [a for a in settings.INSTALLED_APPS if a != "django_q"]
    with override_settings(INSTALLED_APPS=apps_without_q):
        assert ids(QUEUE="django_q") == ["nsfw_moderation.E007"]
        assert ids(QUEUE="sync") == []


def test_hash_banks_need_pdqhash(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "pdqhash" else real(name, *a),
    )
    assert ids() == []  # every command of a fresh project stays quiet
    with moderation():
        found = run_checks(include_deployment_checks=True)
    assert [m.id for m in found if m.id and m.id.startswith("nsfw_moderation.")] == [
        "nsfw_moderation.W006"
    ]


def test_settings_must_be_a_dict():
    with override_settings(NSFW_MODERATION=["nope"]):
        messages = [m for m in run_checks() if m.id == "nsfw_moderation.E014"]
    assert len(messages) == 1


def test_messages_carry_hints():
    with moderation(MODELS={"testapp.Photo": ["title"]}):
        (message,) = [m for m in run_checks() if m.id == "nsfw_moderation.E003"]
    assert "CharField" in message.msg
    assert "image" in message.hint


def test_check_command_runs_them():
    with moderation(FLAG_THRESHOLD=2), pytest.raises(SystemCheckError, match="E004"):
        call_command("check")


def test_checks_never_import_torch():
    import subprocess
    import sys

    code = (
        "import django, sys; django.setup();"
        "from django.core.management import call_command; call_command('check');"
        "assert 'torch' not in sys.modules, 'torch imported';"
        "assert 'transformers' not in sys.modules, 'transformers imported'"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env={**__import__("os").environ, "DJANGO_SETTINGS_MODULE": "tests.settings"},
    )
    assert result.returncode == 0, result.stderr


SQLITE = "django.db.backends.sqlite3"


@pytest.mark.parametrize(
    ("options", "warned"),
    [
        ({}, True),  # Django's defaults: deferred transactions, a 5 s timeout, no WAL
        ({"transaction_mode": "IMMEDIATE", "timeout": 30}, True),
        (
            {
                "transaction_mode": "IMMEDIATE",
                "timeout": 30,
                "init_command": "PRAGMA journal_mode = WAL;",
            },
            False,
        ),
    ],
)
def test_sqlite_shared_with_a_worker_needs_its_options(monkeypatch, settings, options, warned):
    monkeypatch.setitem(settings.DATABASES, "default", {"ENGINE": SQLITE, "OPTIONS": options})
    with moderation(QUEUE="django_q"):
        assert ("nsfw_moderation.W003" in ids()) is warned
    with moderation(QUEUE="sync"):
        assert "nsfw_moderation.W003" not in ids()
