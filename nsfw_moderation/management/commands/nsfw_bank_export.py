"""``manage.py nsfw_bank_export BANK [FILE]``: write a hash bank's active entries.

A TSV file is safe to open in a spreadsheet: :func:`nsfw_moderation.hashlists.write`
quotes labels that would run as formulas, in a way the import undoes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from nsfw_moderation import banks, hashlists
from nsfw_moderation.models import HashBank


class Command(BaseCommand):
    help = (
        "Write the active PDQ hashes of the hash bank BANK to FILE (standard output "
        "without one), as a hex list or a ThreatExchange-style TSV signal file. In a TSV "
        "file a label that a spreadsheet would run as a formula (starting with =, +, -, @) "
        "gets a leading single quote, which nsfw_bank_import takes off again."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("bank", help="The bank's name.")
        parser.add_argument("file", nargs="?", help="Where to write (default: standard output).")
        parser.add_argument("--format", choices=["hex", "tsv"], default="hex")

    def handle(self, *args: Any, **options: Any) -> None:
        bank = HashBank.objects.filter(name=options["bank"]).first()
        if bank is None:
            raise CommandError(f"No bank named {options['bank']!r}.")
        entries = banks.active_entries().filter(bank=bank).order_by("pk")
        text = hashlists.write(entries.values_list("pdq", "quality", "label"), options["format"])
        if options["file"]:
            Path(options["file"]).write_text(text, encoding="utf-8")
        else:
            self.stdout.write(text, ending="")
