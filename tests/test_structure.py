"""The package's shape: one-way imports, a docstring per module, no decoding in the web process."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import nsfw_moderation

PACKAGE = Path(nsfw_moderation.__file__).parent


def modules() -> dict[str, Path]:
    """Every module of the package by dotted name (packages by their ``__init__``)."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if "migrations" in path.parts:
            continue
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def imports_of(path: Path, known: set[str]) -> set[str]:
    """Our modules that ``path`` imports anywhere: top level, in functions, for type checking."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                found.add(submodule if submodule in known else node.module)
    return {name for name in found if name in known}


def import_graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports_of(path, set(known)) - {name} for name, path in known.items()}


def test_the_graph_sees_imports_at_every_level():
    graph = import_graph()
    assert "nsfw_moderation.enqueue" in graph["nsfw_moderation.handlers"]
    assert "nsfw_moderation.worker.outcomes" in graph["nsfw_moderation.worker.pipeline"]
    # apps.ready() imports inside the method.
    assert "nsfw_moderation.handlers" in graph["nsfw_moderation.apps"]


def test_no_two_modules_import_each_other():
    graph = import_graph()
    cycles = []
    for start in graph:
        # Depth-first search for a path back to ``start``.
        stack = [(start, [start])]
        seen = set()
        while stack:
            name, trail = stack.pop()
            for target in graph[name]:
                if target == start:
                    cycles.append(" → ".join([*trail, start]))
                elif target not in seen:
                    seen.add(target)
                    stack.append((target, [*trail, target]))
    assert cycles == []


@pytest.mark.parametrize("name", sorted(modules()))
def test_every_module_says_its_job(name):
    path = modules()[name]
    docstring = ast.get_docstring(ast.parse(path.read_text()))
    assert docstring, f"{name} has no module docstring"


def test_the_registry_imports_nothing_of_ours_but_conf():
    assert import_graph()["nsfw_moderation.registry"] <= {"nsfw_moderation.conf"}


def test_the_core_imports_no_contrib_and_no_optional_framework():
    """Integrations import the core; the core never them, nor what only they need."""
    optional = ("nsfw_moderation.contrib", "rest_framework", "drf_spectacular", "wagtail")
    found = []
    for name, path in modules().items():
        if name.startswith("nsfw_moderation.contrib"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module]
            else:
                continue
            found += [
                f"{name} → {t}"
                for t in targets
                if t.split(".")[0] in optional or t.startswith(optional)
            ]
    assert found == []
