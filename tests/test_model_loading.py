"""Which weights a worker loads: the pinned revision, from safetensors files only."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from django.core.checks import run_checks
from django.core.management import call_command
from django.core.management.base import CommandError

from nsfw_moderation.backends import ModelUnavailable
from nsfw_moderation.management.commands.nsfw_scan import configured_model_name
from tests.conftest import moderation
from tests.workers import ROOT

# Every database: the system checks here query each configured one (Django 6).
pytestmark = pytest.mark.django_db(databases="__all__")

HUB_ID = "someone/tiny"
PINNED = "a" * 40
MAIN = "b" * 40


def check_ids(deploy: bool = True, **changes: object) -> list[str]:
    with moderation(**changes):
        found = run_checks(include_deployment_checks=deploy)
    return sorted(m.id for m in found if m.id and m.id.startswith("nsfw_moderation."))


def deploy_checks() -> list[Any]:
    return run_checks(include_deployment_checks=True)


# -- Settings and checks ------------------------------------------------------------


@pytest.mark.parametrize("revision", [5, "", "  ", ["main"]])
def test_model_revision_must_be_a_string(revision: object) -> None:
    assert check_ids(MODEL_REVISION=revision) == ["nsfw_moderation.E022"]


def test_hub_model_without_a_revision_is_a_warning() -> None:
    assert check_ids(BACKEND="transformers", MODEL=HUB_ID) == ["nsfw_moderation.W004"]
    with moderation(BACKEND="transformers", MODEL=HUB_ID):
        (message,) = [m for m in deploy_checks() if m.id == "nsfw_moderation.W004"]
    assert "nsfw_model download" in message.hint


def test_timm_hub_model_without_a_revision_is_a_warning() -> None:
    hub = f"hf-hub:{HUB_ID}"
    assert check_ids(BACKEND="timm", MODEL=hub) == ["nsfw_moderation.W004"]
    assert check_ids(BACKEND="timm", MODEL=hub, MODEL_REVISION=PINNED) == []


def test_an_unpinned_model_is_a_deployment_warning_only() -> None:
    """A fresh project's every command stays quiet; `check --deploy` says what to pin."""
    unpinned = {"BACKEND": "transformers", "MODEL": HUB_ID, "SHADOW_MODEL": {"MODEL": HUB_ID}}
    assert check_ids(deploy=False, **unpinned) == []
    assert check_ids(deploy=True, **unpinned) == ["nsfw_moderation.W004", "nsfw_moderation.W009"]


@pytest.mark.parametrize(
    ("shadow", "warned"),
    [
        ({"MODEL": HUB_ID}, True),  # the live BACKEND's, transformers
        ({"BACKEND": "timm", "MODEL": f"hf-hub:{HUB_ID}"}, True),
        ({"MODEL": HUB_ID, "MODEL_REVISION": PINNED}, False),
        ({"BACKEND": "timm", "MODEL": f"hf-hub:{HUB_ID}", "MODEL_REVISION": PINNED}, False),
        ({"MODEL": str(Path(__file__).parent)}, False),  # a folder on this machine
    ],
)
def test_a_shadow_model_from_the_hub_without_a_revision_is_a_warning(
    shadow: dict[str, str], warned: bool
) -> None:
    pinned_live = {"BACKEND": "transformers", "MODEL": HUB_ID, "MODEL_REVISION": PINNED}
    found = check_ids(**pinned_live, SHADOW_MODEL=shadow)
    assert found == (["nsfw_moderation.W009"] if warned else [])
    if warned:
        with moderation(**pinned_live, SHADOW_MODEL=shadow):
            (message,) = [m for m in deploy_checks() if m.id == "nsfw_moderation.W009"]
        assert "SHADOW_MODEL['MODEL_REVISION']" in message.hint


@pytest.mark.parametrize(
    "changes",
    [
        {"BACKEND": "transformers", "MODEL": HUB_ID, "MODEL_REVISION": PINNED},
        {"BACKEND": "transformers"},  # the tests' MODEL is a local directory
        {"BACKEND": "opennsfw", "MODEL": HUB_ID},
    ],
)
def test_pinned_local_or_other_backend_is_clean(changes: dict[str, object]) -> None:
    assert check_ids(**changes) == []


