"""Reading and writing lists of PDQ hashes, every line checked. Independent of Django.

Two formats:

- ``hex``: one hash per line (64 hex digits), optionally followed by a label
  after the first separator (whitespace or a comma); the rest of the line is
  the label, commas and all. ``#`` starts a comment line.
- ``tsv`` (or CSV): ThreatExchange's signal files, with a header naming the
  columns. A ``signal_type`` column (``pdq``) and a ``signal`` (or
  ``signal_value``/``hash``) column are used, with an optional ``label``,
  ``quality`` (or ``pdq_quality``) column. Rows of other signal types (``video_md5``…)
  are skipped.

A list is a table when its first line is a header naming one of those columns;
otherwise it is a hex list, so a bad first line is reported as a bad hash.

:func:`parse` checks every line and names each bad one by its number
(:class:`Problem`): a hash that is not 64 hex digits, a quality that is not a
whole number from 0 to 100 (PDQ's range), a label with a control character or
longer than the caller's limit, bytes that are not UTF-8, a field the ``csv``
module refuses. The caller decides whether one bad line refuses the list.

A label that a spreadsheet would run as a formula (it starts with ``=``, ``+``,
``-``, ``@``, a tab or a carriage return: OWASP's "CSV injection") is written to
a table with a single quote in front, as is a label that starts with a quote;
reading a table takes that one quote off again, so a list written here reads
back unchanged. Control characters in a label are written as spaces (so, in
practice, no label starts with a tab or a carriage return).
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from nsfw_moderation.hashing import is_pdq

if TYPE_CHECKING:
    from _csv import Reader

Entry = tuple[str, int | None, str]

#: PDQ's quality runs from 0 to 100.
MAX_QUALITY = 100

# Why a line is bad (Problem.reason); the wording, translated, is the caller's.
NOT_PDQ = "not_pdq"
NOT_PDQ_NOR_HEADER = "not_pdq_nor_header"
NO_HASH_COLUMN = "no_hash_column"
BAD_QUALITY = "bad_quality"
CONTROL_CHARACTER = "control_character"
LABEL_TOO_LONG = "label_too_long"
FIELD_TOO_LONG = "field_too_long"
MALFORMED = "malformed"
NOT_UTF8 = "not_utf8"

_VALUE_COLUMNS = ("signal", "signal_value", "hash", "pdq", "indicator")
_QUALITY_COLUMNS = ("quality", "pdq_quality")
_TYPE_COLUMNS = ("signal_type", "hash_type", "type")
_LABEL_COLUMNS = ("label", "tags")
_HEADER_NAMES = {*_VALUE_COLUMNS, *_QUALITY_COLUMNS, *_TYPE_COLUMNS, *_LABEL_COLUMNS}
_PDQ_TYPES = ("pdq", "hash_pdq", "pdq_hash")

#: A hex line: the hash, one separator (whitespace, or a comma with any spaces
#: around it), then the label as it stands.
_HEX_LINE = re.compile(r"(?P<value>[^\s,]*)(?:[ \t]*,[ \t]*|\s+)?(?P<label>.*)", re.DOTALL)
_QUALITY = re.compile(r"[0-9]{1,3}")
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_QUOTE = "'"


@dataclass(frozen=True)
class Problem:
    """Why the record on lines ``first``–``last`` of a list is not an entry."""

    first: int
    last: int
    reason: str
    limit: int | None = None  # the length a label or field went over


@dataclass
class Parsed:
    """The entries of a list, its bad lines, and how many rows of other signal types it had."""

    entries: list[Entry] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    other_types: int = 0


def parse(data: bytes | str, *, max_label: int) -> Parsed:
    """Every entry of ``data`` in either format, and a :class:`Problem` for every bad line."""
    lines = _numbered(data)
    if not lines:
        return Parsed()
    if _is_header(lines[0][1]):
        return _read_table(lines, max_label)
    return _read_hex(lines, max_label)


def _numbered(data: bytes | str) -> list[tuple[int, str]]:
    """The lines that are neither blank nor comments, with their numbers from 1.

    Only a newline ends a line (``str.splitlines`` also breaks at form feeds
    and other control characters, which are a label's fault, on its line).
    Bytes that are not UTF-8 are kept as lone surrogates, found per line.
    """
    text = data.decode("utf-8", "surrogateescape") if isinstance(data, bytes) else data
    lines = text.removeprefix("\ufeff").split("\n")
    return [
        (number, line.removesuffix("\r"))
        for number, line in enumerate(lines, 1)
        if line.strip() and not line.startswith("#")
    ]


def _is_header(line: str) -> bool:
    if is_pdq(_split_hex(line)[0].lower()):
        return False
    dialect = "excel-tab" if "\t" in line else "excel"
    try:
        names = next(csv.reader([line], dialect=dialect), [])
    except csv.Error:
        return False
    return any(name.strip().lower() in _HEADER_NAMES for name in names)


def _split_hex(line: str) -> tuple[str, str]:
    match = _HEX_LINE.fullmatch(line.strip(" \t"))
    assert match is not None  # every group is optional
    return match["value"], match["label"]


def _read_hex(lines: list[tuple[int, str]], max_label: int) -> Parsed:
    parsed = Parsed()
    for number, line in lines:
        value, label = _split_hex(line)
        reason = _undecodable(line) or _problem(value, "", label, max_label)
        if reason is None:
            parsed.entries.append((value.lower(), None, label))
        else:
            # A first line that is no hash is no header either: say both.
            first_line = reason == NOT_PDQ and number == lines[0][0]
            parsed.problems.append(
                _bad(number, number, NOT_PDQ_NOR_HEADER if first_line else reason, max_label)
            )
    return parsed


def _read_table(lines: list[tuple[int, str]], max_label: int) -> Parsed:
    numbers = [number for number, _ in lines]
    dialect = "excel-tab" if "\t" in lines[0][1] else "excel"
    reader = csv.reader((line for _, line in lines), dialect=dialect)
    columns = _columns(next(reader))
    if columns[0] is None:
        return Parsed(problems=[Problem(numbers[0], numbers[0], NO_HASH_COLUMN)])
    parsed = Parsed()
    for first, last, row in _records(reader, numbers):
        if isinstance(row, Problem):
            parsed.problems.append(row)
        elif any(cell.strip() for cell in row):
            _table_row(parsed, first, last, row, columns, max_label)
    return parsed


def _columns(header: list[str]) -> tuple[int | None, int | None, int | None, int | None]:
    """Where the hash, signal type, quality and label are: their positions in the header."""
    names = {name.strip().lower(): position for position, name in enumerate(header)}

    def find(candidates: tuple[str, ...]) -> int | None:
        return next((names[n] for n in candidates if n in names), None)

    return find(_VALUE_COLUMNS), find(_TYPE_COLUMNS), find(_QUALITY_COLUMNS), find(_LABEL_COLUMNS)


def _records(reader: Reader, numbers: list[int]) -> Iterator[tuple[int, int, list[str] | Problem]]:
    """Each record with its first and last line; a record ``csv`` refuses as a :class:`Problem`.

    ``csv`` goes on with the next line after an error, so one bad field costs
    only its own record. ``line_num`` counts the lines given to the reader:
    ``numbers`` turns them back into the file's.
    """
    done = 1  # lines read: the header
    while True:
        row: list[str] | Problem
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            reason = FIELD_TOO_LONG if "field limit" in str(exc) else MALFORMED
            limit = csv.field_size_limit() if reason == FIELD_TOO_LONG else None
            row = Problem(numbers[done], numbers[reader.line_num - 1], reason, limit)
        first, last, done = numbers[done], numbers[reader.line_num - 1], reader.line_num
        yield first, last, row


def _table_row(
    parsed: Parsed,
    first: int,
    last: int,
    row: list[str],
    columns: tuple[int | None, ...],
    max_label: int,
) -> None:
    value, kind, quality, label = (
        row[i].strip(" \t") if i is not None and i < len(row) else "" for i in columns
    )
    if columns[1] is not None and kind.lower() not in _PDQ_TYPES:
        parsed.other_types += 1
        return
    label = _unquoted(label)
    reason = _undecodable("".join(row)) or _problem(value, quality, label, max_label)
    if reason is None:
        parsed.entries.append((value.lower(), int(quality) if quality else None, label))
    else:
        parsed.problems.append(_bad(first, last, reason, max_label))


def _bad(first: int, last: int, reason: str, max_label: int) -> Problem:
    return Problem(first, last, reason, max_label if reason == LABEL_TOO_LONG else None)


def _problem(value: str, quality: str, label: str, max_label: int) -> str | None:
    """Why ``(value, quality, label)`` cannot be an entry; ``None`` if it can."""
    if not is_pdq(value.lower()):
        return NOT_PDQ
    # ASCII digits only: str.isdigit() takes "²", which int() refuses.
    if quality and not (_QUALITY.fullmatch(quality) and int(quality) <= MAX_QUALITY):
        return BAD_QUALITY
    if any(unicodedata.category(char) == "Cc" for char in label):
        return CONTROL_CHARACTER
    if len(label) > max_label:
        return LABEL_TOO_LONG
    return None


def _undecodable(text: str) -> str | None:
    # surrogateescape turned each byte that is not UTF-8 into a lone surrogate.
    return NOT_UTF8 if any("\udc80" <= char <= "\udcff" for char in text) else None


def _unquoted(label: str) -> str:
    """A table's label without the quote :func:`write` put in front of it."""
    rest = label.removeprefix(_QUOTE)
    return rest if rest != label and rest.startswith((*_FORMULA_STARTS, _QUOTE)) else label


def _quoted(label: str) -> str:
    """``label`` safe in a spreadsheet's cell: a formula's first character is quoted."""
    return _QUOTE + label if label.startswith((*_FORMULA_STARTS, _QUOTE)) else label


def write(entries: Iterable[Entry], fmt: str = "hex") -> str:
    """``entries`` as a ``hex`` list or a ThreatExchange-style ``tsv`` signal file.

    A label's control characters (stored before imports refused them, or by
    code) are written as spaces: a line break in a label would otherwise start
    a line of its own, read back as another entry.
    """
    buffer = io.StringIO()
    if fmt == "hex":
        for value, _, label in entries:
            buffer.write(f"{value} {_one_line(label)}".rstrip() + "\n")
        return buffer.getvalue()
    writer = csv.writer(buffer, dialect="excel-tab", lineterminator="\n")
    writer.writerow(["signal_type", "signal", "quality", "label"])
    for value, quality, label in entries:
        cell = _quoted(_one_line(label))
        writer.writerow(["pdq", value, "" if quality is None else quality, cell])
    return buffer.getvalue()


def _one_line(label: str) -> str:
    return "".join(" " if unicodedata.category(char) == "Cc" else char for char in label)
