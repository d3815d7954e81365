"""``manage.py import_vocabulary [PATH]``: apply Debian's tag vocabulary (labels of tags and
facets; ``portal.vocabulary``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

import indexing
from portal import vocabulary


class Command(BaseCommand):
    help = (
        "Apply Debian's debtags vocabulary (tag and facet labels and descriptions). Without "
        "PATH, the copy shipped with the project; a newer one is /usr/share/debtags/vocabulary "
        "of Debian's debtags package. Packages whose tag labels change are reindexed."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", nargs="?", default=str(vocabulary.DEFAULT_PATH))

    def handle(self, *args: Any, **options: Any) -> None:
        path = Path(options["path"])
        if not path.is_file():
            raise CommandError(f"{path}: no such file (a debtags vocabulary, RFC 822 stanzas)")
        entries = vocabulary.load(path)
        if not entries:
            raise CommandError(f"{path}: no Tag or Facet stanza found; is it a vocabulary?")
        applied = vocabulary.apply(entries)
        indexing.enqueue()  # kick the worker for the packages whose labels changed
        self.stdout.write(
            f"Applied {path}: {len(entries)} entries; {applied.facets} facets and "
            f"{applied.tags} tags changed."
        )
