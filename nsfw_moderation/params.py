"""Ids and text read from a request, as every database takes them: parsed strictly, or refused.

``str.isdigit`` accepts digits that ``int()`` refuses (``"²"``) or that are not
ASCII (``"١٢"``), and a number of any length, past what a database integer
holds (SQLite raises ``OverflowError``). PostgreSQL refuses a NUL character
anywhere in text, in a filter as in a row, with a ``ValueError`` raised when
the query runs. Views read ids, names and notes through these functions, so
that bad input is a 400, a 404 or a form error, never a 500.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

#: The largest id a database's integer primary key holds (a signed 64-bit integer).
MAX_ID = 2**63 - 1
#: ASCII digits only, no sign, no spaces, no more than a 64-bit integer has.
_ID = re.compile(r"[0-9]{1,19}")


def parse_id(value: str) -> int | None:
    """``value`` as a primary key (1 to :data:`MAX_ID`), or ``None`` if it is not one."""
    if not _ID.fullmatch(value):
        return None
    number = int(value)
    return number if 0 < number <= MAX_ID else None


def parse_ids(values: Iterable[str]) -> list[int]:
    """The values that are primary keys, in order; the others are dropped."""
    return [pk for pk in map(parse_id, values) if pk is not None]


def parse_pair(value: str) -> tuple[str, int | None]:
    """``"<name>:<id>"`` as ``(name, id)``; the id is ``None`` when it is not one."""
    name, _sep, pk = value.partition(":")
    return name, parse_id(pk)


def clean_text(value: str) -> str:
    """Free text without NUL characters, which no PostgreSQL text column can hold."""
    return value.replace("\x00", "")


def has_nul(values: Iterable[tuple[str, list[str]]]) -> bool:
    """Whether a parameter's name or any of its values holds a NUL (``QueryDict.lists()``)."""
    return any("\x00" in name or any("\x00" in v for v in found) for name, found in values)
