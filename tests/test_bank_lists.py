"""Hash lists in and out: every bad line named, nothing half-imported, no formula in an export.

The command is run through ``call_command`` and, for standard input and its exit
status, as a real ``manage.py`` process; the admin's import through the test client.
"""

from __future__ import annotations

import csv
import io
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.urls import reverse

from nsfw_moderation import banks
from nsfw_moderation.models import BankEntry, HashBank
from tests.workers import ROOT, worker_env

MD5 = "d41d8cd98f00b204e9800998ecf8427e"
ADD_URL = "admin:nsfw_moderation_hashbank_add"


def hashes(count: int, seed: int = 1) -> list[str]:
    raw = np.random.default_rng(seed).integers(0, 256, size=(count, 32), dtype=np.uint8)
    return [bytes(row).hex() for row in raw]


H = hashes(4)

#: Lists with good and bad lines, and the numbers of the bad ones.
MIXED = {
    "hex": (
        f"# a partner's list\n{H[0]}\n{H[1][:-1]}\n{H[2]} fine\nnot a hash\n\n{H[3]}\n",
        [3, 5],
    ),
    "tsv": (
        "signal_type\tsignal\tquality\tlabel\n"
        f"pdq\t{H[0]}\t90\tfine\n"
        "pdq\tzzzz\t90\tbroken\n"
        f"video_md5\t{MD5}\t\tanother signal type\n"
        f"pdq\t{H[1]}\t\t\n"
        f"pdq\t{H[2]}\thigh\tnot a number\n"
        f"pdq\t{H[3]}\t100\tfine\n",
        [3, 6],
    ),
}


def source(tmp_path: Path, text: str, name: str = "list.txt") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def run_import(*args: str, **options: Any) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("nsfw_bank_import", *args, stdout=out, stderr=err, **options)
    return out.getvalue(), err.getvalue()


def refused(*args: str, **options: Any) -> str:
    """The command's error for an import that must import nothing and create no bank."""
    with pytest.raises(CommandError) as raised:
        run_import(*args, **options)
    assert not BankEntry.objects.exists()
    return str(raised.value)


def line_numbers(text: str) -> list[int]:
    return [int(n) for n in re.findall(r"\bline (\d+)\b", text)]


# --- The command: all or nothing, every bad line named ----------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("fmt", MIXED)
def test_a_list_with_bad_lines_imports_nothing_and_names_each_bad_line(tmp_path, fmt):
    text, bad = MIXED[fmt]
    message = refused("partner", source(tmp_path, text), action="block")
    assert line_numbers(message) == bad
    assert "--skip-invalid" in message
    assert not HashBank.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("fmt", MIXED)
def test_skip_invalid_names_the_bad_lines_and_imports_the_others(tmp_path, fmt):
    text, bad = MIXED[fmt]
    out, err = run_import("partner", source(tmp_path, text), action="allow", skip_invalid=True)
    assert line_numbers(err) == bad
    assert sorted(HashBank.objects.get().entries.values_list("pdq", flat=True)) == sorted(
        H[:1] + H[2:] if fmt == "hex" else [H[0], H[1], H[3]]
    )
    assert "2 invalid line(s) skipped" in out


@pytest.mark.django_db
def test_a_failed_import_creates_no_bank(tmp_path):
    refused("partner", str(tmp_path / "missing.txt"), action="block")
    refused("partner", source(tmp_path, "no hash here\n"), action="block")
    refused("partner", source(tmp_path, "# only a comment\n"), action="block")
    assert not HashBank.objects.exists()


@pytest.mark.django_db
def test_a_new_bank_is_saved_in_the_transaction_of_its_entries():
    from django.db import IntegrityError

    # An entry the database refuses (the list's checks would have named it first).
    with pytest.raises(IntegrityError):
        banks.import_entries(
            HashBank(name="partner", action="allow"), [(H[0], None, "ok"), (H[1], -5, "")]
        )
    assert not HashBank.objects.exists()
    banks.import_entries(HashBank(name="partner", action="allow"), [(H[0], None, "ok")])
    assert HashBank.objects.get().entries.count() == 1


@pytest.mark.django_db
def test_a_field_over_128_kib_is_a_bad_line_not_a_crash(tmp_path):
    text = f"signal_type\tsignal\tlabel\npdq\t{H[0]}\t{'x' * 140_000}\npdq\t{H[1]}\tok\n"
    assert line_numbers(refused("partner", source(tmp_path, text), action="block")) == [2]


