"""``python -m bench.search``: options, the run, the results files."""

from __future__ import annotations

import argparse
import os
import platform
import resource
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import common
from bench import search_queries as queries
from bench.search import harness, phases, report

DEV_DATABASE = "portal"


def _add_load_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--duration",
        type=float,
        default=20.0,
        help="seconds measured per timed phase and concurrency (default 20)",
    )
    parser.add_argument(
        "--warmup",
        type=float,
        default=None,
        help="unrecorded seconds before each timed measurement (default: duration/10, at"
        " least 1; the replay has none)",
    )
    parser.add_argument(
        "--engine-warmup",
        type=float,
        default=180.0,
        metavar="SECONDS",
        help="before the first measurement, warm Elasticsearch up with rounds of the cold mix"
        " through the web app until it stops getting faster (bench.search.warmup); no round"
        " starts after SECONDS (default 180; 0: no warm-up; --quick: at most 60)",
    )
    parser.add_argument(
        "--concurrency",
        default="1,8,32",
        help="comma-separated numbers of concurrent clients (default 1,8,32)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="5 s per timed measurement, 300 searches, 200 prefixes, 400 replayed requests",
    )
    parser.add_argument(
        "--phases",
        "--only",
        dest="phases",
        default=",".join(phases.PHASES),
        help=f"phases to run, comma-separated (default: all of {','.join(phases.PHASES)};"
        " warm_counts is warm with the page cache off, on a second web app; with replay, the"
        " pg phases replay the stream too)",
    )


def _add_workload_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--queries", type=int, default=600, help="searches in the mix (600)")
    parser.add_argument("--prefixes", type=int, default=500, help="autocomplete prefixes (500)")
    parser.add_argument(
        "--replay-searches",
        type=int,
        default=20_000,
        help="distinct searches the replay stream draws from (default 20000)",
    )
    parser.add_argument(
        "--replay-requests",
        type=int,
        default=10_000,
        help="requests of the replay stream, replayed from its start by every measurement"
        " (default 10000; the PostgreSQL baselines replay the same ones)",
    )
    parser.add_argument(
        "--pg-replay-requests",
        type=int,
        default=None,
        help="the PostgreSQL baselines replay only this many requests from the stream's start"
        " (default: all of them). They cache nothing, so a prefix of the stream stands for"
        " it; on the 1M catalog pg_fts answers 2 searches a second at concurrency 1",
    )
    parser.add_argument(
        "--zipf", type=float, default=1.0, help="exponent of the replay's Zipf law (default 1)"
    )
    parser.add_argument("--seed", type=int, default=20261121)


def _add_server_options(parser: argparse.ArgumentParser) -> None:
    cpus = os.cpu_count() or 2
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--worker-class", default="gthread", choices=["sync", "gthread"])
    parser.add_argument(
        "--workers",
        type=int,
        default=cpus + 1,
        help=f"gunicorn workers (default: cores + 1 = {cpus + 1})",
    )
    parser.add_argument(
        "--threads", type=int, default=4, help="threads per gthread worker (default 4)"
    )
    parser.add_argument(
        "--cache-prefix",
        default="benchsearch",
        help="the web app's CACHE_KEY_PREFIX during the benchmark (default: its own"
        " namespace, deleted at the end)",
    )
    parser.add_argument(
        "--app-dir",
        type=lambda p: Path(p).resolve(),
        default=common.ROOT,
        help="run the web app from this checkout (default: this one), e.g. to compare"
        " before and after a change",
    )


def _add_data_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database",
        "--source-db",
        dest="database",
        default=os.environ.get("POSTGRES_DB") or DEV_DATABASE,
        help="the catalog database the web app and the workload read, only read (default:"
        " portal; bench_1m for the million-package catalog of bench.reindex --keep)",
    )
    parser.add_argument(
        "--index-prefix",
        default=os.environ.get("SEARCH_INDEX_PREFIX") or DEV_DATABASE,
        help="the search index prefix the web app uses (default: portal; bench1m with"
        " --database bench_1m)",
    )
    parser.add_argument(
        "--pg-db",
        default=None,
        help="database for the PostgreSQL baselines' copy of the catalog (default: bench_pg"
        " for portal, <database>_pg for another one, e.g. bench_1m_pg)",
    )
    parser.add_argument(
        "--rebuild-pg",
        action="store_true",
        help="rebuild the baseline copy even if it looks current",
    )


