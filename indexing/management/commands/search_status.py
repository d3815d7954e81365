"""``manage.py search_status``: aliases, counts, outbox backlog; ``--verify``/``--repair``."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from elasticsearch import ApiError, TransportError

from indexing import verify as drift
from indexing.signals import kick_after_commit
from indexing.status import collect


class Command(BaseCommand):
    help = (
        "Show the search index state: the read and write aliases and their indices, documents "
        "against PostgreSQL rows, the indexing outbox backlog and its oldest pending change. "
        "--verify compares the id and version of every row and document (exit status 1 on "
        "drift); --repair also queues every drifted package for reindexing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--verify", action="store_true", help="compare every row and document")
        parser.add_argument(
            "--repair", action="store_true", help="with --verify: queue drifted packages"
        )
        parser.add_argument("--json", action="store_true", help="machine-readable output")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            status = collect()
            report = drift.verify() if options["verify"] or options["repair"] else None
        except (ApiError, TransportError) as exc:
            raise CommandError(
                f"Elasticsearch is not reachable or the index is missing: {exc}. "
                "Check `python -m config.services status`."
            ) from None
        repaired = 0
        if report is not None:
            status["verify"] = {
                "rows": report.rows,
                "documents": report.documents,
                "missing": len(report.missing),
                "extra": len(report.extra),
                "stale": len(report.stale),
                "pending_in_outbox": report.pending,
                "sample": report.drift[:20],
            }
            if options["repair"] and report.drift:
                repaired = drift.repair(report)
                kick_after_commit()
                status["verify"]["repaired"] = repaired
        if options["json"]:
            self.stdout.write(json.dumps(status, indent=2, default=str))
        else:
            self.print_human(status)
        if report is not None and not report.clean and not options["repair"]:
            raise CommandError(f"drift: {len(report.drift)} packages differ (see above)")

    def print_human(self, s: dict[str, Any]) -> None:
        w = self.stdout.write
        for label, key in (("read alias ", "read_alias"), ("write alias", "write_alias")):
            targets = ", ".join(s[key]["indices"]) or "-"
            w(f"{label}  {s[key]['name']} -> {targets}")
        w(f"documents    {s['documents']} (rows in PostgreSQL: {s['rows']})")
        w(
            f"outbox       {s['outbox']['backlog']} pending, oldest "
            f"{s['outbox']['oldest_age_s']:.1f}s old"
        )
        w(f"generation   {s['generation']}")
        if "verify" in s:
            v = s["verify"]
            verdict = "no drift" if not (v["missing"] or v["extra"] or v["stale"]) else "DRIFT"
            w(
                f"verify       {verdict}: {v['missing']} missing, {v['extra']} extra, "
                f"{v['stale']} stale ({v['pending_in_outbox']} of them already pending)"
            )
            if v.get("repaired"):
                w(f"repair       queued {v['repaired']} packages for reindexing")
