"""The documentation tells the truth: settings snippets pass `check`, every setting
and check is documented, the README stays short and the site builds strictly.

The rules for code in the documentation are CONTRIBUTING.md's.
"""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from nsfw_moderation.conf import DEFAULTS
from tests import docs
from tests.workers import ROOT

README_MAX_LINES = 200
#: Pages other branches are writing; README links them ahead of the merge.
PAGES_ON_THEIR_WAY = {"docs/wagtail.md"}
#: Warnings about the machine the docs are checked on, not about the settings.
MACHINE_WARNINGS = {
    "nsfw_moderation.W007",  # no converted OpenVINO model in this machine's cache
    "nsfw_moderation.W008",  # no timm model folder on this machine
}
GETTING_STARTED = docs.DOCS / "getting-started.md"


# --- README --------------------------------------------------------------------------


def test_the_readme_fits_in_two_screens() -> None:
    lines = docs.README.read_text().splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines"


def test_the_readmes_relative_links_lead_somewhere() -> None:
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", docs.README.read_text())
    relative = [link for link in links if "://" not in link]
    assert "docs/getting-started.md" in relative
    missing = [link for link in relative if not (ROOT / link).exists()]
    assert set(missing) <= PAGES_ON_THEIR_WAY, missing


# --- Reference pages -----------------------------------------------------------------


def settings_rows() -> dict[str, str]:
    """``{key: its default, as the table spells it}`` from docs/settings.md."""
    rows = re.findall(
        r"^\| `([A-Z_]+)` \| `([^`]*)`", (docs.DOCS / "settings.md").read_text(), re.M
    )
    return dict(rows)


def test_every_setting_is_documented_with_its_default() -> None:
    rows = settings_rows()
    assert set(rows) == set(DEFAULTS), "docs/settings.md and conf.DEFAULTS differ"
    for key, spelled in rows.items():
        assert ast.literal_eval(spelled) == DEFAULTS[key], f"{key}: the docs say {spelled}"


def check_ids_in_code() -> set[str]:
    code = "\n".join(p.read_text() for p in (ROOT / "nsfw_moderation").rglob("*.py"))
    return set(re.findall(r'"(nsfw_moderation(?:_\w+)?\.[EW]\d{3})"', code))


def test_every_system_check_is_documented() -> None:
    documented = re.findall(
        r"^\| `(nsfw_moderation(?:_\w+)?\.[EW]\d{3})` \|",
        (docs.DOCS / "checks.md").read_text(),
        re.M,
    )
    assert len(documented) == len(set(documented)), "an id is documented twice"
    assert set(documented) == check_ids_in_code()


def test_every_signal_is_documented() -> None:
    from django.dispatch import Signal

    from nsfw_moderation import signals

    public = {name for name, value in vars(signals).items() if isinstance(value, Signal)}
    documented = re.findall(r"^\| `(\w+)` \|", (docs.DOCS / "signals.md").read_text(), re.M)
    assert set(documented) == public


def test_every_command_is_in_the_commands_table() -> None:
    commands = {p.stem for p in (ROOT / "nsfw_moderation/management/commands").glob("[!_]*.py")}
    table = (docs.DOCS / "commands.md").read_text().split("\n## ")[0]
    missing = [name for name in commands if f"`{name}" not in table]
    assert not missing


def test_every_template_is_in_the_templates_page() -> None:
    templates = ROOT / "nsfw_moderation" / "templates"
    page = (docs.DOCS / "templates.md").read_text()
    missing = [str(p) for p in templates.rglob("*.*") if f"{p.name}`" not in page]
    assert not missing


def test_every_module_and_package_is_on_the_architecture_page() -> None:
    package = ROOT / "nsfw_moderation"
    page = (docs.DOCS / "architecture.md").read_text()
    modules = [p.name for p in package.glob("*.py") if p.name != "__init__.py"]
    folders = [f"{p.name}/" for p in package.iterdir() if p.is_dir() and p.name != "__pycache__"]
    assert [name for name in modules + folders if f"`{name}`" not in page] == []


# --- Code blocks ---------------------------------------------------------------------


def python_blocks() -> list[docs.Block]:
    return [b for path in docs.doc_files() for b in docs.blocks(path) if b.lang == "python"]


def test_every_python_block_is_python() -> None:
    broken = []
    for block in python_blocks():
        try:
            ast.parse(block.code)
        except SyntaxError as exc:
            broken.append(f"{block}: {exc.msg}")
    assert not broken


def settings_snippets() -> list[docs.Block]:
    return [
        block
        for block in python_blocks()
        if block.before != docs.SKIP_MARKER and docs.settings_names(block.code)
    ]


