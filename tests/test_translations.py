"""The moderators' admin in their languages: complete, compiled, packaged catalogues."""

from __future__ import annotations

import ast
import gettext
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import django
import pytest
from django.contrib.auth.models import User
from django.test import Client, override_settings
from django.urls import reverse

from nsfw_moderation.models import ModeratedImage, Verdict
from tests.workers import ROOT

pytest_plugins = ["tests.admin_fixtures"]

PACKAGE = ROOT / "nsfw_moderation"
LOCALE = PACKAGE / "locale"
#: The languages the catalogues must cover (CONTRIBUTING.md, "Translations"), and their
#: plural forms as the gettext manual gives them.
PLURAL_FORMS = {
    "de": "nplurals=2; plural=(n != 1);",
    "fr": "nplurals=2; plural=(n > 1);",
    "es": "nplurals=2; plural=(n != 1);",
    "pt_BR": "nplurals=2; plural=(n > 1);",
    "ja": "nplurals=1; plural=0;",
}
LANGUAGES = tuple(PLURAL_FORMS)
DJANGO_ADMIN_LOCALE = Path(django.__file__).parent / "contrib" / "admin" / "locale"
PREFIX = "admin:nsfw_moderation_moderatedimage"
UPDATE = (
    "Run `make messages`, translate the new entries of "
    "nsfw_moderation/locale/*/LC_MESSAGES/django.po for every language, and commit the .po "
    "and .mo files (CONTRIBUTING.md, Translations)."
)


def gettext_tools() -> None:
    if shutil.which("xgettext") and shutil.which("msgattrib") and shutil.which("msgfmt"):
        return
    message = "needs GNU gettext (apt-get install gettext; `make gettext` does it)"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def msgids(po_text: str) -> list[str]:
    """The msgids of a .po file's entries (the header's empty one left out)."""
    found, current = [], None
    for line in po_text.splitlines():
        if line.startswith("msgid "):
            current = [ast.literal_eval(line[len("msgid ") :])]
        elif current is not None and line.startswith('"'):
            current.append(ast.literal_eval(line))
        elif current is not None:
            found.append("".join(current))
            current = None
    return [msgid for msgid in found if msgid]


def msgattrib(po: Path, *options: str) -> list[str]:
    result = subprocess.run(
        ["msgattrib", "--no-wrap", *options, str(po)],
        capture_output=True,
        text=True,
        check=True,
    )
    return msgids(result.stdout)


def catalogue(language: str) -> Path:
    return LOCALE / language / "LC_MESSAGES" / "django.po"


def test_every_language_has_a_catalogue() -> None:
    assert sorted(p.name for p in LOCALE.iterdir() if p.is_dir()) == sorted(LANGUAGES)


