"""What an operator reads when a worker starts: one line about the model, no warnings."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from nsfw_moderation.models import ModeratedImage, Status
from tests.conftest import moderation
from tests.images import image_file
from tests.testapp.models import Photo
from tests.workers import Cluster, wait_until

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("empty_broker"),
]

# tests/settings.py formats worker log records as "LEVEL logger: message".
RECORD = re.compile(r"^(DEBUG|INFO|WARNING|ERROR|CRITICAL) [\w.-]+: ")


@pytest.fixture(params=["named", "unnamed"])
def model_dir(request: pytest.FixtureRequest, tiny_model_dir: Path, tmp_path: Path) -> Path:
    """The tiny ViT, its processor config naming its class or not.

    Processor configs saved by older transformers versions (many Hub models)
    do not say ``image_processor_type``; transformers then looks the class up
    by model type.
    """
    if request.param == "named":
        return tiny_model_dir
    directory = shutil.copytree(tiny_model_dir, tmp_path / "unnamed-processor")
    config_path = directory / "preprocessor_config.json"
    config = json.loads(config_path.read_text())
    del config["image_processor_type"]
    config_path.write_text(json.dumps(config))
    return directory


def test_a_transformers_worker_starts_and_classifies_without_a_warning(
    tmp_path: Path, model_dir: Path
) -> None:
    with moderation(QUEUE="django_q"):
        for i in range(3):
            Photo.objects.create(image=image_file(f"p{i}.png", color=(i * 80, 40, 200)))
    log_path = tmp_path / "qcluster.log"
    env = {
        "NSFW_TEST_BACKEND": "transformers",
        "NSFW_TEST_MODEL_DIR": str(model_dir),
        "NSFW_TEST_LOG_LEVEL": "INFO",
    }
    with Cluster(log_path, **env) as cluster:
        done = wait_until(
            lambda: ModeratedImage.objects.filter(status=Status.DONE).count() == 3, timeout=120
        )
        assert done, cluster.log()
    lines = [line for line in log_path.read_text(errors="replace").splitlines() if line.strip()]

    # Everything the worker printed is a log record of ours or django-q2's at
    # INFO: no library warning, no Python warning, no progress bar.
    strays = [line for line in lines if not RECORD.match(line)]
    assert strays == [], "\n".join(lines)
    warnings = [line for line in lines if not line.startswith(("INFO ", "DEBUG "))]
    assert warnings == [], "\n".join(lines)

    started = [line for line in lines if line.startswith("INFO nsfw_moderation")]
    assert len(started) == 1, "\n".join(lines)
    assert f"model {model_dir}" in started[0]
    for fact in ("device cpu", "precision fp32", "batch size 8"):
        assert fact in started[0]
    assert re.search(r"\b\d+ threads?\b", started[0])
