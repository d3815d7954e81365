"""The search benchmark's phases: what each one measures, and why.

Every phase runs once per concurrency level (``--concurrency``) and gives one row
(system, endpoint, cache, concurrency, latency percentiles, requests a second, errors) with
the CPU each part spent per request completed (``es_cpu_ms``, ``web_cpu_ms``, ``pg_cpu_ms``,
``redis_cpu_ms``: the CPU time of Elasticsearch, of gunicorn's master and workers, of the
PostgreSQL server and of both Redis servers during the measured window, divided by the
requests completed in it; of PostgreSQL only the backends of the benchmark's databases
count, see ``harness.CpuMeter``).

Portal phases, against one web app (``harness.Server``), in this order, after the web app
warmed Elasticsearch's JVM up (``Runner.warm_engine``, ``bench.search.warmup``):

* ``replay`` (rows ``portal/search/replay``): what a real site's cache achieves. A long
  stream of searches (``--replay-requests``) over many distinct ones (``--replay-searches``,
  20,000 by default: text, filters, sort and page, distinct once normalised), Zipf-distributed
  (exponent ``--zipf``, about 1, seeded; ``bench.search_queries``), sent in order, from its
  first request, by the closed loop's threads. Nothing is arranged for the cache: no warm-up
  pass fills it and no generation bump empties it during the run; each measurement starts
  from an empty cache namespace (its keys deleted from the cache Redis; the generation is
  left alone), so every measurement replays the same stream against the same cache state
  and two runs are comparable. The report gives the cache hit ratio reached (answers whose
  page of hits came from the cache, from the API's ``hits_cached``; summaries from
  ``facets_cached``), over the whole stream and its second half, next to the ideal ratio of
  an unbounded cache (every repeat a hit). What the cache cannot hold shows as evictions of
  the cache Redis (LRU, capped).
* ``warm`` (``portal/search/warm``): ``/api/search`` over the mix (``--queries``) after the
  whole mix ran twice (summaries and pages of hits cached): the best case, a site answering
  repeated searches between two index writes.
* ``cold`` (``portal/search/cold``): the mix with the index generation moved on before every
  request (``search.freshness.bump_generation()``, outside the measured time, through the
  settings the web app uses: same ``CACHE_KEY_PREFIX``, same coordination Redis), so nothing
  cached is used: every request computes its facet counts, total and hits in Elasticsearch.
* ``suggest`` (``portal/suggest/warm`` and ``/cold``): ``/api/suggest`` with prefixes of
  package names, after every prefix was asked once (answers cached per index generation),
  and with the generation bumped before every request (every answer from Elasticsearch).

``warm_counts`` (``portal/search/warm-counts``, in ``extra_rows``: the rows' schema has no
such cache value): ``warm`` on a second web app with ``SEARCH_PAGE_CACHE=0``: counts from the
cache, every page of hits from Elasticsearch (what ``warm`` measured before the page cache).

``engine`` (``elasticsearch/search/cold``, no web app): the floor of a cold search. For
every search of the mix, the request a cold search sends first (a page of hits with
highlights, the exact total, every facet's counts: ``search.service.Plan.summary_bodies`` in
"exact" mode, the query's meaning vector included; a browse ranked by relevance sends its
hits and its counts together, in one msearch), built once by the service's own code in
the load generator and sent straight to Elasticsearch over keep-alive HTTP, at each
concurrency. No Redis, no web app, no typo-tolerant second request, no "did you mean": what
Elasticsearch alone answers on this machine, to set the cold rows against (a target the
engine alone cannot reach is out of reach of the portal).

``pg_ilike`` and ``pg_fts`` (``pg_*/search/none``): the mix in PostgreSQL (text, filters,
sort, page, total and every facet the portal shows, one statement per search;
``bench.search_baselines``), through psycopg2 connection pools in the load generator,
against a copy of the catalog tables. With ``replay`` selected too, each baseline also runs
the replay stream (same requests, same order, same count, or its first
``--pg-replay-requests``; ``pg_*/search/replay``): PostgreSQL has no result cache, so this is
what a site without a search engine pays for the same traffic.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import json
import os
import time
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bench import common
from bench import search_baselines as baselines
from bench import search_queries as queries
from bench.search import harness, warmup
from bench.search.harness import CpuMeter, Load, Measurement, Server

PHASES = ("replay", "warm", "warm_counts", "cold", "suggest", "engine", "pg_ilike", "pg_fts")
PORTAL_PHASES = ("replay", "warm", "cold", "suggest")  # run in this order on one web app
# Phases whose numbers depend on Elasticsearch: its JVM is warmed up before them.
ENGINE_PHASES = (*PORTAL_PHASES, "warm_counts", "engine")
ROW_CACHES = {"warm", "cold", "none", "replay"}  # others go to extra_rows
FACET_TTL = 300  # search.facet_cache.TTL: re-run the warm-up pass before it can expire
COST_GROUPS = {  # row key -> CPU group
    "es_cpu_ms": "elasticsearch",
    "web_cpu_ms": "web_app",
    "pg_cpu_ms": "postgres",
    "redis_cpu_ms": "redis",
}
RELEVANCE_CHECKS = {  # query -> the package that must come first
    "vim": "vim",
    "git": "git",
    "firefx": "firefox-esr",
    "libssl3": "libssl3",
    "python3-django": "python3-django",
}


@dataclass(frozen=True)
class Phase:
    system: str
    endpoint: str
    cache: str

    @property
    def label(self) -> str:
        return f"{self.system}/{self.endpoint}/{self.cache}"


# --------------------------------------------------------------------------- workload


@dataclass
class Workload:
    """The requests: the mix, the autocomplete prefixes, and the replay stream."""

    mix: list[queries.Query]
    prefixes: list[str]
    distinct: list[queries.Query]  # the replay's distinct searches, most popular first
    stream: list[int]  # the replay: ranks into ``distinct``, in order
    exponent: float

    @property
    def search_paths(self) -> list[str]:
        return [q.path() for q in self.mix]

    @property
    def suggest_paths(self) -> list[str]:
        return ["/api/suggest?" + urllib.parse.urlencode({"q": p}) for p in self.prefixes]

    @property
    def stream_paths(self) -> list[str]:
        paths = [q.path() for q in self.distinct]
        return [paths[r] for r in self.stream]

    def describe_replay(self) -> dict[str, Any]:
        if not self.stream:
            return {}
        return {
            "zipf_exponent": self.exponent,
            **queries.describe_stream(self.stream, self.distinct),
        }

    @classmethod
    def build(cls, conninfo: dict[str, Any], args: argparse.Namespace) -> Workload:
        """Everything drawn from the catalog database (only read), deterministically."""
        source = baselines.connect(conninfo, args.database, readonly=True)
        with contextlib.closing(source):
            catalog = queries.load_catalog(source)
        mix = queries.search_mix(catalog, args.queries, args.seed)
        prefixes = queries.suggest_mix(catalog, args.prefixes, args.seed)
        distinct: list[queries.Query] = []
        stream: list[int] = []
        if "replay" in args.phases:
            distinct = queries.distinct_searches(catalog, args.replay_searches, args.seed)
            if len({queries.search_key(q) for q in distinct}) != len(distinct):
                raise SystemExit("the replay's distinct searches are not distinct")
            stream = queries.zipf_stream(
                len(distinct), args.replay_requests, args.zipf, args.seed + 3
            )
        return cls(mix, prefixes, distinct, stream, args.zipf)


def warms_up(phases: Sequence[str], limit: float) -> bool:
    """Whether Elasticsearch is warmed up before the measurements (``bench.search.warmup``):
    a limit above 0 and a phase whose numbers depend on it."""
    return limit > 0 and any(p in ENGINE_PHASES for p in phases)


# --------------------------------------------------------------------------- recording


def summarize(measurement: Measurement) -> dict[str, Any]:
    lat = measurement.outcome.latencies_ms

    def r(v: float | None) -> float | None:
        return None if v is None else round(v, 2)

    return {
        "p50_ms": r(common.percentile(lat, 50)),
        "p95_ms": r(common.percentile(lat, 95)),
        "p99_ms": r(common.percentile(lat, 99)),
        "rps": round(len(lat) / measurement.wall, 1) if measurement.wall else 0.0,
        "errors": measurement.outcome.errors,
    }


def cost(measurement: Measurement) -> dict[str, float | None]:
    """CPU milliseconds per completed request of each part, in every row (a part a phase
    does not use shows what it did meanwhile: no web app runs during the PostgreSQL
    baselines, so 0; Elasticsearch serves whoever else uses it)."""
    cpu, completed = measurement.cpu, measurement.outcome.completed
    return {
        key: cpu.ms_per_request(group, completed) if cpu else None
        for key, group in COST_GROUPS.items()
    }


@dataclass
class Recorder:
    rows: list[dict[str, Any]] = field(default_factory=list)
    extra_rows: list[dict[str, Any]] = field(default_factory=list)
    details: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def record(
        self,
        phase: Phase,
        concurrency: int,
        measurement: Measurement,
        extra: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        outcome = measurement.outcome
        row = {
            "system": phase.system,
            "endpoint": phase.endpoint,
            "cache": phase.cache,
            "concurrency": concurrency,
            **summarize(measurement),
            **cost(measurement),
        }
        (self.rows if phase.cache in ROW_CACHES else self.extra_rows).append(row)
        detail: dict[str, Any] = {
            **row,
            "requests": len(outcome.latencies_ms),
            "completed": outcome.completed,
            "wall_s": round(measurement.wall, 2),
            "cpu": measurement.cpu.cores if measurement.cpu else {},
            "cpu_seconds": measurement.cpu.seconds if measurement.cpu else {},
            "error_samples": outcome.error_samples,
            "es_heap": harness.es_heap(),
        }
        if outcome.took_ms:
            detail["took_p50_ms"] = common.percentile(outcome.took_ms, 50)
            detail["took_p95_ms"] = common.percentile(outcome.took_ms, 95)
        detail["facets_cached_share"] = outcome.share(
            outcome.facets_cached, outcome.facets_uncached
        )
        detail["hits_cached_share"] = outcome.share(outcome.hits_cached, outcome.hits_uncached)
        detail.update(extra or {})
        self.details.append(detail)
        self._say(phase, concurrency, row, detail)
        return detail

    @staticmethod
    def _say(phase: Phase, c: int, row: dict[str, Any], detail: dict[str, Any]) -> None:
        costs = ", ".join(
            f"{key.removesuffix('_cpu_ms')} {row[key]:.2f}"
            for key in COST_GROUPS
            if row[key] is not None
        )
        hits = detail.get("hits_cached_share")
        common.say(
            f"{phase.label} c={c}: p50 {row['p50_ms']} ms, p95 {row['p95_ms']} ms,"
            f" p99 {row['p99_ms']} ms, {row['rps']} req/s, {row['errors']} errors;"
            f" CPU ms/request: {costs or '-'}"
            + (f"; answers from the cache {hits:.1%}" if hits is not None else "")
        )


# --------------------------------------------------------------------------- the phases


def relevance_check(port: int) -> dict[str, Any]:
    """The first hit of a few queries whose answer is known (exact name first)."""
    client = harness.Client(port)
    found: dict[str, Any] = {}
    try:
        for q, expected in RELEVANCE_CHECKS.items():
            status, body = client.get("/api/search?" + urllib.parse.urlencode({"q": q}))
            hits = json.loads(body).get("hits", []) if status == 200 else []
            first = hits[0]["name"] if hits else None
            found[q] = {"expected": expected, "first": first, "ok": first == expected}
    finally:
        client.close()
    return found


def bump(state: Any, i: int) -> None:
    """Move the index generation on, as the web app sees it: nothing cached is used."""
    from search import freshness

    freshness.bump_generation()


def pg_work(
    searches: list[queries.Query], mode: str, lookups: baselines.Lookups, order: list[int] | None
) -> harness.Work:
    """Position ``i`` runs ``searches[order[i]]`` (or ``searches[i]``) as one statement."""
    used = sorted(set(order)) if order is not None else range(len(searches))
    statements = {r: baselines.build_sql(searches[r], mode, lookups) for r in used}

    def work(pool: Any, i: int) -> tuple[bool, str | None, harness.Info]:
        sql, params = statements[order[i] if order is not None else i]
        conn = pool.getconn()
        try:
            with conn.cursor() as cur:
                cur.execute(sql, params)
                baselines.read_result(cur.fetchall())
        except Exception as exc:
            with contextlib.suppress(Exception):
                conn.rollback()
            return False, f"{type(exc).__name__}: {str(exc).strip()[:200]}", None
        finally:
            pool.putconn(conn)
        return True, None, None

    return work


class Runner:
    """Runs the selected phases at every concurrency level and records them."""

    def __init__(
        self,
        args: argparse.Namespace,
        workload: Workload,
        services: harness.Services,
        recorder: Recorder,
    ) -> None:
        self.args = args
        self.workload = workload
        self.services = services
        self.recorder = recorder
        self.relevance: dict[str, Any] = {}
        self.server = Server(
            args.port,
            args.worker_class,
            args.workers,
            args.threads,
            args.cache_prefix,
            args.index_prefix,
            args.database,
            common.RESULTS / f"{args.output}.gunicorn.log",
            args.app_dir,
        )
        self.last_fill = -float("inf")
        self.engine_warmup: dict[str, Any] = {}

    def selected(self, names: tuple[str, ...]) -> list[str]:
        return [p for p in names if p in self.args.phases]

    def timed(self, load: Load, mix_size: int, meter: CpuMeter) -> Measurement:
        return harness.run_timed(load, mix_size, self.args.duration, self.args.warmup, meter)

    # ------------------------------------------------------------------ portal

    def portal(self) -> None:
        """The portal phases on one web app, after Elasticsearch's JVM was warmed up through
        it (also when only the engine phase is selected); the app's cache namespace is
        deleted afterwards."""
        selected = self.selected(PORTAL_PHASES)
        warm_up = warms_up(self.args.phases, self.args.engine_warmup)
        if self.selected(ENGINE_PHASES) and not warm_up:
            self.recorder.notes.append(warmup.SKIPPED)
        if not selected and not warm_up:
            return
        common.say(f"starting the web app: {self.server.describe()} on port {self.args.port}")
        self.server.start()
        try:
            meter = CpuMeter(self.services, self.server.pid)
            self.check_relevance()
            # First requests of each worker: imports, connections, per-process caches.
            paths = self.workload.suggest_paths[:50] + self.workload.search_paths[:20]
            harness.run_once(self.args.port, paths, self.args.workers * 2)
            if warm_up:
                self.warm_engine(meter)
            for name in selected:
                getattr(self, name)(meter)
        finally:
            self.server.stop()
            self.clean_namespace()
            self.check_log(self.server)

    def warm_engine(self, meter: CpuMeter) -> None:
        """Rounds of the cold mix and the cold autocomplete prefixes through the web app
        (concurrency: the machine's cores) until Elasticsearch's CPU per request settles
        (``bench.search.warmup``: a fresh node costs several times its steady CPU)."""
        paths = self.workload.search_paths + self.workload.suggest_paths
        load = self.http_load(os.cpu_count() or 2, paths, parse=False, before=bump)

        def run_round() -> warmup.Round:
            return warmup.round_of(harness.run_counted(load, len(paths), meter))

        limit = self.args.engine_warmup
        common.say(f"warming Elasticsearch up (no round started after {limit:g} s) ...")
        self.engine_warmup = warmup.warm_up(run_round, limit)
        self.recorder.notes.append(warmup.describe(self.engine_warmup, limit))
        # What the rounds cached (under generations moved on since) must not crowd out, in
        # the capped cache Redis, what the phases cache.
        emptied = self.empty_cache()
        common.say(f"cache namespace emptied after the warm-up: {emptied:,} keys")

    def empty_cache(self) -> int:
        """Delete the benchmark's keys from the cache Redis (how many); the generation, in
        the coordination Redis, is left alone."""
        from search import stores

        return harness.delete_namespace(stores.cache_client(), self.args.cache_prefix)

    def check_log(self, server: Server) -> None:
        """Warnings and errors the web app logged (Elasticsearch or Redis unavailable, the
        cache skipped ...) make its numbers suspect: say so in the report."""
        with contextlib.suppress(OSError):
            lines = [
                line
                for line in server.logfile.read_text(errors="replace").splitlines()
                if '"level": "WARNING"' in line or '"level": "ERROR"' in line
            ]
            if lines:
                where = common.shown(server.logfile)
                self.recorder.notes.append(
                    f"The web app logged {len(lines)} warnings or errors (`{where}`),"
                    f" the first: `{lines[0][:300]}`."
                )

    def check_relevance(self) -> None:
        self.relevance = relevance_check(self.args.port)
        bad = [q for q, r in self.relevance.items() if not r["ok"]]
        if bad:
            self.recorder.notes.append(f"Relevance check failed for: {', '.join(bad)}.")
        common.say(
            "relevance check: "
            + ", ".join(
                f"{q} -> {r['first']}{'' if r['ok'] else ' (WRONG)'}"
                for q, r in self.relevance.items()
            )
        )

    def client(self) -> harness.Client:
        return harness.Client(self.args.port)

    def http_load(self, c: int, paths: list[str], parse: bool, before: Any = None) -> Load:
        return Load(c, self.client, harness.http_work(paths, parse), harness.Client.close, before)

    def replay(self, meter: CpuMeter) -> None:
        phase = Phase("portal", "search", "replay")
        paths = self.workload.stream_paths
        ideal = self.workload.describe_replay()["ideal_hit_ratio"]
        for c in self.args.levels:
            emptied = self.empty_cache()
            common.say(
                f"replay c={c}: {len(paths):,} requests from the stream's start"
                f" (cache namespace emptied: {emptied:,} keys)"
            )
            before = harness.cache_redis_state()
            measurement = harness.run_counted(
                self.http_load(c, paths, parse=True), len(paths), meter
            )
            after = harness.cache_redis_state()
            self.recorder.record(
                phase, c, measurement, replay_extra(measurement, ideal, before, after)
            )

    def fill(self) -> None:
        """Every search of the mix twice, as it would have run before on a warm site: the
        first pass fills the summaries and pages; the second finds them (and Elasticsearch's
        shard request cache)."""
        if time.monotonic() - self.last_fill <= FACET_TTL / 2:
            return
        common.say("warming the caches: every search of the mix, twice ...")
        started = time.monotonic()
        outcomes = [harness.run_once(self.args.port, self.workload.search_paths, 4) for _ in "12"]
        self.last_fill = time.monotonic()
        errors = sum(o.errors for o in outcomes)
        common.say(f"... {self.last_fill - started:.1f} s, {errors} errors")
        if errors:
            samples = [s for o in outcomes for s in o.error_samples][:5]
            self.recorder.notes.append(f"warm-up pass errors: {samples}")

    def warm(self, meter: CpuMeter, phase: Phase = Phase("portal", "search", "warm")) -> None:
        paths = self.workload.search_paths
        for c in self.args.levels:
            self.fill()
            measurement = self.timed(self.http_load(c, paths, parse=True), len(paths), meter)
            self.recorder.record(phase, c, measurement)

    def cold(self, meter: CpuMeter) -> None:
        paths = self.workload.search_paths
        for c in self.args.levels:
            load = self.http_load(c, paths, parse=True, before=bump)
            self.recorder.record(
                Phase("portal", "search", "cold"), c, self.timed(load, len(paths), meter)
            )

    def suggest(self, meter: CpuMeter) -> None:
        """warm: every prefix answered once before (suggestions cached per index
        generation); cold: the generation bumped before every request."""
        paths = self.workload.suggest_paths
        for cache_state in ("warm", "cold"):
            for c in self.args.levels:
                if cache_state == "warm":
                    harness.run_once(self.args.port, paths, 4)
                before = bump if cache_state == "cold" else None
                load = self.http_load(c, paths, parse=False, before=before)
                measurement = self.timed(load, len(paths), meter)
                self.recorder.record(Phase("portal", "suggest", cache_state), c, measurement)

    def warm_counts(self) -> None:
        """``warm`` on a second web app with the page cache off."""
        if "warm_counts" not in self.args.phases:
            return
        server = dataclasses.replace(
            self.server,
            extra_env={"SEARCH_PAGE_CACHE": "0"},
            logfile=common.RESULTS / f"{self.args.output}.counts.gunicorn.log",
            proc=None,
        )
        common.say("starting a second web app with SEARCH_PAGE_CACHE=0")
        server.start()
        try:
            harness.run_once(self.args.port, self.workload.search_paths[:20], self.args.workers * 2)
            self.last_fill = -float("inf")
            self.warm(CpuMeter(self.services, server.pid), Phase("portal", "search", "warm-counts"))
        finally:
            server.stop()
            self.clean_namespace()
            self.check_log(server)

    # ------------------------------------------------------------------ the engine alone

    def engine(self) -> None:
        """Every cold search's first request, straight to Elasticsearch (no web app)."""
        if "engine" not in self.args.phases:
            return
        from search.indices import read_alias

        common.say(f"building the engine phase's {len(self.workload.mix)} request bodies ...")
        requests = engine_bodies(self.workload.mix)
        index_path = f"/{urllib.parse.quote(read_alias())}"
        host, port = harness.elasticsearch_address()
        meter = CpuMeter(self.services)
        for c in self.args.levels:
            client = functools.partial(harness.Client, port, host)
            load = Load(c, client, engine_work(index_path, requests), harness.Client.close)
            measurement = self.timed(load, len(requests), meter)
            self.recorder.record(Phase("elasticsearch", "search", "cold"), c, measurement)

    def clean_namespace(self) -> None:
        from search import stores

        deleted = 0
        for client in (stores.cache_client, stores.coordination):
            with contextlib.suppress(Exception):
                deleted += harness.delete_namespace(client(), self.args.cache_prefix)
        if deleted:
            common.say(
                f"deleted {deleted} keys of the benchmark's namespace {self.args.cache_prefix!r}"
            )

    # ------------------------------------------------------------------ PostgreSQL

    def postgres(self, conninfo: dict[str, Any], lookups: baselines.Lookups | None) -> None:
        """Each selected baseline on the mix, then on the replay stream."""
        if lookups is None:
            return
        meter = CpuMeter(self.services)
        for mode in ("ilike", "fts"):
            if f"pg_{mode}" not in self.args.phases:
                continue
            mix = pg_work(self.workload.mix, mode, lookups, None)
            self.pg_levels(conninfo, Phase(f"pg_{mode}", "search", "none"), meter, mix, None)
            if self.workload.stream:
                stream = self.workload.stream[: self.args.pg_replay_requests]
                work = pg_work(self.workload.distinct, mode, lookups, stream)
                phase = Phase(f"pg_{mode}", "search", "replay")
                self.pg_levels(conninfo, phase, meter, work, len(stream))

    def pg_levels(
        self,
        conninfo: dict[str, Any],
        phase: Phase,
        meter: CpuMeter,
        work: harness.Work,
        count: int | None,
    ) -> None:
        """``work`` at every level: timed over the mix, or ``count`` positions in order."""
        from psycopg2.pool import ThreadedConnectionPool

        for c in self.args.levels:
            pool = ThreadedConnectionPool(
                c,
                c,
                dbname=self.args.pg_db,
                connect_timeout=5,
                options="-c statement_timeout=30000",
                **conninfo,
            )
            try:
                load = Load(c, lambda p=pool: p, work)
                if count is None:
                    measurement = self.timed(load, len(self.workload.mix), meter)
                else:
                    common.say(f"{phase.label} c={c}: {count:,} requests from the stream's start")
                    measurement = harness.run_counted(load, count, meter)
                self.recorder.record(phase, c, measurement)
            finally:
                pool.closeall()


def engine_bodies(mix: list[queries.Query]) -> list[tuple[str, bytes]]:
    """What a cold search of each query sends first, as the web app builds it
    (``Plan.summary_bodies``): the endpoint (``_search``, or ``_msearch`` for a browse
    ranked by relevance, whose hits and counts go together) and its payload, with the
    service's request-cache flags (``search.query.request_cache``)."""
    from django.http import QueryDict

    from search import query, service

    requests = []
    for q in mix:
        params = service.parse(QueryDict(urllib.parse.urlsplit(q.path()).query))
        bodies = service.plan(params).summary_bodies("exact")
        if len(bodies) == 1:
            cache = str(query.request_cache(bodies[0])).lower()
            requests.append((f"_search?request_cache={cache}", json.dumps(bodies[0]).encode()))
        else:
            lines = [json.dumps(part) for part in query.msearch_searches(bodies)]
            requests.append(("_msearch", ("\n".join(lines) + "\n").encode()))
    return requests


def engine_work(index_path: str, requests: list[tuple[str, bytes]]) -> harness.Work:
    """POST ``requests[i]`` to its endpoint under ``index_path``; Elasticsearch's ``took``
    is kept."""

    def work(client: harness.Client, i: int) -> tuple[bool, str | None, harness.Info]:
        endpoint, payload = requests[i]
        kind = "application/x-ndjson" if endpoint == "_msearch" else "application/json"
        status, answer = client.post(f"{index_path}/{endpoint}", payload, kind)
        if status != 200:
            return False, f"HTTP {status} from Elasticsearch: {answer[:200]!r}", None
        decoded = json.loads(answer)
        failed = [r for r in decoded.get("responses", ()) if "error" in r]
        if failed:
            return False, f"a search of an msearch failed: {failed[0]!r:.200}", None
        return True, None, {"took_ms": decoded.get("took")}

    return work


def replay_extra(
    measurement: Measurement, ideal: float | None, before: dict[str, Any], after: dict[str, Any]
) -> dict[str, Any]:
    """The cache hit ratio the replay reached (whole stream, second half), the ideal one,
    and what the cache Redis went through."""
    outcome = measurement.outcome
    half = outcome.completed // 2
    second = [cached for position, cached in outcome.cached_at.items() if position >= half]
    evicted = None
    if before and after:
        evicted = int(after["evicted_keys"] or 0) - int(before["evicted_keys"] or 0)
    return {
        "hit_ratio": outcome.share(outcome.hits_cached, outcome.hits_uncached),
        "hit_ratio_second_half": round(sum(second) / len(second), 3) if second else None,
        "ideal_hit_ratio": ideal,
        "cache_evicted_keys": evicted,
        "cache_used_memory_mb": after.get("used_memory_mb"),
        "cache_maxmemory_mb": after.get("maxmemory_mb"),
    }


def prepare_pg(
    conninfo: dict[str, Any], args: argparse.Namespace
) -> tuple[dict[str, Any], baselines.Lookups | None]:
    """The baselines' copy of the catalog (built or reused) and its lookups."""
    if not {"pg_ilike", "pg_fts"} & set(args.phases):
        return {"database": args.pg_db}, None
    info = baselines.ensure_copy(
        conninfo, args.database, args.pg_db, rebuild=args.rebuild_pg, log=common.say
    )
    with contextlib.closing(baselines.connect(conninfo, args.pg_db)) as conn:
        return info, baselines.load_lookups(conn)