@pytest.fixture(scope="module")
def remade_catalogues(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The catalogues after ``makemessages`` ran over the current source, in a copy."""
    gettext_tools()
    copy = tmp_path_factory.mktemp("messages") / "nsfw_moderation"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run(
        # -P: the package's own modules (queue.py, signals.py) must not shadow the stdlib's.
        [sys.executable, "-P", "-m", "django", "makemessages", "--all", "--no-location"],
        cwd=copy,
        env={k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"},
        capture_output=True,
        check=True,
    )
    return copy / "locale"


@pytest.mark.parametrize("language", LANGUAGES)
def test_makemessages_finds_nothing_new(remade_catalogues: Path, language: str) -> None:
    remade = remade_catalogues / language / "LC_MESSAGES" / "django.po"
    untranslated = msgattrib(remade, "--untranslated", "--no-obsolete")
    fuzzy = msgattrib(remade, "--only-fuzzy", "--no-obsolete")
    assert untranslated + fuzzy == [], (
        f"{language}: these strings are marked for translation but not translated: "
        f"{untranslated + fuzzy}. {UPDATE}"
    )
    obsolete = msgattrib(remade, "--only-obsolete")
    assert obsolete == [], (
        f"{language}: these strings are no longer in the source: {obsolete}. {UPDATE}"
    )


@pytest.mark.parametrize("language", LANGUAGES)
def test_catalogues_are_translated_and_compiled(language: str, tmp_path: Path) -> None:
    gettext_tools()
    po = catalogue(language)
    assert msgattrib(po, "--untranslated") + msgattrib(po, "--only-fuzzy") == []
    # msgfmt --check-format: every %(name)s placeholder is kept in translation.
    compiled = tmp_path / "django.mo"
    subprocess.run(["msgfmt", "--check-format", "-o", str(compiled), str(po)], check=True)
    with compiled.open("rb") as fresh, po.with_suffix(".mo").open("rb") as shipped:
        fresh_catalog = gettext.GNUTranslations(fresh)._catalog  # type: ignore[attr-defined]
        shipped_catalog = gettext.GNUTranslations(shipped)._catalog  # type: ignore[attr-defined]
    assert shipped_catalog == fresh_catalog, f"{po.with_suffix('.mo')} is stale. {UPDATE}"


@pytest.mark.parametrize("language", LANGUAGES)
def test_plural_forms(language: str) -> None:
    ours = translations(catalogue(language).with_suffix(".mo"))
    assert ours.plural_forms == PLURAL_FORMS[language]
    # The singular for the same counts as Django's own catalogue. (Django 6.1's
    # French and Spanish catalogues add CLDR's third form, for whole millions,
    # which in our strings would read as the plural does.)
    djangos = translations(DJANGO_ADMIN_LOCALE / language / "LC_MESSAGES" / "django.mo")
    counts = [*range(1001), 1_000_000, 2_000_000, 10**9]
    assert [n for n in counts if ours.plural(n) == 0] == [
        n for n in counts if djangos.plural(n) == 0
    ]


def test_japanese_has_one_form_and_french_counts_zero_as_one() -> None:
    ja = translations(catalogue("ja").with_suffix(".mo"))
    fr = translations(catalogue("fr").with_suffix(".mo"))
    image = ("%(counter)s image", "%(counter)s images")
    assert {ja.ngettext(*image, n) for n in (0, 1, 2, 5)} == {"%(counter)s 件の画像"}
    assert [fr.ngettext(*image, n) for n in (0, 1, 2)] == [
        "%(counter)s image",
        "%(counter)s image",
        "%(counter)s images",
    ]


class Catalogue(gettext.GNUTranslations):
    plural_forms: str

    def _parse(self, fp: Any) -> None:
        super()._parse(fp)  # type: ignore[misc]
        self.plural_forms = self._info["plural-forms"]  # type: ignore[attr-defined]


def translations(mo: Path) -> Catalogue:
    with mo.open("rb") as handle:
        return Catalogue(handle)


# --- In German -------------------------------------------------------------------


@pytest.fixture
def german(client: Client, reviewer: User) -> Client:
    client.force_login(reviewer)
    with override_settings(LANGUAGE_CODE="de"):
        yield client


@pytest.mark.django_db
def test_the_review_queue_renders_in_german(german: Client, make_row: Any) -> None:
    for _ in range(3):
        make_row()
    page = german.get(reverse(f"{PREFIX}_review")).content.decode()
    for text in (
        "<h1>Prüfwarteschlange</h1>",
        "3 Bilder",
        ">Markiert</span>",
        ">Freigeben</button>",
        ">Ablehnen</button>",
        "Ausgewählte freigeben",
        "Tastenkürzel",
        "Alle Bilder anzeigen",
        "Jedes Urteil",
        "Moderierte Bilder",
        ">Start</a>",
    ):
        assert text in page
    for english in ("Review queue", "Approve", "Reject", "Flagged", "Keyboard shortcuts"):
        assert english not in page


@pytest.mark.django_db
def test_the_dashboard_renders_in_german(german: Client, make_row: Any) -> None:
    make_row()
    make_row(verdict=Verdict.APPROVED)
    page = german.get(reverse(f"{PREFIX}_dashboard")).content.decode()
    for text in (
        "<h1>Moderationsübersicht</h1>",
        "warten auf Prüfung",
        "in den letzten 24 Stunden klassifiziert",
        "Bilder je Urteil",
        "Freigegeben",
        "Markiert pro Tag, letzte 30 Tage",
    ):
        assert text in page
    assert "awaiting review" not in page


@pytest.mark.django_db
def test_decisions_are_reported_in_german(german: Client, make_row: Any) -> None:
    rows = [make_row() for _ in range(3)]
    processing = make_row(status="processing")
    response = german.post(
        reverse(f"{PREFIX}_decide"),
        {"decision": "approve", "ids": [rows[0].pk, rows[1].pk, processing.pk]},
        follow=True,
    )
    messages = [str(m) for m in response.context["messages"]]
    assert messages == [
        "2 Bilder als „Freigegeben“ markiert.",
        "Keine Entscheidung für 1 Bild: Es fehlt oder wird gerade klassifiziert.",
    ]
    german.post(reverse(f"{PREFIX}_decide"), {"decide_one": f"reject:{rows[2].pk}"})
    assert ModeratedImage.objects.get(pk=rows[2].pk).verdict == Verdict.REJECTED
    page = german.get(reverse(f"{PREFIX}_review")).content.decode()
    assert "1 Bild als „Abgelehnt“ markiert." in page


# --- Packaged ----------------------------------------------------------------------


@pytest.mark.slow
def test_the_wheel_ships_the_catalogues(tmp_path: Path) -> None:
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(
        PACKAGE, source / "nsfw_moderation", ignore=shutil.ignore_patterns("__pycache__")
    )
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--wheel-dir",
            str(tmp_path / "dist"),
            str(source),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = (tmp_path / "dist").glob("nsfw_moderation-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for language in LANGUAGES:
        for suffix in ("po", "mo"):
            assert f"nsfw_moderation/locale/{language}/LC_MESSAGES/django.{suffix}" in names