@pytest.mark.django_db
@pytest.mark.parametrize("quality", ["-5", "101", "90.5", "²"])
def test_a_quality_outside_0_to_100_is_a_bad_line(tmp_path, quality):
    text = f"signal,quality\n{H[0]},90\n{H[1]},{quality}\n"
    message = refused("partner", source(tmp_path, text), action="block")
    assert line_numbers(message) == [3]
    assert "quality" in message


@pytest.mark.django_db
@pytest.mark.parametrize(
    "label", ["NUL\x00byte", "escape \x1b[31mred", "form\x0cfeed", "tab\there", "x" * 256]
)
def test_a_label_with_a_control_character_or_too_long_is_a_bad_line(tmp_path, label):
    text = f"{H[0]} fine\n{H[1]} {label}\n"
    assert line_numbers(refused("partner", source(tmp_path, text), action="block")) == [2]


@pytest.mark.django_db
def test_a_label_of_the_fields_length_is_kept(tmp_path):
    run_import("partner", source(tmp_path, f"{H[0]} {'x' * 255}\n"), action="allow")
    assert BankEntry.objects.get().label == "x" * 255


@pytest.mark.django_db
def test_a_hex_label_is_kept_verbatim_after_the_first_separator(tmp_path):
    text = f"{H[0]} label, with a comma\n{H[1]},a,b\n{H[2]}\tcase 17, part 2\n{H[3]}\n"
    run_import("partner", source(tmp_path, text), action="allow")
    labels = dict(BankEntry.objects.values_list("pdq", "label"))
    assert labels == {
        H[0]: "label, with a comma",
        H[1]: "a,b",
        H[2]: "case 17, part 2",
        H[3]: "",
    }


@pytest.mark.django_db
def test_a_bad_first_line_is_named_as_such_not_taken_for_a_header(tmp_path):
    message = refused("partner", source(tmp_path, f"{H[0][:-1]}\n{H[1]}\n"), action="block")
    assert line_numbers(message) == [1]
    assert "not a PDQ hash" in message


@pytest.mark.django_db
def test_a_header_without_a_column_of_hashes_says_so(tmp_path):
    message = refused(
        "partner", source(tmp_path, f"signal_type,label\npdq,{H[0]}\n"), action="block"
    )
    assert line_numbers(message) == [1]
    assert "column of hashes" in message


@pytest.mark.django_db
def test_bytes_that_are_not_utf8_are_a_bad_line(tmp_path):
    path = tmp_path / "list.txt"
    path.write_bytes(f"{H[0]}\n{H[1]} caf\xe9\n".encode("latin-1"))
    assert line_numbers(refused("partner", str(path), action="block")) == [2]


@pytest.mark.django_db
def test_dash_reads_standard_input_in_call_command():
    stdin = io.BytesIO(f"{H[0]}\n{H[1]}\n".encode())
    run_import("partner", "-", action="allow", stdin=stdin)
    assert BankEntry.objects.count() == 2


def manage(*args: str, stdin: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "manage.py", *args, "--settings=tests.settings"]
    env = {**os.environ, **worker_env(), "NSFW_TEST_QUEUE": "sync"}
    return subprocess.run(
        command, cwd=ROOT, env=env, input=stdin, capture_output=True, text=True, timeout=120
    )


@pytest.mark.django_db(transaction=True)
def test_a_real_process_reads_standard_input_and_exits_non_zero_on_bad_lines():
    bad = manage("nsfw_bank_import", "partner", "-", "--action=allow", stdin=MIXED["hex"][0])
    assert bad.returncode != 0
    assert "Traceback" not in bad.stderr, bad.stderr[-3000:]
    assert line_numbers(bad.stderr) == MIXED["hex"][1]
    assert not HashBank.objects.exists()
    good = manage("nsfw_bank_import", "partner", "-", "--action=allow", stdin=f"{H[0]}\n")
    assert good.returncode == 0, good.stderr
    assert list(BankEntry.objects.values_list("pdq", flat=True)) == [H[0]]


# --- The admin's import form ------------------------------------------------------------------


def post_list(client: Client, content: bytes, *, follow: bool = False, **extra: Any) -> Any:
    upload = SimpleUploadedFile("list.txt", content)
    data = {"name": "partner", "action": "allow", "description": "", "hash_list": upload}
    return client.post(reverse(ADD_URL), {**data, **extra}, follow=follow)


