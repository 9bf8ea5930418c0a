"""Code in the documentation: finding its blocks, and a project to run them in.

Shared by ``test_docs.py`` (settings snippets) and ``test_quickstart.py`` (the
quick start, step by step). The rules are CONTRIBUTING.md's *Code in the
documentation is tested*.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.workers import ROOT

DOCS = ROOT / "docs"
README = ROOT / "README.md"
SKIP_MARKER = "<!-- docs-test: skip -->"
#: ``<!-- docs-test: expect app.W001 -->``: the block shows a warning the prose explains.
EXPECT_MARKER = re.compile(r"<!-- docs-test: expect (?P<ids>[\w. ]+) -->")
#: A fenced block, indented or not (inside a list item), with what precedes it.
FENCE = re.compile(r"^(?P<indent> *)```(?P<lang>[\w-]*)\n(?P<body>.*?)^(?P=indent)```", re.S | re.M)
#: A block whose first line is only this names the file it is (``# myproject/tests.py``).
FILE_COMMENT = re.compile(r"# (?P<path>[\w/]+\.py)\s*$")


@dataclass(frozen=True)
class Block:
    path: Path
    line: int
    lang: str
    code: str
    before: str  # the non-blank line just above the fence

    def __str__(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def doc_files() -> list[Path]:
    return [README, *sorted(DOCS.rglob("*.md"))]


def blocks(path: Path) -> list[Block]:
    text = path.read_text(encoding="utf-8")
    found = []
    for match in FENCE.finditer(text):
        indent = len(match["indent"])
        code = "\n".join(line[indent:] for line in match["body"].splitlines())
        above = [line.strip() for line in text[: match.start()].splitlines() if line.strip()]
        line = text.count("\n", 0, match.start()) + 1
        found.append(Block(path, line, match["lang"], code, above[-1] if above else ""))
    return found


def after_marker(path: Path, marker: str) -> Block:
    """The block right after ``<!-- marker -->`` in ``path``."""
    matching = [block for block in blocks(path) if block.before == f"<!-- {marker} -->"]
    assert len(matching) == 1, f"{path.name} must have one block after <!-- {marker} -->"
    return matching[0]


def expected_ids(block: Block) -> set[str]:
    match = EXPECT_MARKER.fullmatch(block.before)
    return set(match["ids"].split()) if match else set()


def settings_names(code: str) -> list[str]:
    """The upper-case names a block assigns at its top level: what makes it settings."""
    names = []
    for node in ast.parse(code).body:
        targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
        names += [t.id for t in targets if isinstance(t, ast.Name) and t.id.isupper()]
    return names


def file_path(block: Block) -> str | None:
    first = block.code.splitlines()[0] if block.code else ""
    match = FILE_COMMENT.fullmatch(first)
    return match["path"] if match else None


def console_commands(block: Block) -> list[str]:
    """The commands of a ```console block: its ``$ `` lines."""
    return [
        line[2:].split("  #")[0].strip()
        for line in block.code.splitlines()
        if line.startswith("$ ")
    ]


def startproject(parent: Path, name: str = "mysite") -> Path:
    """A fresh ``django-admin startproject`` with this checkout's nsfw_moderation on the path."""
    parent.mkdir(parents=True, exist_ok=True)
    run([str(Path(sys.executable).parent / "django-admin"), "startproject", name, "."], parent)
    return parent


def add_app(project: Path, label: str, model: str, field: str) -> None:
    """An app of the site's own: ``label.model`` with an ImageField ``field``."""
    app = project / label
    app.mkdir()
    (app / "__init__.py").write_text("")
    (app / "models.py").write_text(
        "from django.db import models\n\n\n"
        f"class {model}(models.Model):\n"
        f"    {field} = models.ImageField(upload_to='{label}', blank=True)\n"
    )
    migrations = app / "migrations"
    migrations.mkdir()
    (migrations / "__init__.py").write_text("")


def environment(project: Path, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("NSFW_")}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    # The checkout's nsfw_moderation, not the one .venv was installed from.
    env["PYTHONPATH"] = os.pathsep.join([str(project), str(ROOT)])
    return {**env, **extra}


def run(command: list[str], cwd: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        command, cwd=cwd, env=environment(cwd, **extra), capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, f"{command} failed:\n{result.stdout}\n{result.stderr}"
    return result
