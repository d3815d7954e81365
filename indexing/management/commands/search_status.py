"""``manage.py search_status``: aliases and indices, counts, backlog; verify and repair."""

from __future__ import annotations

import json
import sys
from typing import Any

import redis
from django.core.management.base import BaseCommand, CommandError, CommandParser
from elasticsearch import ApiError, NotFoundError, TransportError
from tqdm import tqdm

from indexing import rebuild
from indexing import verify as drift
from indexing.signals import kick_after_commit
from indexing.status import collect
from indexing.writer import set_aside
from portal.models import Package

DEFAULT_SAMPLE = 1000  # documents compared field by field by --verify


class Command(BaseCommand):
    help = (
        "Show the search index state: every index of the project and its role (live, "
        "rollback target, being built, orphan), documents against PostgreSQL rows, the "
        "indexing outbox backlog and both Redis servers. Exit status 1 when the counts differ "
        "by more than the pending changes explain. --verify also compares every row's "
        "version and the content of a sample of documents (exit status 1 on any drift); "
        "--repair queues every drifted package for reindexing; --remove-orphans deletes "
        "indices no alias points at."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--verify", action="store_true", help="compare rows and documents")
        parser.add_argument(
            "--sample",
            type=int,
            default=None,
            help=f"with --verify: documents compared field by field (default {DEFAULT_SAMPLE})",
        )
        parser.add_argument(
            "--full", action="store_true", help="with --verify: compare every document's content"
        )
        parser.add_argument(
            "--repair", action="store_true", help="verify, and queue drifted packages"
        )
        parser.add_argument(
            "--remove-orphans", action="store_true", help="delete indices no alias points at"
        )
        parser.add_argument("--json", action="store_true", help="machine-readable output")

    def gather(self, options: dict[str, Any]) -> tuple[list[str], dict[str, Any], Any]:
        """(indices removed, the status, the verify report or None); a failing service is a
        CommandError saying which and what to do."""
        try:
            removed = rebuild.remove_orphans() if options["remove_orphans"] else []
            status = collect()
            report = None
            if (options["verify"] or options["repair"]) and not status["engine_error"]:
                sample = options["sample"]
                sample = None if options["full"] else DEFAULT_SAMPLE if sample is None else sample
                with tqdm(
                    unit="docs",
                    desc="comparing documents with rows",
                    file=sys.stderr,
                    delay=1,  # only when it takes a while (--full: 83 s for the catalog)
                    disable=options["json"] or options["verbosity"] == 0,
                ) as bar:

                    def progress(done: int, of: int) -> None:
                        bar.total = of
                        bar.update(done - bar.n)

                    report = drift.verify(sample=sample, on_progress=progress)
        except rebuild.RebuildError as exc:
            raise CommandError(str(exc)) from None
        except NotFoundError as exc:
            raise CommandError(
                f"there is no live index to verify ({exc}): run `manage.py reindex`."
            ) from None
        except (ApiError, TransportError) as exc:
            raise CommandError(
                f"Elasticsearch is not reachable: {exc}. Check `python -m config.services status`."
            ) from None
        except redis.RedisError as exc:
            raise CommandError(
                f"the coordination Redis (the rebuild lease) failed: {exc}. Nothing was "
                "removed. Check `python -m config.services status`."
            ) from None
        return removed, status, report

    def handle(self, *args: Any, **options: Any) -> None:
        verifying = options["verify"] or options["repair"]
        if not verifying and (options["full"] or options["sample"] is not None):
            raise CommandError(
                "--full and --sample say how to verify: add --verify (or --repair), "
                "e.g. `manage.py search_status --verify --full`"
            )
        if options["sample"] is not None and options["sample"] < 0:
            raise CommandError("--sample must be 0 or more")
        removed, status, report = self.gather(options)
        if removed:
            status["removed"] = removed
        if report is not None:
            names = dict(Package.objects.filter(pk__in=report.drift[:20]).values_list("pk", "name"))
            status["verify"] = {
                "index": report.index,
                "rows": report.rows,
                "documents": report.documents,
                "missing": len(report.missing),
                "extra": len(report.extra),
                "stale": len(report.stale),
                "ahead": len(report.ahead),
                "compared": report.compared,
                "differ": len(report.differ),
                "differing_fields": sorted({f for fs in report.differ.values() for f in fs}),
                "pending_in_outbox": report.pending,
                "sample": report.drift[:20],
                "drift_count": len(report.drift),
                "drifted": [{"id": pk, "name": names.get(pk)} for pk in report.drift[:20]],
            }
            if options["repair"] and report.drift:
                if status["schema_current"] is False:
                    # Rewriting documents cannot add a field to an index's mapping.
                    raise CommandError(
                        "the live index was built with another schema, so its documents "
                        "differ from what this code builds in every changed field, and "
                        "rewriting them cannot change its mapping: run `manage.py reindex`"
                    )
                status["verify"]["repaired"] = drift.repair(report)
                kick_after_commit()
        if options["json"]:
            self.stdout.write(json.dumps(status, indent=2, default=str))
        else:
            self.print_human(status)
        if status["engine_error"]:
            raise CommandError(
                f"{status['engine_error']}. Check `python -m config.services status`."
            )
        if report is not None and not report.clean and not options["repair"]:
            remedy = (
                "the live index was built with another schema: run `manage.py reindex`"
                if status["schema_current"] is False
                # Content is compared on a sample: `--repair` alone draws another one.
                else "run `manage.py search_status --repair --full` to reindex them"
                if report.differ and not options["full"]
                else "run `manage.py search_status --repair` to reindex them"
            )
            raise CommandError(f"drift: {len(report.drift)} packages differ (see above); {remedy}")
        if report is None and status["count_mismatch"]:
            raise CommandError(f"count mismatch: {status['counts']}")
        if status["outbox"]["refused"]:
            n = status["outbox"]["refused"]
            raise CommandError(
                f"{n} change{'s' if n != 1 else ''} set aside: Elasticsearch refused the "
                "documents (listed above, with why); fix the packages "
                "or the document builder, then run `manage.py search_status --repair`"
            )

    def print_outbox(self, outbox: dict[str, Any]) -> None:
        self.stdout.write(
            f"outbox          {outbox['backlog']} pending, oldest {outbox['oldest_age_s']:.1f}s old"
        )
        if outbox["refused"]:
            self.stdout.write(
                self.style.ERROR(
                    f"refused         {outbox['refused']} set aside: Elasticsearch refused "
                    "their documents; tried again every few minutes"
                )
            )
            for row in set_aside():
                name = f" ({row['name']})" if row["name"] else ""
                self.stdout.write(f"  package {row['package']}{name}: {row['reason']}")

    def print_schemas(self, s: dict[str, Any]) -> None:
        """The live index's and the rollback target's, when not this code's."""
        if s["schema_current"] is False:
            self.stdout.write(
                "schema          the live index was built with another schema (analysis or "
                "mappings): run `manage.py reindex` for the change to take effect"
            )
        if s["rollback_schema_current"] is False:
            self.stdout.write(
                f"rollback target {s['rollback_target']} was built with another schema than "
                "this code's: a rollback to it needs the code that built it (with this code, "
                "searches that use what it lacks miss it)"
            )

    def print_human(self, s: dict[str, Any]) -> None:
        w = self.stdout.write
        if s["engine_error"] is None:
            self.print_engine(s)
        self.print_outbox(s["outbox"])
        self.print_worker(s)
        w(f"generation      {s['generation'] if s['generation'] is not None else 'unknown'}")
        if s["lease"]:
            w(f"running         {s['lease']}")
        for name, info in s["redis"].items():
            if "error" in info:
                w(f"redis {name:<13}unreachable: {info['error']}")
            else:
                w(
                    f"redis {name:<13}{info['used_memory']} of {info['maxmemory'] or 'no cap'} "
                    f"bytes, policy {info['policy']}, {info['evicted_keys']} evicted"
                )
        if "verify" in s:
            self.print_verify(s["verify"])

    def print_worker(self, s: dict[str, Any]) -> None:
        """The worker's heartbeat: it knew a dead worker (``worker_stale``), and said nothing."""
        age = s["worker_heartbeat_age_s"]
        if s["coordination_error"]:
            line = "unknown: the coordination Redis is unreachable"
        elif age is None:
            line = self.style.ERROR(
                "no heartbeat yet: is a Celery worker with beat running? changes wait in the outbox"
            )
        elif s["worker_stale"]:
            line = self.style.ERROR(
                f"last heartbeat {age:.0f}s ago (over {s['worker_max_age_s']:.0f}s): is a "
                "Celery worker with beat running? changes wait in the outbox"
            )
        else:
            line = f"last heartbeat {age:.0f}s ago"
        self.stdout.write(f"worker          {line}")

    def print_engine(self, s: dict[str, Any]) -> None:
        """What Elasticsearch says: aliases, indices, schemas, counts."""
        w = self.stdout.write
        for label, key in (
            ("read alias    ", "read_alias"),
            ("write alias   ", "write_alias"),
            ("previous alias", "previous_alias"),
        ):
            targets = ", ".join(s[key]["indices"]) or "-"
            w(f"{label}  {s[key]['name']} -> {targets}")
        for index in s["indices"]:
            w(f"index           {index['name']}: {index['role']}")
        if s["orphans"]:
            w(
                f"orphans         {len(s['orphans'])}: nothing reads or writes them; remove "
                "them with `manage.py search_status --remove-orphans`"
            )
        for name in s.get("removed", []):
            w(f"removed         {name}")
        self.print_schemas(s)
        counts = s["counts"]
        w(f"documents       {self.style.ERROR(counts) if s['count_mismatch'] else counts}")

    def print_verify(self, v: dict[str, Any]) -> None:
        w = self.stdout.write
        drifted = v["missing"] or v["extra"] or v["stale"] or v["ahead"] or v["differ"]
        verdict = "DRIFT" if drifted else "no drift"
        w(
            f"verify          {verdict} in {v['index']}: {v['missing']} missing, "
            f"{v['extra']} extra, {v['stale']} stale, {v['ahead']} ahead of the database, "
            f"{v['differ']} of {v['compared']} "
            f"compared differ ({v['pending_in_outbox']} of them already pending)"
        )
        if v["differing_fields"]:
            w(f"                differing fields: {', '.join(v['differing_fields'])}")
        if v.get("drifted"):
            listed = ", ".join(
                f"{p['id']} ({p['name']})" if p["name"] else str(p["id"]) for p in v["drifted"]
            )
            more = v["drift_count"] - len(v["drifted"])
            w(f"                packages: {listed}" + (f" and {more} more" if more > 0 else ""))
        if v.get("repaired"):
            w(f"repair          queued {v['repaired']} packages for reindexing")
