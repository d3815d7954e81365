"""``manage.py import_catalog [PATH]``: load a catalog file into PostgreSQL."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

import indexing
from portal.catalog_import import DEFAULT_BATCH_SIZE, ImportAborted, import_catalog

DEFAULT_PATH = Path(settings.BASE_DIR) / "data" / "debian-bookworm-main.jsonl.gz"


class Command(BaseCommand):
    help = (
        "Import a package catalog (JSON lines, gzip or plain; default: the bundled Debian "
        "bookworm catalog). Idempotent: a second run updates changed rows and creates no "
        "duplicates. Bad lines are reported with their line number and skipped (or abort the "
        "whole import with --strict). Runs in one transaction: an abort leaves the database "
        "unchanged. Every package the import creates or changes is recorded in the indexing "
        "outbox (by database triggers) and the worker is kicked at the end, so search "
        "follows without a full reindex."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", nargs="?", default=str(DEFAULT_PATH), help="catalog file")
        parser.add_argument(
            "--strict", action="store_true", help="abort (and roll back) on the first bad line"
        )
        parser.add_argument(
            "--prune", action="store_true", help="delete packages that are not in the file"
        )
        parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE)
        parser.add_argument(
            "--no-index",
            action="store_true",
            help=(
                "do not kick the indexing worker at the end (the changes wait in the outbox "
                "for the periodic sweeper; for a whole catalog, run `manage.py reindex`)"
            ),
        )

    def handle(self, *args: Any, **options: Any) -> None:
        path = Path(options["path"])
        if options["batch_size"] < 1:
            raise CommandError("--batch-size must be at least 1")
        total = path.stat().st_size if path.is_file() else None
        bar = tqdm(
            total=total,
            unit="B",
            unit_scale=True,
            desc=f"importing {path.name}",
            disable=options["verbosity"] == 0,
            file=self.stderr._out,
        )
        last = [0]

        def progress(position: int, packages: int) -> None:
            bar.update(max(0, position - last[0]))
            last[0] = position
            bar.set_postfix(packages=packages, refresh=False)

        def report(line: int, message: str) -> None:
            bar.write(f"line {line}: {message}", file=self.stderr._out)

        started = time.monotonic()
        try:
            stats = import_catalog(
                path,
                strict=options["strict"],
                prune=options["prune"],
                batch_size=options["batch_size"],
                on_progress=progress,
                on_error=report,
                hand_off=None if options["no_index"] else indexing.enqueue,
            )
        except ImportAborted as exc:
            bar.close()
            raise CommandError(f"import of {path} aborted: {exc}") from None
        bar.close()
        elapsed = time.monotonic() - started
        self.stdout.write(
            f"Imported {path}: {stats.lines} lines, {stats.valid} valid packages "
            f"({stats.created} created, {stats.updated} updated, {stats.unchanged} unchanged, "
            f"{stats.pruned} pruned), {stats.skipped} bad lines skipped, "
            f"{len(stats.changed_ids)} changed for indexing, in {elapsed:.1f}s."
        )
        if stats.errors or stats.warnings:
            self.stdout.write(
                self.style.WARNING(
                    f"{stats.skipped} lines skipped and {len(stats.warnings)} warnings "
                    "(listed above with their line numbers)."
                )
            )