def _add_report_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--compare",
        metavar="JSON",
        help="an earlier run's results (e.g. bench/results/search-before.json) to show"
        " before/after",
    )
    parser.add_argument(
        "--wait-idle",
        type=float,
        default=0,
        metavar="SECONDS",
        help="first wait up to SECONDS for the machine to be nearly idle (less than 0.3 cores"
        " busy)",
    )
    parser.add_argument(
        "--output",
        default=None,
        help="results file stem in bench/results (default: search for the portal database,"
        " search-<database without bench_> otherwise, e.g. search-1m)",
    )


def _check(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    try:
        args.levels = [int(x) for x in args.concurrency.split(",") if x.strip()]
    except ValueError:
        parser.error("--concurrency takes comma-separated integers, e.g. 1,8,32")
    if not args.levels or min(args.levels) < 1:
        parser.error("--concurrency needs positive integers")
    args.phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    unknown = set(args.phases) - set(phases.PHASES)
    if unknown or not args.phases:
        parser.error(f"unknown phases: {', '.join(sorted(unknown)) or '(none given)'}")
    if args.pg_replay_requests is not None and args.pg_replay_requests < 1:
        raise SystemExit("--pg-replay-requests must be at least 1")
    if min(args.queries, args.prefixes, args.replay_searches, args.replay_requests) < 1:
        parser.error(
            "--queries, --prefixes, --replay-searches and --replay-requests must be positive"
        )
    if args.zipf <= 0:
        parser.error("--zipf must be positive")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.search",
        description="Benchmark the portal's search API (a realistic replay against the live"
        " cache, warm and cold cache, autocomplete) against PostgreSQL ILIKE and full-text"
        " baselines doing the same job, with the CPU each part spends per request.",
    )
    for add in (
        _add_load_options,
        _add_workload_options,
        _add_server_options,
        _add_data_options,
        _add_report_options,
    ):
        add(parser)
    args = parser.parse_args(argv)
    if args.quick:
        args.duration = 5.0
        args.queries = min(args.queries, 300)
        args.prefixes = min(args.prefixes, 200)
        args.replay_requests = min(args.replay_requests, 400)
        args.engine_warmup = min(args.engine_warmup, 60)
    if args.warmup is None:
        args.warmup = max(1.0, args.duration / 10)
    _check(parser, args)
    scaled = args.database != DEV_DATABASE
    if args.pg_db is None:
        args.pg_db = f"{args.database}_pg" if scaled else "bench_pg"
    if args.output is None:
        args.output = f"search-{args.database.removeprefix('bench_')}" if scaled else "search"
    return args


# --------------------------------------------------------------------------- the run


def setup(args: argparse.Namespace) -> None:
    """The benchmark's environment in this process too (same cache prefix, Redis databases,
    catalog and index as the web app: bumps made here are the ones it sees), and Django."""
    common.apply_env(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "POSTGRES_DB": args.database,
            "SEARCH_INDEX_PREFIX": args.index_prefix,
            "CACHE_KEY_PREFIX": args.cache_prefix,
        },
        read_only_data=True,
    )
    import django

    django.setup()
    common.require_services()


def es_state(index_prefix: str) -> dict[str, Any]:
    index = harness.es_index(index_prefix)
    prefix_bytes = sum(i["store_bytes"] for i in index["prefix_indices"].values())
    return {
        **index,
        "store_mb": round(index["store_bytes"] / 2**20, 1),
        "primary_store_mb": round(index["primary_store_bytes"] / 2**20, 1),
        "prefix_store_mb": round(prefix_bytes / 2**20, 1),
        "heap_before": harness.es_heap(),
    }


