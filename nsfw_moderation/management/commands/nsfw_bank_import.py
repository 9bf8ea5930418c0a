"""``manage.py nsfw_bank_import BANK FILE``: add a list of PDQ hashes to a hash bank."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from nsfw_moderation import banks, hashlists
from nsfw_moderation.models import HashBank


class Command(BaseCommand):
    help = (
        "Add the PDQ hashes of FILE (one hex hash per line, or a ThreatExchange TSV/CSV "
        "signal file) to the hash bank BANK, created with --action if it does not exist. "
        "Stored images are then matched against the new hashes by a worker."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("bank", help="The bank's name.")
        parser.add_argument("file", help="The list to read ('-' for standard input).")
        parser.add_argument(
            "--action",
            choices=HashBank.Action.values,
            help="What a match does, for a new bank: block, flag (for review) or allow.",
        )
        parser.add_argument("--description", default="", help="For a new bank.")

    def handle(self, *args: Any, **options: Any) -> None:
        bank = self._bank(options["bank"], options["action"], options["description"])
        try:
            text = Path(options["file"]).read_text(encoding="utf-8-sig")
            entries = list(hashlists.read(text))
        except (OSError, ValueError) as exc:
            raise CommandError(f"Cannot read {options['file']}: {exc}") from exc
        added = banks.add_entries(bank, entries)
        self.stdout.write(
            f"{added} hash(es) added to {bank.name!r} ({bank.action}); "
            f"{len(entries) - added} already there or invalid."
        )

    def _bank(self, name: str, action: str | None, description: str) -> HashBank:
        bank = HashBank.objects.filter(name=name).first()
        if bank is None:
            if action is None:
                raise CommandError(f"No bank named {name!r}: give --action to create it.")
            return HashBank.objects.create(name=name, action=action, description=description)
        if action is not None and action != bank.action:
            raise CommandError(
                f"Bank {name!r} {bank.action}s; change its action in the admin, not on import."
            )
        return bank
