"""MkDocs hook: the changelog page is CHANGELOG.md, read when the site is built.

One file to edit, and links written for GitHub (``docs/queues.md``) become the
site's (``queues.md``), so that ``mkdocs build --strict`` checks them too.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

CHANGELOG = Path(__file__).resolve().parents[2] / "CHANGELOG.md"
PAGE = "changelog.md"


def on_page_markdown(markdown: str, page: Any, **kwargs: Any) -> str:
    if page.file.src_uri != PAGE:
        return markdown
    return re.sub(r"\]\(docs/", "](", CHANGELOG.read_text(encoding="utf-8"))
