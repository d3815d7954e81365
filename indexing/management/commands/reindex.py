"""``manage.py reindex``: full, zero-downtime rebuild of the search index, or rollback."""

from __future__ import annotations

import sys
from typing import Any

import redis
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from elasticsearch import ApiError, TransportError
from tqdm import tqdm

from indexing import rebuild
from indexing.status import record_rebuild
from portal.models import Package
from search import freshness, indices


class Command(BaseCommand):
    help = (
        "Rebuild the package index from PostgreSQL into a new index and make it live "
        "atomically; searches keep working and writes made meanwhile reach both indices. The "
        "index it replaces stays up to date for SEARCH_ROLLBACK_HOURS, as the target of "
        "--rollback. Ctrl-C or SIGTERM stops cleanly (the half-built index is removed)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--batch-size", type=int, default=1000, help="rows per bulk request")
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
            help="make the previous index live again instead of rebuilding",
        )

    def rollback_dry_run(self) -> None:
        """What ``--rollback`` would do, changing nothing."""
        state = indices.alias_state()
        target = state.rollback_target
        if target is None:
            self.stdout.write("Dry run: there is no previous index to roll back to.")
            return
        self.stdout.write(
            f"Dry run: would make {target} live again (live now: {state.live or 'none'})."
        )
        if not indices.schema_is_current(target):
            self.stdout.write(f"{target} was built with another schema than this code's.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["batch_size"] < 1:
            raise CommandError("--batch-size must be at least 1")
        try:
            with rebuild.sigterm_interrupts():
                if options["rollback"] and options["dry_run"]:
                    self.rollback_dry_run()
                    return
                if options["rollback"]:
                    target = rebuild.rollback()
                    self.stdout.write(
                        f"Rolled back: {target} is live again. The index it replaced is now the "
                        "rollback target (run --rollback again to undo)."
                    )
                    if not indices.schema_is_current(target):
                        self.stderr.write(
                            f"Warning: {target} was built with another schema than this "
                            "code's: searches that use a field it lacks miss it. Run the code "
                            "that built it, or rebuild (`manage.py reindex`)."
                        )
                    return
                result = self.rebuild(options)
        except (rebuild.RebuildError, freshness.WriteNotRegistered) as exc:
            raise CommandError(str(exc)) from None
        except (ApiError, TransportError) as exc:
            raise CommandError(
                f"Elasticsearch failed ({exc}); the live index is unchanged. Check it with "
                "`python -m config.services status`, then run the command again."
            ) from None
        except redis.RedisError as exc:
            raise CommandError(
                f"the coordination Redis (the rebuild lease) failed ({exc}); the live index is "
                "unchanged. Check it with `python -m config.services status`, then run the "
                "command again."
            ) from None
        except (KeyboardInterrupt, rebuild.Interrupted):
            raise CommandError(
                "Interrupted: the half-built index was removed; the live index is unchanged."
            ) from None
        if options["dry_run"]:
            self.stdout.write(
                f"Dry run: would build {result.index} from {result.documents} rows "
                f"(live index: {result.previous or 'none'})."
            )
            return
        record_rebuild(result)
        self.report(result)

    def rebuild(self, options: dict[str, Any]) -> rebuild.RebuildResult:
        quiet = options["verbosity"] == 0 or options["dry_run"]
        with tqdm(
            total=Package.objects.count(),
            unit="docs",
            desc="reindexing",
            disable=quiet,
            file=sys.stderr,
            delay=0.5,  # not drawn at 0% for a run refused at once (the lease, Redis)
        ) as bar:
            return rebuild.rebuild(
                batch_size=options["batch_size"],
                on_progress=bar.update,
                dry_run=options["dry_run"],
                merge=not options["no_merge"],
                on_step=lambda step: None if quiet else bar.write(f"{step} ...", file=sys.stderr),
            )

    def report(self, result: rebuild.RebuildResult) -> None:
        rate = result.documents / result.seconds if result.seconds else 0
        lines = [
            f"Built {result.index}: {result.documents} documents in {result.seconds:.1f}s "
            f"({rate:.0f} docs/s); it is live."
        ]
        if result.previous:
            lines.append(
                f"Kept {result.previous} as the rollback target: it keeps receiving every "
                f"change for {settings.SEARCH_ROLLBACK_HOURS:g} hours "
                "(`manage.py reindex --rollback`)."
            )
        else:
            lines.append("No previous index is kept (nothing to roll back to).")
        lines.append("Removed: " + (", ".join(result.removed) or "nothing") + ".")
        for warning in result.warnings:
            lines.append(self.style.WARNING(f"Warning: {warning}"))
        self.stdout.write("\n".join(lines))
