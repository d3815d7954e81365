"""``manage.py reindex``: full, zero-downtime rebuild of the search index."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from elasticsearch import ApiError, TransportError
from tqdm import tqdm

from indexing import rebuild
from indexing.status import record_rebuild
from portal.models import Package
from search import freshness


class Command(BaseCommand):
    help = (
        "Rebuild the package index from PostgreSQL into a new index and switch the read alias "
        "to it atomically; searches keep working and writes made meanwhile reach both indices. "
        "The previous index is kept for --rollback."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--batch-size", type=int, default=1000, help="rows per bulk request")
        parser.add_argument(
            "--keep", type=int, default=1, help="previous indices to keep for rollback"
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="say what would be done, change nothing"
        )
        parser.add_argument(
            "--no-merge",
            action="store_true",
            help="skip force-merging the new index to one segment before it goes live "
            "(faster rebuild, slightly slower searches until Elasticsearch merges on its own)",
        )
        parser.add_argument(
            "--rollback",
            action="store_true",
            help="point the aliases back at the previous index instead of rebuilding",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["batch_size"] < 1:
            raise CommandError("--batch-size must be at least 1")
        try:
            if options["rollback"]:
                target = rebuild.rollback()
                self.stdout.write(f"Rolled back: aliases now point at {target}.")
                return
            total = Package.objects.count()
            with tqdm(
                total=total,
                unit="docs",
                desc="reindexing",
                disable=options["verbosity"] == 0 or options["dry_run"],
                file=self.stderr._out,
            ) as bar:
                result = rebuild.rebuild(
                    batch_size=options["batch_size"],
                    keep=options["keep"],
                    on_progress=bar.update,
                    dry_run=options["dry_run"],
                    merge=not options["no_merge"],
                    on_step=lambda step: (
                        bar.write(f"{step} ...", file=self.stderr._out)
                        if options["verbosity"]
                        else None
                    ),
                )
        except (rebuild.RebuildError, freshness.WriteNotRegistered) as exc:
            raise CommandError(str(exc)) from None
        except (ApiError, TransportError) as exc:
            raise CommandError(
                f"Elasticsearch failed during the rebuild: {exc}. Is it running "
                "(python -m config.services status)? The live index was not changed."
            ) from None
        if options["dry_run"]:
            self.stdout.write(
                f"Dry run: would build {result.index} from {result.documents} rows "
                f"(current index: {result.previous or 'none'})."
            )
            return
        rate = result.documents / result.seconds if result.seconds else 0
        record_rebuild(result)
        self.stdout.write(
            f"Built {result.index}: {result.documents} documents in {result.seconds:.1f}s "
            f"({rate:.0f} docs/s). Previous index {result.previous or '-'} kept for rollback; "
            f"removed {', '.join(result.removed) or 'nothing'}."
        )
