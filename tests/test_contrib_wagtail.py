"""nsfw_moderation.contrib.wagtail stands apart: the core never imports it, nor Wagtail.

Its behaviour is tested under Wagtail's own settings in tests/with_wagtail/.
"""

from __future__ import annotations

import ast
import importlib
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "nsfw_moderation"


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_the_core_never_imports_wagtail_or_the_integration() -> None:
    offenders = {
        str(path.relative_to(PACKAGE)): sorted(
            name
            for name in imported_modules(path)
            if name.split(".")[0] == "wagtail" or name.startswith("nsfw_moderation.contrib")
        )
        for path in PACKAGE.rglob("*.py")
        if "contrib" not in path.relative_to(PACKAGE).parts
    }
    assert {path: names for path, names in offenders.items() if names} == {}


def test_without_wagtail_the_import_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "wagtail", None)  # as if not installed
    monkeypatch.delitem(sys.modules, "nsfw_moderation.contrib.wagtail", raising=False)
    with pytest.raises(ImportError, match=r"pip install 'nsfw-moderation\[wagtail\]'"):
        importlib.import_module("nsfw_moderation.contrib.wagtail")