def test_configured_model_name_includes_a_pinned_revision() -> None:
    with moderation(BACKEND="transformers", MODEL=HUB_ID, MODEL_REVISION=PINNED):
        assert configured_model_name() == f"{HUB_ID}@{PINNED}"
    with moderation(BACKEND="transformers", MODEL=HUB_ID):
        assert configured_model_name() == HUB_ID
    with moderation(BACKEND="timm", MODEL=f"hf-hub:{HUB_ID}", MODEL_REVISION=PINNED):
        assert configured_model_name() == f"hf-hub:{HUB_ID}@{PINNED}"


# -- Loading ---------------------------------------------------------------------------


def test_pickled_weights_are_refused(tiny_model_dir: Path, tmp_path: Path) -> None:
    import torch
    from safetensors.torch import load_file

    from nsfw_moderation.backends.transformers import TransformersBackend

    pickled = tmp_path / "pickled"
    shutil.copytree(tiny_model_dir, pickled)
    torch.save(load_file(pickled / "model.safetensors"), pickled / "pytorch_model.bin")
    (pickled / "model.safetensors").unlink()
    with pytest.raises(ModelUnavailable, match="Only safetensors weights are loaded"):
        TransformersBackend(str(pickled), device="cpu")


def test_the_pinned_revision_is_loaded_and_named(tiny_model_dir: Path, tmp_path: Path) -> None:
    # A Hugging Face cache holding two commits of one model, told apart by a label.
    cache = tmp_path / "hub"
    repo = cache / "models--someone--tiny"
    for commit, label in ((PINNED, "pinned"), (MAIN, "main")):
        snapshot = repo / "snapshots" / commit
        shutil.copytree(tiny_model_dir, snapshot)
        config = json.loads((snapshot / "config.json").read_text())
        config["id2label"] = {"0": label, "1": "nsfw"}
        config["label2id"] = {label: 0, "nsfw": 1}
        (snapshot / "config.json").write_text(json.dumps(config))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(MAIN)
    assert load_offline(cache, PINNED) == {
        "name": f"{HUB_ID}@{PINNED}",
        "labels": ["pinned", "nsfw"],
    }
    assert load_offline(cache, None) == {"name": HUB_ID, "labels": ["main", "nsfw"]}


_LOAD = """
import json, sys, django
django.setup()
from django.test import override_settings
from django.conf import settings
from nsfw_moderation.backends import load_backend
changes = {"MODEL": "someone/tiny", "MODEL_REVISION": json.loads(sys.argv[1]), "DEVICE": "cpu"}
with override_settings(NSFW_MODERATION={**settings.NSFW_MODERATION, **changes}):
    backend = load_backend("transformers")
print(json.dumps({"name": backend.name, "labels": backend.labels}))
"""


