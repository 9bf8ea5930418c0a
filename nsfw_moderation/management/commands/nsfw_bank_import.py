"""``manage.py nsfw_bank_import BANK FILE``: add a list of PDQ hashes to a hash bank."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import IO, Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from nsfw_moderation import banks, hashlists
from nsfw_moderation.models import HashBank


class Command(BaseCommand):
    help = (
        "Add the PDQ hashes of FILE (one hex hash per line, or a ThreatExchange TSV/CSV "
        "signal file; '-' for standard input) to the hash bank BANK, created with --action "
        "if it does not exist. Every line is checked first: with any invalid line nothing is "
        "imported and each one is named, unless --skip-invalid. Stored images are then "
        "matched against the new hashes by a worker."
    )
    # call_command(..., stdin=a binary stream) reads "-" from it, as tests do.
    stealth_options = ("stdin",)

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("bank", help="The bank's name.")
        parser.add_argument("file", help="The list to read ('-' for standard input).")
        parser.add_argument(
            "--action",
            choices=HashBank.Action.values,
            help="What a match does, for a new bank: block, flag (for review) or allow.",
        )
        parser.add_argument("--description", default="", help="For a new bank.")
        parser.add_argument(
            "--skip-invalid",
            action="store_true",
            help="Name the invalid lines and import the others (default: import nothing).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        bank = self._bank(options["bank"], options["action"], options["description"])
        name = options["file"]
        parsed = banks.read_list(self._read(name, options.get("stdin")))
        if parsed.problems:
            self._bad_lines(name, parsed.problems, skip=options["skip_invalid"])
        if not parsed.entries:
            raise CommandError(f"{name} holds no PDQ hash: nothing imported.")
        added = banks.import_entries(bank, parsed.entries)
        self.stdout.write(self._summary(bank, added, parsed))

    def _read(self, name: str, stdin: IO[bytes] | None) -> bytes:
        if name == "-":
            return (stdin or sys.stdin.buffer).read()
        try:
            return Path(name).read_bytes()
        except OSError as exc:
            raise CommandError(f"Cannot read {name}: {exc}") from exc

    def _bad_lines(self, name: str, problems: list[hashlists.Problem], *, skip: bool) -> None:
        """Name every bad line: on standard error when skipping them, else as the error."""
        lines = "\n".join(banks.describe(problem) for problem in problems)
        if not skip:
            raise CommandError(
                f"{name}: {len(problems)} invalid line(s), nothing imported "
                f"(--skip-invalid imports the others):\n{lines}"
            )
        self.stderr.write(f"{name}: {len(problems)} invalid line(s) skipped:\n{lines}")

    def _summary(self, bank: HashBank, added: int, parsed: hashlists.Parsed) -> str:
        summary = (
            f"{added} hash(es) added to {bank.name!r} ({bank.action}); "
            f"{len(parsed.entries) - added} already in the bank or repeated in the list"
        )
        if parsed.problems:
            summary += f"; {len(parsed.problems)} invalid line(s) skipped"
        if parsed.other_types:
            summary += f"; {parsed.other_types} row(s) of other signal types skipped"
        return summary + "."

    def _bank(self, name: str, action: str | None, description: str) -> HashBank:
        """The bank named ``name``; a new one is saved only with its entries."""
        bank = HashBank.objects.filter(name=name).first()
        if bank is None:
            if action is None:
                raise CommandError(f"No bank named {name!r}: give --action to create it.")
            bank = HashBank(name=name, action=action, description=description)
            try:
                bank.full_clean()  # a name too long for its column, say
            except ValidationError as exc:
                raise CommandError(f"Cannot create bank {name!r}: {exc}") from exc
            return bank
        if action is not None and action != bank.action:
            raise CommandError(
                f"Bank {name!r} {bank.action}s; change its action in the admin, not on import."
            )
        return bank