@pytest.mark.django_db
def test_an_admin_import_with_bad_lines_names_them_imports_nothing_unless_told_to_skip(
    admin_client,
):
    text, bad = MIXED["hex"]
    response = post_list(admin_client, text.encode())
    assert response.status_code == 200
    errors = " ".join(str(e) for e in response.context["adminform"].form.errors["hash_list"])
    assert line_numbers(errors) == bad
    assert not HashBank.objects.exists()
    skipped = post_list(admin_client, text.encode(), skip_invalid="on", follow=True)
    assert HashBank.objects.get().entries.count() == 3
    told = [str(message) for message in skipped.context["messages"]]
    assert line_numbers(" ".join(told[1:])) == bad  # after "3 hashes added", each skipped line


ADMIN_BAD = {
    "field over 128 KiB": f"signal_type\tsignal\tlabel\npdq\t{H[0]}\t{'x' * 140_000}\n",
    "quality -5": f"signal,quality\n{H[0]},-5\n{H[1]},90\n",
    "NUL in a label": f"{H[1]} ok\n{H[0]} a\x00b\n",
}


@pytest.mark.django_db
@pytest.mark.parametrize("case", ADMIN_BAD)
def test_an_admin_import_of_a_hostile_list_is_a_form_error_not_a_500(admin_client, case):
    response = post_list(admin_client, ADMIN_BAD[case].encode())
    assert response.status_code == 200
    errors = " ".join(str(e) for e in response.context["adminform"].form.errors["hash_list"])
    assert line_numbers(errors) == [2]
    assert not HashBank.objects.exists()


# --- Export: no formula for a spreadsheet -----------------------------------------------------

FORMULAS = ['=HYPERLINK("http://x","y")', "+1+1", "-2", "@SUM(A1)", "'quoted", "''=x"]


def labelled(labels: list[str]) -> list[tuple[str, str]]:
    return list(zip(hashes(len(labels)), labels, strict=True))


def export(name: str, tmp_path: Path, fmt: str = "tsv") -> Path:
    path = tmp_path / f"export.{fmt}"
    call_command("nsfw_bank_export", name, str(path), format=fmt, verbosity=0)
    return path


@pytest.mark.django_db
def test_a_tsv_export_starts_no_cell_with_a_formula_character(tmp_path):
    partner = HashBank.objects.create(name="partner", action=HashBank.Action.ALLOW)
    stored = [*FORMULAS, "\tlead tab", "\rlead return"]
    banks.add_entries(partner, [(value, None, label) for value, label in labelled(stored)])
    with export("partner", tmp_path).open(newline="") as exported:
        cells = [cell for row in csv.reader(exported, dialect="excel-tab") for cell in row]
    assert len(cells) == 4 * (1 + len(stored))
    assert not [cell for cell in cells if cell[:1] in ("=", "+", "-", "@", "\t", "\r")]
    assert " lead tab" in cells  # a control character is written as a space


@pytest.mark.django_db
def test_a_neutralised_label_imports_back_unchanged(tmp_path):
    labels = [*FORMULAS, "'=x", "plain", "it's fine", "a-b"]
    partner = HashBank.objects.create(name="partner", action=HashBank.Action.ALLOW)
    banks.add_entries(partner, [(value, None, label) for value, label in labelled(labels)])
    call_command("nsfw_bank_import", "copy", str(export("partner", tmp_path)), action="allow")
    copy = HashBank.objects.get(name="copy")
    assert sorted(copy.entries.values_list("pdq", "label")) == sorted(
        partner.entries.values_list("pdq", "label")
    )


@pytest.mark.django_db
@pytest.mark.parametrize("fmt", ["hex", "tsv"])
def test_a_line_break_in_a_stored_label_cannot_add_an_entry_to_an_export(tmp_path, fmt):
    # Stored by code or before imports checked labels: a line break, then a hash.
    planted, other = hashes(2, seed=7)
    partner = HashBank.objects.create(name="partner", action=HashBank.Action.ALLOW)
    banks.add_entries(partner, [(planted, None, f"x\n{other}\r{other}")])
    exported = export("partner", tmp_path, fmt)
    call_command("nsfw_bank_import", "copy", str(exported), action="allow", verbosity=0)
    copy = HashBank.objects.get(name="copy").entries.get()
    assert (copy.pdq, copy.label) == (planted, f"x {other} {other}")
