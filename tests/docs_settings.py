"""Run each settings snippet of the documentation over a project's settings; print what check says.

Started by ``tests/test_docs.py`` inside a generated project (``DJANGO_SETTINGS_MODULE``
set), with a JSON file of snippets: ``[{"where": "docs/x.md:12", "code": "..."}]``.
Prints ``{"docs/x.md:12": ["nsfw_moderation.W003: ...", ...]}``: every message at
WARNING or above that ``manage.py check`` would print for those settings.
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path
from typing import Any

import django


def main() -> None:
    django.setup()
    from django.conf import settings

    base = {name: getattr(settings, name) for name in dir(settings) if name.isupper()}
    snippets = json.loads(Path(sys.argv[1]).read_text())
    print(json.dumps({s["where"]: messages(base, s["code"]) for s in snippets}))


def messages(base: dict[str, Any], code: str) -> list[str]:
    from django.conf import settings
    from django.core import checks
    from django.test.utils import override_settings

    namespace = copy.deepcopy(base)
    try:
        exec(code, namespace)
    except Exception as exc:
        return [f"the snippet raised {exc!r}"]
    changed = changed_settings(base, namespace)
    # An app a snippet installs registers its checks for good: forget them after
    # the snippet, as a process of its own would.
    registered = set(checks.registry.registry.registered_checks)
    deploy = set(checks.registry.registry.deployment_checks)
    try:
        with override_settings(**changed):
            found = checks.run_checks()
            silenced = settings.SILENCED_SYSTEM_CHECKS
    except Exception as exc:
        return [f"Django refused the settings: {exc!r}"]
    finally:
        checks.registry.registry.registered_checks = registered
        checks.registry.registry.deployment_checks = deploy
    return [f"{m.id}: {m.msg}" for m in found if m.level >= checks.WARNING and m.id not in silenced]


def changed_settings(base: dict[str, Any], namespace: dict[str, Any]) -> dict[str, Any]:
    changed = {
        name: value
        for name, value in namespace.items()
        if name.isupper() and (name not in base or value != base[name])
    }
    # Adding an app that is already installed is a no-op, as the quick start's
    # `INSTALLED_APPS += [...]` is run over settings that already hold it.
    if "INSTALLED_APPS" in changed:
        apps = list(dict.fromkeys(changed["INSTALLED_APPS"]))
        if apps == list(base["INSTALLED_APPS"]):
            del changed["INSTALLED_APPS"]
        else:
            changed["INSTALLED_APPS"] = apps
    return changed


if __name__ == "__main__":
    main()
