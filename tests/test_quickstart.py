"""The quick start of docs/getting-started.md works as written, on a fresh project, offline.

Every step comes from the page itself (the blocks after its
``<!-- quickstart:… -->`` markers), not from a copy: a fresh ``django-admin
startproject``, the reader's app with an ImageField, the quick start's settings
and URLs appended, its commands run (``check`` printing exactly what the page
shows), an image saved, and the worker it names run with the Hugging Face Hub
out of reach, until the image has a verdict and its URL answers accordingly.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import re
import shlex
import signal
import sqlite3
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests import docs
from tests.workers import ROOT, wait_until

PAGE = docs.DOCS / "getting-started.md"
OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
#: What this venv has beyond `nsfw-moderation[opennsfw]` and a check would notice.
NOT_INSTALLED_BY_THE_PAGE = ("pdqhash",)
#: The reader's own app: the page says `blog.Post` with a field `image`.
APP, MODEL, FIELD = "blog", "Post", "image"

SAVE_AN_IMAGE = f"""
import io
from PIL import Image
from django.core.files.base import ContentFile
from {APP}.models import {MODEL}

buffer = io.BytesIO()
Image.effect_noise((64, 48), 40).convert("RGB").save(buffer, "PNG")
post = {MODEL}()
post.{FIELD}.save("first.png", ContentFile(buffer.getvalue()))
print(post.{FIELD}.name)
"""

FETCH_IT = """
from django.test import Client
from nsfw_moderation.query import is_visible
from {app}.models import {model}

post = {model}.objects.get()
response = Client().get("/media/" + post.{field}.name, HTTP_HOST="localhost")
print(response.status_code, is_visible(post, "{field}"))
"""


def manage(project: Path, command: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run a ``python manage.py …`` line of the page, with this interpreter."""
    words = shlex.split(command)
    assert words[:2] == ["python", "manage.py"], command
    return docs.run([sys.executable, *words[1:]], project, **reader_environment(project), **env)


def reader_environment(project: Path) -> dict[str, str]:
    """The reader's venv has only what the page installs: hide the rest from imports."""
    absent = project.parent / "not-installed"
    absent.mkdir(exist_ok=True)
    (absent / "sitecustomize.py").write_text(
        "import sys\n"
        f"for name in {NOT_INSTALLED_BY_THE_PAGE!r}:\n"
        "    sys.modules[name] = None  # import fails, find_spec says absent\n"
    )
    path = docs.environment(project)["PYTHONPATH"]
    return {"PYTHONPATH": os.pathsep.join([str(absent), path])}


def expected_output(block: docs.Block) -> dict[str, list[str]]:
    """``{command: the lines the page shows it printing}``."""
    shown: dict[str, list[str]] = {}
    command = ""
    for line in block.code.splitlines():
        if line.startswith("$ "):
            command = line[2:].split("  #")[0].strip()
            shown[command] = []
        elif line.strip():
            shown[command].append(line.strip())
    return shown


def extras_installed(install: str) -> None:
    """The page's `pip install` names extras whose packages this venv has."""
    match = re.fullmatch(r"pip install '?nsfw-moderation\[([\w,]+)\]'?", install)
    assert match, install
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    for extra in match[1].split(","):
        for requirement in extras[extra]:
            name = re.split(r"[<>=!~;\[ ]", requirement)[0]
            assert importlib.metadata.version(name), requirement


@contextlib.contextmanager
def worker(project: Path, command: str, log: Path):
    words = shlex.split(command)
    assert words[:2] == ["python", "manage.py"], command
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, *words[1:]],
            cwd=project,
            env=docs.environment(project, **OFFLINE, **reader_environment(project)),
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            yield process
        finally:
            # The cluster's main process stops its workers itself; then sweep the group.
            process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(20)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


def verdict(database: Path) -> tuple[str, str, str] | None:
    with contextlib.closing(sqlite3.connect(database, timeout=5)) as connection:
        row = connection.execute(
            "SELECT status, verdict, model_name FROM nsfw_moderation_moderatedimage"
        ).fetchone()
    return row if row and row[0] in ("done", "failed") else None


@pytest.mark.slow
def test_the_quick_start_works_as_written(tmp_path: Path) -> None:
    (install,) = docs.console_commands(docs.after_marker(PAGE, "quickstart:install"))
    extras_installed(install)

    project = docs.startproject(tmp_path / "site")
    docs.add_app(project, APP, MODEL, FIELD)
    settings = project / "mysite" / "settings.py"
    # The reader's app is installed already; the quick start comes after it.
    settings.write_text(settings.read_text() + f'\nINSTALLED_APPS += ["{APP}"]\n')
    manage(project, f"python manage.py makemigrations {APP}")

    settings.write_text(
        settings.read_text() + "\n" + docs.after_marker(PAGE, "quickstart:settings").code + "\n"
    )
    urls = project / "mysite" / "urls.py"
    urls.write_text(
        urls.read_text() + "\n" + docs.after_marker(PAGE, "quickstart:urls").code + "\n"
    )

    setup = docs.after_marker(PAGE, "quickstart:setup")
    for command, lines in expected_output(setup).items():
        printed = manage(project, command)
        for line in lines:
            assert line in printed.stdout.splitlines(), (command, printed.stdout, printed.stderr)
        assert "WARNING" not in printed.stderr + printed.stdout, (command, printed.stderr)

    name = manage(project, "python manage.py shell -c " + shlex.quote(SAVE_AN_IMAGE))
    assert name.stdout.splitlines()[-1].startswith(f"{APP}/")  # after shell's own lines

    run = docs.console_commands(docs.after_marker(PAGE, "quickstart:run"))
    assert run[0] == "python manage.py runserver"  # not needed here: the save went through the ORM
    (worker_command,) = run[1:]
    log = tmp_path / "worker.log"
    with worker(project, worker_command, log):
        found = wait_until(lambda: verdict(project / "db.sqlite3"), timeout=45)
    assert found, log.read_text()[-3000:]
    status, judged, model_name = found
    assert (status, "opennsfw" in model_name) == ("done", True), (found, log.read_text()[-3000:])
    assert judged in ("allowed", "flagged", "blocked")

    fetch = FETCH_IT.format(app=APP, model=MODEL, field=FIELD)
    printed = manage(project, "python manage.py shell -c " + shlex.quote(fetch)).stdout
    code, visible = printed.splitlines()[-1].split()
    assert (code, visible) == (("200", "True") if judged == "allowed" else ("404", "False"))