def load_offline(cache: Path, revision: str | None) -> dict[str, Any]:
    """The backend's name and labels, built in a process that sees only ``cache``."""
    env = {
        **os.environ,
        "HF_HUB_CACHE": str(cache),
        "HF_HUB_OFFLINE": "1",
        "DJANGO_SETTINGS_MODULE": "tests.settings",
    }
    result = subprocess.run(
        [sys.executable, "-c", _LOAD, json.dumps(revision)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env=env,
        timeout=120,
    )
    loaded: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return loaded


# -- nsfw_model download ---------------------------------------------------------------


@dataclass
class FakeHub:
    snapshot: Path
    calls: list[dict[str, Any]] = field(default_factory=list)


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> FakeHub:
    """snapshot_download answered from a folder named after a commit, as the real cache's."""
    huggingface_hub = pytest.importorskip("huggingface_hub")
    fake = FakeHub(snapshot=tmp_path / "snapshots" / PINNED)
    fake.snapshot.mkdir(parents=True)
    (fake.snapshot / "config.json").write_text("{}")

    def snapshot_download(repo_id: str, **kwargs: Any) -> str:
        fake.calls.append({"repo_id": repo_id, **kwargs})
        return str(fake.snapshot)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    return fake


def download(*args: str, **changes: object) -> str:
    out = io.StringIO()
    with moderation(**{"MODEL": HUB_ID, **changes}):
        call_command("nsfw_model", "download", *args, stdout=out)
    return out.getvalue()


def test_download_fetches_json_and_safetensors_only(hub: FakeHub) -> None:
    (hub.snapshot / "model.safetensors").write_bytes(b"weights")
    out = download()
    (call,) = hub.calls
    assert call["repo_id"] == HUB_ID
    assert call["revision"] is None
    assert call["allow_patterns"] == ["*.json", "*.safetensors"]
    assert "ignore_patterns" not in call
    assert f"MODEL_REVISION = '{PINNED}'" in out


def test_download_says_which_setting_pins_the_shadow_model(hub: FakeHub) -> None:
    (hub.snapshot / "model.safetensors").write_bytes(b"weights")
    out = download(MODEL_REVISION=PINNED, SHADOW_MODEL={"MODEL": "other/model"})
    assert [call["repo_id"] for call in hub.calls] == [HUB_ID, "other/model"]
    assert f"SHADOW_MODEL['MODEL_REVISION'] = '{PINNED}'" in out


def test_download_fetches_a_timm_backend_hub_model(hub: FakeHub) -> None:
    (hub.snapshot / "model.safetensors").write_bytes(b"weights")
    download(BACKEND="timm", MODEL=f"hf-hub:{HUB_ID}", MODEL_REVISION=PINNED)
    (call,) = hub.calls
    assert (call["repo_id"], call["revision"]) == (HUB_ID, PINNED)
    assert call["allow_patterns"] == ["*.json", "*.safetensors"]


def test_download_fetches_the_pinned_revision(hub: FakeHub) -> None:
    (hub.snapshot / "model.safetensors").write_bytes(b"weights")
    out = download(MODEL_REVISION=PINNED)
    assert hub.calls[0]["revision"] == PINNED
    assert f"at {PINNED}" in out
    assert "Pin this commit" not in out


def test_download_refuses_another_revision_than_the_pinned_one(hub: FakeHub) -> None:
    with pytest.raises(CommandError, match="Workers load MODEL_REVISION"):
        download("--revision", "main", MODEL_REVISION=PINNED)
    assert hub.calls == []


def test_download_without_safetensors_weights_is_an_error(hub: FakeHub) -> None:
    with pytest.raises(CommandError, match="has no safetensors weights"):
        download()


# -- A worker that cannot reach the Hub -------------------------------------------------

_LOAD_OR_SAY_WHY = """
import json, sys, time, django
django.setup()
from django.test import override_settings
from django.conf import settings
from nsfw_moderation.backends import ModelUnavailable, load_backend
changes = {"MODEL": "someone/tiny", "MODEL_REVISION": None, "DEVICE": "cpu"}
import torch, transformers  # their import takes as long with or without a Hub
started = time.monotonic()
with override_settings(NSFW_MODERATION={**settings.NSFW_MODERATION, **changes}):
    try:
        result = {"labels": load_backend("transformers").labels}
    except ModelUnavailable as exc:
        result = {"error": str(exc)}
print(json.dumps({**result, "seconds": time.monotonic() - started}))
"""


@pytest.fixture
def silent_hub() -> Any:
    """A Hub address that accepts connections and never answers (a firewall that drops)."""
    import socket

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    server.close()


def load_with_hub(cache: Path, endpoint: str, **env: str) -> dict[str, Any]:
    environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"}
    environment.pop("HF_HUB_OFFLINE", None)
    environment.update(HF_HUB_CACHE=str(cache), HF_ENDPOINT=endpoint, **env)
    result = subprocess.run(
        [sys.executable, "-c", _LOAD_OR_SAY_WHY],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=environment,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    loaded: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return loaded


@pytest.mark.parametrize("offline", [False, True])
def test_an_unreachable_hub_fails_fast_and_names_the_ways_out(
    tmp_path: Path, silent_hub: str, offline: bool
) -> None:
    pytest.importorskip("torch")  # the transformers backend's (the Django 6 suite has none)
    pytest.importorskip("transformers")
    loaded = load_with_hub(
        tmp_path / "empty", silent_hub, **({"HF_HUB_OFFLINE": "1"} if offline else {})
    )
    assert "error" in loaded, loaded
    assert loaded["seconds"] < 10
    message = loaded["error"]
    assert "someone/tiny" in message
    assert "manage.py nsfw_model download" in message  # on a machine that reaches the Hub
    assert "local directory" in message
    assert "'BACKEND': 'opennsfw'" in message
    assert "nsfw-moderation[opennsfw]" in message


def test_a_cached_model_loads_while_the_hub_is_unreachable(
    tiny_model_dir: Path, tmp_path: Path, silent_hub: str
) -> None:
    cache = tmp_path / "hub"
    repo = cache / "models--someone--tiny"
    shutil.copytree(tiny_model_dir, repo / "snapshots" / MAIN)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(MAIN)
    loaded = load_with_hub(cache, silent_hub)
    assert loaded.get("labels"), loaded
    # One probe of the Hub, then the cache: huggingface_hub alone waits out a
    # timeout per file (minutes); the time of importing torch and building the
    # model on a busy machine is the rest.
    assert loaded["seconds"] < 60