@pytest.fixture(scope="module")
def docs_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``startproject`` + the site's apps (gallery.Photo, accounts.Profile, blog.Post)
    + the quick start's settings, and the files the documentation's blocks name."""
    project = docs.startproject(tmp_path_factory.mktemp("docs-project"))
    for label, model, field in (
        ("gallery", "Photo", "image"),
        ("accounts", "Profile", "avatar"),
        ("blog", "Post", "image"),
    ):
        docs.add_app(project, label, model, field)
    quick_start = docs.after_marker(GETTING_STARTED, "quickstart:settings").code
    settings = project / "mysite" / "settings.py"
    settings.write_text(
        settings.read_text()
        + '\nINSTALLED_APPS += ["gallery", "accounts", "blog"]\n\n'
        + quick_start
        + "\n"
    )
    # Celery's standard layout, which docs/queues.md's CELERY_APP names.
    (project / "mysite" / "celery.py").write_text(
        'from celery import Celery\n\napp = Celery("mysite")\n'
    )
    for block in python_blocks():
        if name := docs.file_path(block):
            write_module(project, name, block.code)
    return project


def write_module(project: Path, name: str, code: str) -> None:
    target = project / name
    for package in [target.parent, *target.parent.parents]:
        if package == project:
            break
        package.mkdir(parents=True, exist_ok=True)
        (package / "__init__.py").touch()
    target.write_text(code)


def test_settings_snippets_pass_check(docs_project: Path) -> None:
    snippets = settings_snippets()
    assert len(snippets) >= 10, "the settings snippets were not found"
    assert any(b.path == GETTING_STARTED for b in snippets)
    listing = docs_project / "snippets.json"
    listing.write_text(json.dumps([{"where": str(b), "code": b.code} for b in snippets]))
    result = docs.run(
        [sys.executable, str(ROOT / "tests" / "docs_settings.py"), str(listing)],
        docs_project,
        DJANGO_SETTINGS_MODULE="mysite.settings",
    )
    found = json.loads(result.stdout.splitlines()[-1])
    assert set(found) == {str(b) for b in snippets}
    complaints = {}
    for block in snippets:
        ids = [message.split(":")[0] for message in found[str(block)]]
        expected = docs.expected_ids(block)
        unexplained = [
            m for m in found[str(block)] if m.split(":")[0] not in MACHINE_WARNINGS | expected
        ]
        if unexplained or not expected <= set(ids):
            complaints[str(block)] = unexplained or f"expected {sorted(expected)}, got {ids}"
    assert complaints == {}


def test_a_snippet_that_check_refuses_is_caught(docs_project: Path, tmp_path: Path) -> None:
    """The harness itself: a setting that check refuses shows up as a complaint."""
    listing = tmp_path / "bad.json"
    code = 'NSFW_MODERATION = {**NSFW_MODERATION, "MODELS": {"blog.Post": ["title"]}}'
    listing.write_text(json.dumps([{"where": "bad", "code": code}]))
    result = docs.run(
        [sys.executable, str(ROOT / "tests" / "docs_settings.py"), str(listing)],
        docs_project,
        DJANGO_SETTINGS_MODULE="mysite.settings",
    )
    assert [m.split(":")[0] for m in json.loads(result.stdout)["bad"]] == ["nsfw_moderation.E002"]


# --- The site ------------------------------------------------------------------------


def mkdocs(config: Path, site: Path) -> subprocess.CompletedProcess[str]:
    pytest.importorskip("mkdocs", reason="the docs extra is not installed")
    pytest.importorskip("material", reason="the docs extra is not installed")
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config), "-d", str(site)],
        capture_output=True,
        text=True,
        env={"NO_MKDOCS_2_WARNING": "1", "PATH": "/usr/bin:/bin"},
        timeout=120,
    )


def test_the_site_builds_strictly_with_the_changelog(tmp_path: Path) -> None:
    result = mkdocs(ROOT / "mkdocs.yml", tmp_path / "site")
    assert result.returncode == 0, result.stderr
    changelog = (tmp_path / "site" / "changelog" / "index.html").read_text()
    headings = re.findall(r"^#{2,3} ", (ROOT / "CHANGELOG.md").read_text(), re.M)
    assert len(headings) > 5
    assert len(re.findall(r"<h[23] id=", changelog)) == len(headings)


def test_a_broken_link_fails_the_build(tmp_path: Path) -> None:
    copy = tmp_path / "repo"
    shutil.copytree(ROOT / "docs", copy / "docs")
    for name in ("mkdocs.yml", "CHANGELOG.md"):
        shutil.copy(ROOT / name, copy / name)
    with (copy / "docs" / "index.md").open("a") as index:
        index.write("\nSee [the missing page](no-such-page.md).\n")
    result = mkdocs(copy / "mkdocs.yml", tmp_path / "site")
    assert result.returncode != 0
    assert "no-such-page.md" in result.stderr


def test_make_test_builds_the_docs_strictly() -> None:
    makefile = (ROOT / "Makefile").read_text()
    for target in ("test", "test-quick"):
        prerequisites = re.search(rf"^{target}:(.*)$", makefile, re.M)
        assert prerequisites, target
        assert "docs" in prerequisites[1].split(), target
    make = shutil.which("make")
    if make is None:
        pytest.skip("no make on this machine")
    # -o install: print the recipe without (re)installing the venv.
    dry_run = subprocess.run(
        [make, "-n", "-o", "install", "docs"], cwd=ROOT, capture_output=True, text=True, timeout=30
    )
    recipe = re.search(
        r"^.*mkdocs build --strict\b.*--site-dir \.docs-site.*$", dry_run.stdout, re.M
    )
    assert recipe
    # --quiet hides the warnings --strict counts: the build would pass with them.
    assert not re.search(r"(^|\s)(-q|--quiet)(\s|$)", recipe[0])
    assert ".docs-site/" in (ROOT / ".gitignore").read_text().splitlines()