def build_report(
    args: argparse.Namespace,
    argv: list[str] | None,
    started: datetime,
    context: dict[str, Any],
) -> dict[str, Any]:
    runner: phases.Runner = context["runner"]
    recorder = runner.recorder
    workload = runner.workload
    rows = recorder.rows
    ratio_rows = report.ratios(rows)
    recorder.notes.append(
        "All processes share the machine's cores: the load generator (Python threads with"
        " keep-alive HTTP connections, or psycopg2 pools for the baselines), gunicorn,"
        " Elasticsearch, Redis and PostgreSQL. The CPU table shows each one's share."
    )
    if runner.services.missing:
        recorder.notes.append(
            "No process found listening for: "
            + ", ".join(runner.services.missing)
            + " (their CPU is counted under others)."
        )
    recorder.notes.extend(runner.services.changes)
    comparison = None
    if args.compare:
        try:
            comparison = report.compare(Path(args.compare), rows)
        except (OSError, ValueError, KeyError) as exc:
            recorder.notes.append(f"No before/after table: cannot read {args.compare} ({exc}).")
    es = {**context["es"], "heap_after": harness.es_heap()}
    return {
        "rows": rows,
        "extra_rows": recorder.extra_rows,
        "ratios": ratio_rows,
        "replay_ratios": report.ratios(rows, "replay"),
        "targets": report.targets(rows, ratio_rows),
        "details": recorder.details,
        "notes": recorder.notes,
        "comparison": comparison,
        "meta": {
            "started_at": started.isoformat(timespec="seconds"),
            "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "argv": " ".join(argv if argv is not None else sys.argv[1:]),
            "phases": args.phases,
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "engine_warmup": runner.engine_warmup,
            "concurrency": args.levels,
            "server": runner.server.describe(),
            "app_dir": str(runner.server.app_dir),
            "database": args.database,
            "index_prefix": args.index_prefix,
            "index": es["index"],
            "documents": es["documents"],
            "es": es,
            "cache_prefix": args.cache_prefix,
            "relevance_check": runner.relevance,
            "idle_wait": context["quiet"],
            "pg": context["pg"],
            "mix": queries.describe(workload.mix),
            "suggest_prefixes": len(workload.prefixes),
            "replay": workload.describe_replay(),
            "seed": args.seed,
            "services": runner.services.roots,
            "background_cpu_cores": context["background"],
            "machine": {
                "cpus": os.cpu_count(),
                "platform": platform.platform(),
                "python": platform.python_version(),
                "load_generator_maxrss_mb": round(
                    resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
                ),
            },
        },
    }


def print_summary(data: dict[str, Any]) -> None:
    for key, cache in (("ratios", "warm"), ("replay_ratios", "replay")):
        for r in data[key]:
            print(
                f"concurrency {r['concurrency']:>3}: portal {cache} {r[f'portal_{cache}_rps']}"
                f" req/s, best PG ({r['best_pg']}) {r['best_pg_rps']} req/s -> {r['ratio']}x"
            )
    for d in data["details"]:
        if d["system"] == "portal" and d["cache"] == "replay":
            print(
                f"replay c={d['concurrency']}: {report.share(d.get('hit_ratio'))} of the"
                f" answers from the cache (ideal {report.share(d.get('ideal_hit_ratio'))})"
            )
    for t in data["targets"]:
        print(f"{'MET ' if t['met'] else 'MISS'} {t['target']}: {t['measured']}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = datetime.now(UTC)
    setup(args)
    conninfo = common.pg_conninfo()
    context: dict[str, Any] = {"es": es_state(args.index_prefix)}
    common.say(
        f"index {context['es']['index']}: {context['es']['documents']:,} documents,"
        f" {context['es']['store_mb']:,.1f} MB on disk"
    )
    workload = phases.Workload.build(conninfo, args)
    common.say(
        f"workload from {args.database!r}: {len(workload.mix)} searches, {len(workload.prefixes)}"
        f" prefixes, replay {len(workload.stream):,} requests over"
        f" {len(workload.distinct):,} distinct searches (seed {args.seed})"
    )
    context["pg"], lookups = phases.prepare_pg(conninfo, args)
    context["quiet"] = harness.wait_for_quiet(args.wait_idle, 0.3) if args.wait_idle > 0 else {}
    recorder = phases.Recorder()
    if context["quiet"] and not context["quiet"]["quiet"]:
        recorder.notes.append(
            f"The machine was not idle when the run started ({context['quiet']['busy_cores']}"
            " cores busy with other work)."
        )
    services = harness.Services.discover({args.database, args.pg_db})
    context["background"] = harness.background(services)
    runner = phases.Runner(args, workload, services, recorder)
    context["runner"] = runner
    runner.portal()
    runner.engine()
    runner.warm_counts()
    runner.postgres(conninfo, lookups)
    data = build_report(args, argv, started, context)
    for path in report.write_outputs(data, args.output):
        common.say(f"wrote {common.shown(path)}")
    print_summary(data)
    return 0
