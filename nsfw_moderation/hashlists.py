"""Reading and writing lists of PDQ hashes. Independent of Django.

Two formats:

- ``hex``: one hash per line (64 hex digits), optionally followed by a label
  after whitespace or a comma; ``#`` starts a comment line.
- ``tsv`` (or CSV): ThreatExchange's signal files, with a header naming the
  columns. A ``signal_type`` column (``pdq``) and a ``signal`` (or
  ``signal_value``/``hash``) column are used, with an optional ``label``,
  ``quality`` (or ``pdq_quality``) column. Rows of other signal types (``video_md5``…)
  are skipped.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator

from nsfw_moderation.hashing import is_pdq

Entry = tuple[str, int | None, str]

_VALUE_COLUMNS = ("signal", "signal_value", "hash", "pdq", "indicator")
_QUALITY_COLUMNS = ("quality", "pdq_quality")
_TYPE_COLUMNS = ("signal_type", "hash_type", "type")
_PDQ_TYPES = ("pdq", "hash_pdq", "pdq_hash")


def read(text: str) -> Iterator[Entry]:
    """``(hex, quality, label)`` of every PDQ hash in ``text``, in either format."""
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    if not lines:
        return iter(())
    first = lines[0].strip()
    if is_pdq(first.split(None, 1)[0].split(",", 1)[0].lower()):
        return _read_hex(lines)
    return _read_table(lines)


def _read_hex(lines: list[str]) -> Iterator[Entry]:
    for line in lines:
        value, _, label = line.strip().replace(",", " ", 1).partition(" ")
        if is_pdq(value.lower()):
            yield value.lower(), None, label.strip()


def _read_table(lines: list[str]) -> Iterator[Entry]:
    dialect = "excel-tab" if "\t" in lines[0] else "excel"
    rows = csv.DictReader(lines, dialect=dialect)
    names = {name.strip().lower(): name for name in rows.fieldnames or []}
    value_key = next((names[n] for n in _VALUE_COLUMNS if n in names), None)
    type_key = next((names[n] for n in _TYPE_COLUMNS if n in names), None)
    quality_key = next((names[n] for n in _QUALITY_COLUMNS if n in names), None)
    label_key = names.get("label") or names.get("tags")
    if value_key is None:
        raise ValueError("No column of hashes: expected one named signal, signal_value or hash.")
    for row in rows:
        if type_key and (row.get(type_key) or "").strip().lower() not in _PDQ_TYPES:
            continue
        value = (row.get(value_key) or "").strip().lower()
        if is_pdq(value):
            yield (
                value,
                _quality(row.get(quality_key) if quality_key else None),
                (row.get(label_key) or "" if label_key else "").strip(),
            )


def _quality(value: str | None) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except ValueError:
        return None


def write(entries: Iterable[Entry], fmt: str = "hex") -> str:
    """``entries`` as a ``hex`` list or a ThreatExchange-style ``tsv`` signal file."""
    buffer = io.StringIO()
    if fmt == "hex":
        for value, _, label in entries:
            buffer.write(f"{value} {label}".rstrip() + "\n")
        return buffer.getvalue()
    writer = csv.writer(buffer, dialect="excel-tab", lineterminator="\n")
    writer.writerow(["signal_type", "signal", "quality", "label"])
    for value, quality, label in entries:
        writer.writerow(["pdq", value, "" if quality is None else quality, label])
    return buffer.getvalue()
