"""Search benchmark: the portal's API against PostgreSQL doing the same job.

    .venv/bin/python -m bench.search [--duration 20] [--concurrency 1,8,32] [--quick]

1. Reads the catalog (development database ``portal``, read-only) and derives a
   deterministic mix of realistic searches and autocomplete prefixes (``bench.search_queries``).
2. Starts the web app with gunicorn on 127.0.0.1:8001 with production settings
   (``DJANGO_DEBUG=0``), against the development index (prefix ``portal``), and its own
   facet-cache namespace in Redis (``CACHE_KEY_PREFIX=benchsearch`` by default, so the
   benchmark neither reads nor invalidates the development cache; deleted at the end).
3. For each concurrency, for a fixed duration (after a short unrecorded warm-up), a closed
   loop of threads with keep-alive HTTP connections measures:

   * ``portal/search/warm``: ``/api/search`` after the whole mix ran twice (summaries and
     pages of hits cached);
   * ``portal/search/warm-counts``: the same on a second web app with
     ``SEARCH_PAGE_CACHE=0`` (counts cached, every page of hits from Elasticsearch); its
     rows are in ``extra_rows`` (the ``rows`` schema has no such cache value);
   * ``portal/search/cold``: ``/api/search`` with the index generation bumped in Redis
     before every request (``search.freshness.bump_generation()``), so nothing cached is
     used;
   * ``portal/suggest/warm`` and ``/cold``: ``/api/suggest`` with prefixes of package
     names, after every prefix was asked once (answers cached per index generation), and
     with the generation bumped before every request (every answer from Elasticsearch);
   * ``pg_ilike`` and ``pg_fts``: the same searches (text, filters, sort, page, total and
     every facet the portal shows) in PostgreSQL, through psycopg2 connection pools in this
     process, against a copy of the catalog tables in ``bench_pg``
     (``bench.search_baselines``).
4. Writes ``bench/results/search.json`` (``rows``: system, endpoint, cache, concurrency,
   p50_ms, p95_ms, p99_ms, rps, errors), ``search.md`` and ``search.png`` (when matplotlib
   is importable), and prints the portal-to-PostgreSQL throughput ratios and the targets.

Everything runs on the same machine: the load generator, gunicorn, Elasticsearch, Redis and
PostgreSQL share its cores, and the report records how much CPU each used during each
phase (and how much went to other processes) so the numbers can be read honestly.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import http.client
import json
import math
import os
import platform
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import search_baselines as baselines
from bench import search_queries as queries

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
HOST = "127.0.0.1"
TARGET_WARM_P95_MS = 50.0  # /api/search, warm facet cache, concurrency 8
TARGET_SUGGEST_P95_MS = 25.0  # /api/suggest, concurrency 8
TARGET_RATIO = 5.0  # portal warm rps / best PostgreSQL baseline rps
FACET_TTL = 300  # search.facet_cache.TTL: re-run the warm-up pass before it can expire
GENERATION_KEY = "search:generation"  # search.freshness.GENERATION_KEY


def say(message: str) -> None:
    print(f"[bench.search] {message}", file=sys.stderr, flush=True)


def percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile (p in 0..100)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(1, math.ceil(p / 100 * len(ordered))) - 1]


# --------------------------------------------------------------------------- environment


def connection_settings() -> dict[str, Any]:
    from config import env

    c = env.connections()
    for host in [
        c.postgres_host,
        *[urllib.parse.urlsplit(h).hostname for h in c.elasticsearch_hosts],
    ]:
        if host not in {"127.0.0.1", "localhost"}:
            raise SystemExit(f"refusing to run against a non-local service ({host!r})")
    return {
        "host": c.postgres_host,
        "port": c.postgres_port,
        "user": c.postgres_user,
        "password": c.postgres_password,
    }


def redis_client(cache_prefix: str) -> Any:
    """A Redis client on the cache database the web app uses (``REDIS_URL``)."""
    import redis

    from config import env

    url = env.connections().redis_url
    if urllib.parse.urlsplit(url).hostname not in {"127.0.0.1", "localhost"}:
        raise SystemExit(f"refusing to use a non-local Redis ({url})")
    return redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)


def generation_key(cache_prefix: str) -> str:
    """The Redis key Django's RedisCache uses for ``search:generation``: KEY_PREFIX, cache
    VERSION (1) and the key, joined by colons (``django.core.cache.backends.base``)."""
    return f"{cache_prefix}:1:{GENERATION_KEY}"


def port_in_use(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((HOST, port)) == 0


# --------------------------------------------------------------------------- CPU meter


CLK_TCK = os.sysconf("SC_CLK_TCK")


def _proc_jiffies(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime
    except (OSError, IndexError, ValueError):
        return 0


def _proc_list() -> list[tuple[int, int, str]]:
    """(pid, ppid, command line) of every process."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, IndexError, ValueError):
            continue
        found.append((int(entry.name), ppid, cmd))
    return found


def _machine_busy_jiffies() -> tuple[int, int]:
    parts = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = parts[3] + parts[4]
    return sum(parts) - idle, sum(parts)


class CpuMeter:
    """CPU used (in cores) during a phase by the load generator, the web app, Elasticsearch,
    PostgreSQL, Redis, and everything else on the machine."""

    def __init__(self, gunicorn_pid: int | None) -> None:
        self.gunicorn_pid = gunicorn_pid

    def _groups(self) -> dict[str, list[int]]:
        procs = _proc_list()
        groups: dict[str, list[int]] = {
            "load_generator": [os.getpid()],
            "web_app": [],
            "elasticsearch": [],
            "postgres": [],
            "redis": [],
        }
        if self.gunicorn_pid:
            groups["web_app"] = [self.gunicorn_pid] + [
                p for p, pp, _ in procs if pp == self.gunicorn_pid
            ]
        for pid, _, cmd in procs:
            if "org.elasticsearch.bootstrap.Elasticsearch" in cmd:
                groups["elasticsearch"].append(pid)
            elif cmd.startswith("postgres"):
                groups["postgres"].append(pid)
            elif cmd.startswith("/usr/bin/redis-server"):
                groups["redis"].append(pid)
        return groups

    def start(self) -> None:
        self.t0 = time.monotonic()
        self.groups = self._groups()
        self.j0 = {pid: _proc_jiffies(pid) for pids in self.groups.values() for pid in pids}
        self.busy0, self.total0 = _machine_busy_jiffies()
        self.load0 = os.getloadavg()[0]

    def stop(self) -> dict[str, float]:
        wall = max(time.monotonic() - self.t0, 1e-6)
        busy1, _ = _machine_busy_jiffies()
        # Processes started during the phase (new PostgreSQL backends) count too.
        now = self._groups()
        usage: dict[str, float] = {}
        for name, pids in now.items():
            jiffies = sum(_proc_jiffies(pid) - self.j0.get(pid, 0) for pid in set(pids))
            usage[name] = round(jiffies / CLK_TCK / wall, 2)
        usage["machine_busy"] = round((busy1 - self.busy0) / CLK_TCK / wall, 2)
        usage["others"] = round(
            max(
                0.0, usage["machine_busy"] - sum(v for k, v in usage.items() if k != "machine_busy")
            ),
            2,
        )
        usage["loadavg_1m_before"] = round(self.load0, 2)
        usage["loadavg_1m_after"] = round(os.getloadavg()[0], 2)
        return usage


# --------------------------------------------------------------------------- the web app


@dataclass
class Server:
    port: int
    worker_class: str
    workers: int
    threads: int
    cache_prefix: str
    index_prefix: str
    source_db: str
    logfile: Path
    app_dir: Path = ROOT
    extra_env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        cmd = [
            sys.executable,
            "-m",
            "gunicorn",
            "config.wsgi",
            "--bind",
            f"{HOST}:{self.port}",
            "--workers",
            str(self.workers),
            "--worker-class",
            self.worker_class,
            "--timeout",
            "60",
            "--keep-alive",
            "5",
            "--preload",
        ]
        if self.worker_class == "gthread":
            cmd += ["--threads", str(self.threads)]
        return cmd

    def env(self) -> dict[str, str]:
        environment = dict(os.environ)
        environment.update(
            DJANGO_SETTINGS_MODULE="config.settings",
            DJANGO_DEBUG="0",
            DJANGO_SECRET_KEY="bench",
            DJANGO_ALLOWED_HOSTS=HOST,
            CACHE_KEY_PREFIX=self.cache_prefix,
            SEARCH_INDEX_PREFIX=self.index_prefix,
            POSTGRES_DB=self.source_db,
            # One client address sends every request: keep the rate limiter's code path (its
            # Redis round trips) but with a limit the benchmark never reaches.
            SEARCH_API_RATE_LIMIT="1000000000/60",
            LOG_LEVEL="WARNING",
            PYTHONUNBUFFERED="1",
            # gunicorn.conf.py (the production settings) applies, with the sizes given on
            # the command line; no access log (its cost is the logging setup's, not search's).
            WEB_ACCESS_LOG="",
        )
        environment.update(self.extra_env)
        return environment

    def start(self, timeout: float = 90) -> None:
        if port_in_use(self.port):
            raise SystemExit(
                f"{HOST}:{self.port} is already in use; stop what runs there or pass --port"
            )
        self.logfile.parent.mkdir(parents=True, exist_ok=True)
        with self.logfile.open("wb") as log:
            self.proc = subprocess.Popen(
                self.command(),
                cwd=self.app_dir,
                env=self.env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise SystemExit(f"gunicorn exited ({self.proc.returncode}); see {self.logfile}")
            with contextlib.suppress(OSError, http.client.HTTPException):
                conn = http.client.HTTPConnection(HOST, self.port, timeout=10)
                conn.request("GET", "/api/suggest?q=a")
                response = conn.getresponse()
                response.read()
                conn.close()
                if response.status == 200:
                    break
                if response.status in (400, 500):
                    self.stop()
                    raise SystemExit(f"the web app answered {response.status}; see {self.logfile}")
            if time.monotonic() > deadline:
                self.stop()
                raise SystemExit(f"gunicorn did not answer in {timeout:.0f}s; see {self.logfile}")
            time.sleep(0.3)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.kill(self.proc.pid, signal.SIGTERM)  # graceful: gunicorn stops its workers
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def describe(self) -> str:
        threads = f" x {self.threads} threads" if self.worker_class == "gthread" else ""
        return f"gunicorn {self.worker_class}, {self.workers} workers{threads}, --preload"


# --------------------------------------------------------------------------- load generator


@dataclass
class Outcome:
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    took_ms: list[float] = field(default_factory=list)
    facets_cached: int = 0
    facets_uncached: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def error(self, message: str) -> None:
        with self.lock:
            self.errors += 1
            if len(self.error_samples) < 5:
                self.error_samples.append(message[:300])


class Client:
    """One load-generator thread's state: an HTTP keep-alive connection (reconnects when the
    server closes it), optionally a Redis connection, or a PostgreSQL pool."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conn = http.client.HTTPConnection(HOST, port, timeout=60)

    def get(self, path: str) -> tuple[int, bytes]:
        try:
            self.conn.request("GET", path)
            response = self.conn.getresponse()
            return response.status, response.read()
        except (OSError, http.client.HTTPException):
            self.conn.close()
            raise

    def close(self) -> None:
        self.conn.close()


Work = Callable[[Any, int], tuple[bool, str | None, dict[str, Any] | None]]


def run_load(
    concurrency: int,
    duration: float,
    make_state: Callable[[], Any],
    work: Work,
    mix_size: int,
    warmup: float,
    close_state: Callable[[Any], None] = lambda s: None,
    before: Callable[[Any, int], None] | None = None,
) -> tuple[Outcome, float]:
    """A closed loop: ``concurrency`` threads, each sending the next request of the mix as
    soon as the previous one answered. Requests finished during the first ``warmup``
    seconds are not recorded; the measured window is ``duration`` seconds after it.
    ``before`` runs before each request, outside the measured time (the cold-cache bump).
    Returns the outcome and the measured wall time."""
    outcome = Outcome()
    start_gate = threading.Barrier(concurrency + 1)
    times: dict[str, float] = {}
    stride = max(1, mix_size // concurrency)

    def loop(thread: int) -> None:
        state = make_state()
        i = (thread * stride) % mix_size
        start_gate.wait()
        try:
            while True:
                now = time.perf_counter()
                if now >= times["end"]:
                    break
                t0 = time.perf_counter()
                try:
                    if before is not None:
                        before(state, i)
                        t0 = time.perf_counter()
                    ok, message, info = work(state, i)
                except Exception as exc:
                    ok, message, info = False, f"{type(exc).__name__}: {exc}", None
                t1 = time.perf_counter()
                if t0 >= times["measure"] and t1 <= times["end"]:
                    if ok:
                        with outcome.lock:
                            outcome.latencies_ms.append((t1 - t0) * 1000)
                            if info:
                                if info.get("took_ms") is not None:
                                    outcome.took_ms.append(info["took_ms"])
                                if info.get("facets_cached") is True:
                                    outcome.facets_cached += 1
                                elif info.get("facets_cached") is False:
                                    outcome.facets_uncached += 1
                    else:
                        outcome.error(message or "error")
                i = (i + 1) % mix_size
        finally:
            close_state(state)

    threads = [threading.Thread(target=loop, args=(n,), daemon=True) for n in range(concurrency)]
    for t in threads:
        t.start()
    begin = time.perf_counter()
    times["measure"] = begin + warmup
    times["end"] = begin + warmup + duration
    start_gate.wait()
    for t in threads:
        t.join()
    return outcome, duration


def summarize(outcome: Outcome, wall: float) -> dict[str, Any]:
    lat = outcome.latencies_ms

    def r(v: float | None) -> float | None:
        return None if v is None else round(v, 2)

    return {
        "p50_ms": r(percentile(lat, 50)),
        "p95_ms": r(percentile(lat, 95)),
        "p99_ms": r(percentile(lat, 99)),
        "rps": round(len(lat) / wall, 1),
        "errors": outcome.errors,
    }


# --------------------------------------------------------------------------- the phases


def http_work(paths: list[str], parse: bool) -> Work:
    def work(client: Client, i: int) -> tuple[bool, str | None, dict[str, Any] | None]:
        status, body = client.get(paths[i])
        if status != 200:
            return False, f"HTTP {status} for {paths[i]}: {body[:200]!r}", None
        if not parse:
            return True, None, None
        data = json.loads(body)
        return (
            True,
            None,
            {"took_ms": data.get("took_ms"), "facets_cached": data.get("facets_cached")},
        )

    return work


def pg_work(mix: list[queries.Query], mode: str, lookups: baselines.Lookups) -> Work:
    statements = [baselines.build_sql(q, mode, lookups) for q in mix]

    def work(pool: Any, i: int) -> tuple[bool, str | None, dict[str, Any] | None]:
        conn = pool.getconn()
        try:
            with conn.cursor() as cur:
                sql, params = statements[i]
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


@dataclass
class Phase:
    system: str
    endpoint: str
    cache: str


def prefill(port: int, paths: list[str], concurrency: int = 4) -> dict[str, Any]:
    """Run every search of the mix twice, as it would have run before on a warm site: the
    first pass fills the facet cache, the second (facets cached, so without aggregations)
    Elasticsearch's shard request cache, which the service uses for such requests."""
    t0 = time.monotonic()
    first, _ = run_load_once(port, paths, concurrency)
    second, _ = run_load_once(port, paths, concurrency)
    return {
        "seconds": round(time.monotonic() - t0, 1),
        "errors": first.errors + second.errors,
        "error_samples": (first.error_samples + second.error_samples)[:5],
    }


def run_load_once(port: int, paths: list[str], concurrency: int) -> tuple[Outcome, float]:
    outcome = Outcome()
    lock = threading.Lock()
    pending = list(range(len(paths)))

    def loop() -> None:
        client = Client(port)
        try:
            while True:
                with lock:
                    if not pending:
                        return
                    i = pending.pop()
                try:
                    status, body = client.get(paths[i])
                    if status != 200:
                        outcome.error(f"HTTP {status} for {paths[i]}: {body[:200]!r}")
                except Exception as exc:
                    outcome.error(f"{type(exc).__name__}: {exc}")
        finally:
            client.close()

    t0 = time.monotonic()
    threads = [threading.Thread(target=loop, daemon=True) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return outcome, time.monotonic() - t0


RELEVANCE_CHECKS = {  # query -> the package that must come first
    "vim": "vim",
    "git": "git",
    "firefx": "firefox-esr",
    "libssl3": "libssl3",
    "python3-django": "python3-django",
}


def relevance_check(port: int) -> dict[str, Any]:
    """The first hit of a few queries whose answer is known (exact name first)."""
    client = Client(port)
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


def wait_for_quiet(max_wait: float, busy_below: float) -> dict[str, Any]:
    """Wait (at most ``max_wait`` s) until the machine's CPU use, over 5 s, is below
    ``busy_below`` cores: other people's tests on a shared machine distort every number."""
    deadline = time.monotonic() + max_wait
    while True:
        busy0, _ = _machine_busy_jiffies()
        time.sleep(5)
        busy1, _ = _machine_busy_jiffies()
        busy = (busy1 - busy0) / CLK_TCK / 5
        if busy < busy_below or time.monotonic() >= deadline:
            return {"busy_cores": round(busy, 2), "quiet": busy < busy_below}
        say(f"the machine is busy ({busy:.2f} cores in use by others); waiting ...")


# --------------------------------------------------------------------------- reporting


def write_outputs(report: dict[str, Any], stem: str) -> list[Path]:
    RESULTS.mkdir(parents=True, exist_ok=True)
    written = []
    json_path = RESULTS / f"{stem}.json"
    json_path.write_text(json.dumps(report, indent=2) + "\n")
    written.append(json_path)
    md_path = RESULTS / f"{stem}.md"
    md_path.write_text(markdown(report))
    written.append(md_path)
    png = chart(report, RESULTS / f"{stem}.png")
    if png:
        written.append(png)
    return written


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.1f}"
    return f"{v:,}" if isinstance(v, int) else str(v)


def table(headers: list[str], rows: list[list[Any]]) -> str:
    cells = [headers] + [[_fmt(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in cells
    ]
    lines.insert(1, "| " + " | ".join("-" * w for w in widths) + " |")
    return "\n".join(lines)


def ratios(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for c in sorted({r["concurrency"] for r in rows}):
        warm = next(
            (
                r
                for r in rows
                if r["system"] == "portal"
                and r["endpoint"] == "search"
                and r["cache"] == "warm"
                and r["concurrency"] == c
            ),
            None,
        )
        pg = [r for r in rows if r["system"].startswith("pg_") and r["concurrency"] == c]
        if not warm or not pg:
            continue
        best = max(pg, key=lambda r: r["rps"])
        out.append(
            {
                "concurrency": c,
                "portal_warm_rps": warm["rps"],
                "best_pg": best["system"],
                "best_pg_rps": best["rps"],
                "ratio": round(warm["rps"] / best["rps"], 1) if best["rps"] else None,
            }
        )
    return out


def targets(rows: list[dict[str, Any]], ratio_rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    def find(endpoint: str, cache: str, c: int) -> dict[str, Any] | None:
        return next(
            (
                r
                for r in rows
                if r["system"] == "portal"
                and r["endpoint"] == endpoint
                and r["cache"] == cache
                and r["concurrency"] == c
            ),
            None,
        )

    out = []
    warm8 = find("search", "warm", 8)
    if warm8 and warm8["p95_ms"] is not None:
        out.append(
            {
                "target": f"search p95 <= {TARGET_WARM_P95_MS:.0f} ms (warm, c=8)",
                "measured": f"{warm8['p95_ms']:.1f} ms",
                "met": warm8["p95_ms"] <= TARGET_WARM_P95_MS,
            }
        )
    for cache_state in ("warm", "cold"):
        sug8 = find("suggest", cache_state, 8)
        if sug8 and sug8["p95_ms"] is not None:
            out.append(
                {
                    "target": f"suggest p95 <= {TARGET_SUGGEST_P95_MS:.0f} ms ({cache_state}, c=8)",
                    "measured": f"{sug8['p95_ms']:.1f} ms",
                    "met": sug8["p95_ms"] <= TARGET_SUGGEST_P95_MS,
                }
            )
    for r in ratio_rows:
        if r["ratio"] is not None:
            out.append(
                {
                    "target": f">= {TARGET_RATIO:.0f}x best PG throughput (c={r['concurrency']})",
                    "measured": f"{r['ratio']:.1f}x ({r['best_pg']})",
                    "met": r["ratio"] >= TARGET_RATIO,
                }
            )
    return out


PHASES = ("warm", "warm_counts", "cold", "suggest", "pg_ilike", "pg_fts")
RESULT_COLUMNS = ["system", "endpoint", "cache", "concurrency", "p50_ms", "p95_ms", "p99_ms"]


def results_table(rows: list[dict[str, Any]]) -> str:
    headers = ["system", "endpoint", "cache", "concurrency", "p50 ms", "p95 ms", "p99 ms"]
    return table(
        [*headers, "req/s", "errors"],
        [[r[k] for k in RESULT_COLUMNS] + [r["rps"], r["errors"]] for r in rows],
    )


def markdown(report: dict[str, Any]) -> str:
    rows = report["rows"]
    meta = report["meta"]
    lines = [
        "# Search benchmark",
        "",
        f"Run {meta['finished_at']} on {meta['machine']['cpus']} CPUs"
        f" ({meta['machine']['platform']}), {meta['duration_s']:.0f} s per measurement"
        f" after {meta['warmup_s']:.0f} s of warm-up, closed loop"
        f" (`.venv/bin/python -m bench.search {meta['argv']}`).",
        "",
        f"* **portal**: `/api/search` and `/api/suggest` of the web app ({meta['server']},"
        " `DJANGO_DEBUG=0`) on Elasticsearch (index "
        f"`{meta['index']}`, {meta['documents']:,} documents). *warm*: every search of the"
        " mix ran twice before, so its summary (facet counts, total) and its page of hits"
        " come from the Redis cache (`SEARCH_PAGE_CACHE`, on by default), as for repeated"
        " searches on a live site between two index writes; *warm-counts* (table below):"
        " the same with the page cache off, so the counts come from the cache and every page"
        " of hits from Elasticsearch (its shard request cache skips the query phase;"
        " fetching and highlighting still run); *cold*: the index generation is bumped in"
        " Redis before every request, so nothing cached is used: every request computes its"
        " facet counts, total and hits. Autocomplete: *warm* after every prefix was asked"
        " once (answers kept per index generation), *cold* with the generation bumped before"
        " every request.",
        "* **pg_ilike**: `name/summary/description ILIKE '%word%'` for each word (pg_trgm GIN"
        " indexes), relevance = `reverse_dependency_count`; **pg_fts**: a weighted `tsvector`"
        " (GIN), `websearch_to_tsquery('english')`, `ts_rank`. Both compute the same page of"
        " hits, total and disjunctive facet counts (section, priority, architecture,"
        " maintainer, size ranges, the 8 most used tag facets and any selected one) in one"
        f" statement, through psycopg2 pools in the load generator, on a copy of the catalog"
        f" (`{meta['pg']['database']}`).",
        f"* Mix: {meta['mix']['queries']} searches ({_kinds(meta['mix'])}),"
        f" {meta['mix']['with_filters']} with filters, {meta['mix']['multi_word']} of 2-3"
        f" words; {meta['suggest_prefixes']} autocomplete prefixes.",
        "",
        "## Results",
        "",
        results_table(rows),
        *(
            [
                "",
                "Warm with the page cache off (*warm-counts*: facet counts and totals from the"
                " cache, every page of hits from Elasticsearch):",
                "",
                results_table(report["extra_rows"]),
            ]
            if report.get("extra_rows")
            else []
        ),
        "",
        "## Portal throughput vs the best PostgreSQL baseline",
        "",
        table(
            ["concurrency", "portal warm req/s", "best PG", "PG req/s", "ratio"],
            [
                [
                    r["concurrency"],
                    r["portal_warm_rps"],
                    r["best_pg"],
                    r["best_pg_rps"],
                    f"{r['ratio']}x" if r["ratio"] is not None else "-",
                ]
                for r in report["ratios"]
            ],
        ),
        "",
        "## Targets",
        "",
        table(
            ["target", "measured", "met"],
            [
                [t["target"], t["measured"], "yes" if t["met"] else "**no**"]
                for t in report["targets"]
            ],
        ),
        "",
        "## Where the time and the CPU went",
        "",
        "Elasticsearch `took` (from the API responses) against the whole request, and the CPU"
        " (in cores, out of the machine's"
        f" {meta['machine']['cpus']}) each part used during the measurement. ES and PG are"
        " the whole servers (they also served whatever else ran at the time); *others* is"
        " every other process (other people's tests and benchmarks on a shared machine).",
        "",
        table(
            [
                "phase",
                "c",
                "p50 ms",
                "ES took p50",
                "ES took p95",
                "facets cached",
                "load gen",
                "web app",
                "ES",
                "PG",
                "Redis",
                "others",
                "load avg",
            ],
            [
                [
                    f"{d['system']}/{d['endpoint']}/{d['cache']}",
                    d["concurrency"],
                    d["p50_ms"],
                    d.get("took_p50_ms"),
                    d.get("took_p95_ms"),
                    d.get("facets_cached_share"),
                    *(
                        f"{d['cpu'][k]:.2f}"
                        for k in (
                            "load_generator",
                            "web_app",
                            "elasticsearch",
                            "postgres",
                            "redis",
                            "others",
                        )
                    ),
                    f"{d['cpu']['loadavg_1m_after']:.1f}",
                ]
                for d in report["details"]
            ],
        ),
        "",
    ]
    errors = [d for d in report["details"] if d.get("error_samples")]
    if errors:
        lines += ["## Errors", ""]
        for d in errors:
            lines.append(
                f"* {d['system']}/{d['endpoint']}/{d['cache']} c={d['concurrency']}:"
                f" {d['errors']} errors, e.g. `{d['error_samples'][0]}`"
            )
        lines.append("")
    if report.get("comparison"):
        cmp = report["comparison"]
        lines += [
            "## Before and after",
            "",
            f"Before: `{cmp['before_file']}` (run {cmp['before_run']},"
            f" web app from `{cmp['before_app_dir']}`).",
            "",
            table(
                [
                    "system/endpoint/cache",
                    "c",
                    "p50 before",
                    "p50 after",
                    "p95 before",
                    "p95 after",
                    "req/s before",
                    "req/s after",
                ],
                [
                    [
                        r["phase"],
                        r["concurrency"],
                        r["before"]["p50_ms"],
                        r["after"]["p50_ms"],
                        r["before"]["p95_ms"],
                        r["after"]["p95_ms"],
                        r["before"]["rps"],
                        r["after"]["rps"],
                    ]
                    for r in cmp["rows"]
                ],
            ),
            "",
        ]
    if report.get("notes"):
        lines += ["## Notes", ""] + [f"* {n}" for n in report["notes"]] + [""]
    return "\n".join(lines)


def compare(before_path: Path, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Pair this run's rows with those of an earlier run (same system/endpoint/cache/c)."""
    before = json.loads(before_path.read_text())
    index = {(r["system"], r["endpoint"], r["cache"], r["concurrency"]): r for r in before["rows"]}
    paired = []
    for r in rows:
        old = index.get((r["system"], r["endpoint"], r["cache"], r["concurrency"]))
        if old:
            paired.append(
                {
                    "phase": f"{r['system']}/{r['endpoint']}/{r['cache']}",
                    "concurrency": r["concurrency"],
                    "before": {k: old[k] for k in ("p50_ms", "p95_ms", "p99_ms", "rps", "errors")},
                    "after": {k: r[k] for k in ("p50_ms", "p95_ms", "p99_ms", "rps", "errors")},
                }
            )
    meta = before.get("meta", {})
    return {
        "before_file": str(before_path),
        "before_run": meta.get("finished_at"),
        "before_app_dir": meta.get("app_dir"),
        "rows": paired,
    }


def _kinds(mix: dict[str, Any]) -> str:
    return ", ".join(f"{n} {k}" for k, n in mix["kinds"].items())


def chart(report: dict[str, Any], path: Path) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        say(
            "matplotlib is not importable: skipping the PNG chart"
            " (install it into the venv to get bench/results/search.png)"
        )
        return None
    rows = report["rows"] + report.get("extra_rows", [])
    series: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        label = (
            r["system"] + "/" + r["endpoint"] + ("" if r["cache"] == "none" else f" ({r['cache']})")
        )
        series.setdefault(label, []).append(r)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.8))
    for label, points in series.items():
        points.sort(key=lambda r: r["concurrency"])
        xs = [p["concurrency"] for p in points]
        ax1.plot(xs, [p["rps"] for p in points], marker="o", label=label)
        ax2.plot(xs, [p["p95_ms"] or float("nan") for p in points], marker="o", label=label)
    for ax in (ax1, ax2):
        ax.set_xscale("log", base=2)
        ax.set_xticks(sorted({r["concurrency"] for r in rows}))
        ax.get_xaxis().set_major_formatter(matplotlib.ticker.ScalarFormatter())
        ax.set_xlabel("concurrent clients")
        ax.grid(True, which="both", alpha=0.3)
    for ax in (ax1, ax2):
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_formatter(
            matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}" if f"{v:g}"[0] in "25" else "")
        )
    ax1.set_ylabel("requests/s (log)")
    ax1.set_title("Throughput")
    ax2.set_ylabel("p95 latency, ms (log)")
    ax2.set_title("p95 latency")
    ax2.axhline(TARGET_WARM_P95_MS, color="grey", linestyle="--", linewidth=0.8)
    ax1.legend(fontsize=8)
    fig.suptitle(
        f"Package search: portal (Elasticsearch) vs PostgreSQL — "
        f"{report['meta']['machine']['cpus']} CPUs, {report['meta']['duration_s']:.0f} s"
        " per point"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    cpus = os.cpu_count() or 2
    parser = argparse.ArgumentParser(
        prog="python -m bench.search",
        description="Benchmark the portal's search API (warm and cold facet cache, "
        "autocomplete) against PostgreSQL ILIKE and full-text baselines doing the same job.",
    )
    parser.add_argument(
        "--duration",
        type=float,
        default=20.0,
        help="seconds measured per system and concurrency (default 20)",
    )
    parser.add_argument(
        "--warmup",
        type=float,
        default=None,
        help="unrecorded seconds before each measurement (default: duration/10, at least 1)",
    )
    parser.add_argument(
        "--concurrency",
        default="1,8,32",
        help="comma-separated numbers of concurrent clients (default 1,8,32)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="5 s per measurement, 300 searches, 200 prefixes"
    )
    parser.add_argument(
        "--only",
        default=",".join(PHASES),
        help=f"phases to run (default: all of {','.join(PHASES)};"
        " warm_counts is warm with the page cache off, on a second web app)",
    )
    parser.add_argument("--queries", type=int, default=600, help="searches in the mix")
    parser.add_argument("--prefixes", type=int, default=500, help="autocomplete prefixes")
    parser.add_argument("--seed", type=int, default=20261121)
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
        "--source-db",
        default=os.environ.get("POSTGRES_DB") or "portal",
        help="the catalog database, only read (default: portal)",
    )
    parser.add_argument(
        "--index-prefix",
        default=os.environ.get("SEARCH_INDEX_PREFIX") or "portal",
        help="the search index prefix the web app uses",
    )
    parser.add_argument(
        "--pg-db",
        default="bench_pg",
        help="database for the PostgreSQL baselines' copy (default bench_pg)",
    )
    parser.add_argument(
        "--rebuild-pg",
        action="store_true",
        help="rebuild the baseline copy even if it looks current",
    )
    parser.add_argument(
        "--cache-prefix",
        default="benchsearch",
        help="the web app's CACHE_KEY_PREFIX during the benchmark (default:"
        " its own namespace, deleted at the end)",
    )
    parser.add_argument(
        "--app-dir",
        default=str(ROOT),
        help="run the web app from this checkout (default: this one), e.g. to compare"
        " before and after a change",
    )
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
        "--output", default="search", help="results file stem in bench/results (default: search)"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.duration = 5.0
        args.queries = min(args.queries, 300)
        args.prefixes = min(args.prefixes, 200)
    if args.warmup is None:
        args.warmup = max(1.0, args.duration / 10)
    try:
        args.levels = [int(x) for x in args.concurrency.split(",") if x.strip()]
    except ValueError:
        parser.error("--concurrency takes comma-separated integers, e.g. 1,8,32")
    if not args.levels or min(args.levels) < 1:
        parser.error("--concurrency needs positive integers")
    args.phases = [p.strip() for p in args.only.split(",") if p.strip()]
    unknown = set(args.phases) - set(PHASES)
    if unknown:
        parser.error(f"unknown phases: {', '.join(sorted(unknown))}")
    if args.queries < 1 or args.prefixes < 1:
        parser.error("--queries and --prefixes must be positive")
    return args


def es_documents(index_prefix: str) -> tuple[str, int]:
    from config import env

    base = env.connections().elasticsearch_hosts[0].rstrip("/")
    alias = f"{index_prefix}-packages"
    with urllib.request.urlopen(f"{base}/{alias}/_count", timeout=10) as response:
        count = json.loads(response.read())["count"]
    with urllib.request.urlopen(f"{base}/_alias/{alias}", timeout=10) as response:
        index = sorted(json.loads(response.read()))[0]
    return index, int(count)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sys.path.insert(0, str(ROOT))
    conninfo = connection_settings()
    started = datetime.now(UTC)

    index, documents = es_documents(args.index_prefix)
    say(f"index {index}: {documents:,} documents")
    source = baselines.connect(conninfo, args.source_db, readonly=True)
    with contextlib.closing(source):
        catalog = queries.load_catalog(source)
    mix = queries.search_mix(catalog, args.queries, args.seed)
    prefixes = queries.suggest_mix(catalog, args.prefixes, args.seed)
    search_paths = [q.path() for q in mix]
    suggest_paths = ["/api/suggest?" + urllib.parse.urlencode({"q": p}) for p in prefixes]
    say(f"mix: {len(mix)} searches, {len(prefixes)} prefixes (seed {args.seed})")

    pg_info: dict[str, Any] = {"database": args.pg_db}
    lookups = None
    if {"pg_ilike", "pg_fts"} & set(args.phases):
        pg_info = baselines.ensure_copy(
            conninfo, args.source_db, args.pg_db, rebuild=args.rebuild_pg, log=say
        )
        with contextlib.closing(baselines.connect(conninfo, args.pg_db)) as conn:
            lookups = baselines.load_lookups(conn)

    server = Server(
        args.port,
        args.worker_class,
        args.workers,
        args.threads,
        args.cache_prefix,
        args.index_prefix,
        args.source_db,
        RESULTS / f"{args.output}.gunicorn.log",
        Path(args.app_dir).resolve(),
    )
    redis = redis_client(args.cache_prefix)
    gen_key = generation_key(args.cache_prefix)
    rows: list[dict[str, Any]] = []
    extra_rows: list[dict[str, Any]] = []  # variants outside the rows' schema (warm-counts)
    details: list[dict[str, Any]] = []
    notes: list[str] = []

    def record(
        phase: Phase,
        c: int,
        outcome: Outcome,
        wall: float,
        cpu: dict[str, float],
        extra: dict[str, Any] | None = None,
    ) -> None:
        row = {
            "system": phase.system,
            "endpoint": phase.endpoint,
            "cache": phase.cache,
            "concurrency": c,
            **summarize(outcome, wall),
        }
        (rows if phase.cache in {"warm", "cold", "none"} else extra_rows).append(row)
        detail: dict[str, Any] = {
            **row,
            "requests": len(outcome.latencies_ms),
            "cpu": cpu,
            "error_samples": outcome.error_samples,
        }
        if outcome.took_ms:
            detail["took_p50_ms"] = percentile(outcome.took_ms, 50)
            detail["took_p95_ms"] = percentile(outcome.took_ms, 95)
        seen = outcome.facets_cached + outcome.facets_uncached
        if seen:
            detail["facets_cached_share"] = round(outcome.facets_cached / seen, 3)
        detail.update(extra or {})
        details.append(detail)
        say(
            f"{phase.system}/{phase.endpoint}/{phase.cache} c={c}: p50 {row['p50_ms']} ms,"
            f" p95 {row['p95_ms']} ms, p99 {row['p99_ms']} ms, {row['rps']} req/s,"
            f" {row['errors']} errors; cpu {cpu}"
        )

    quiet: dict[str, Any] = {}
    if args.wait_idle > 0:
        quiet = wait_for_quiet(args.wait_idle, 0.3)
        if not quiet["quiet"]:
            notes.append(
                f"The machine was not idle when the run started ({quiet['busy_cores']}"
                " cores busy with other work)."
            )

    def measure_warm(phase: Phase, meter: CpuMeter) -> None:
        last_fill = 0.0
        for c in args.levels:
            if time.monotonic() - last_fill > FACET_TTL / 2:
                say("warming the caches: every search of the mix, twice ...")
                fill = prefill(args.port, search_paths)
                last_fill = time.monotonic()
                say(f"... {fill['seconds']} s, {fill['errors']} errors")
                if fill["errors"]:
                    notes.append(f"warm-up pass errors: {fill['error_samples']}")
            meter.start()
            outcome, wall = run_load(
                c,
                args.duration,
                lambda: Client(args.port),
                http_work(search_paths, parse=True),
                len(search_paths),
                args.warmup,
                close_state=lambda s: s.close(),
            )
            record(phase, c, outcome, wall, meter.stop())

    relevance: dict[str, Any] = {}
    portal_phases = {"warm", "cold", "suggest"} & set(args.phases)
    try:
        if portal_phases:
            say(f"starting the web app: {server.describe()} on {HOST}:{args.port}")
            server.start()
            meter = CpuMeter(server.proc.pid if server.proc else None)
            relevance = relevance_check(args.port)
            bad = [q for q, r in relevance.items() if not r["ok"]]
            if bad:
                notes.append(f"Relevance check failed for: {', '.join(bad)}.")
            say(
                "relevance check: "
                + ", ".join(
                    f"{q} -> {r['first']}{'' if r['ok'] else ' (WRONG)'}"
                    for q, r in relevance.items()
                )
            )
            # First requests of each worker: imports, connections, per-process caches.
            run_load_once(args.port, suggest_paths[:50] + search_paths[:20], args.workers * 2)
            if "warm" in args.phases:
                measure_warm(Phase("portal", "search", "warm"), meter)

            def make_cold() -> Any:
                client = Client(args.port)
                client.redis = redis_client(args.cache_prefix)
                return client

            def bump(client: Any, i: int) -> None:
                client.redis.incr(gen_key)

            if "cold" in args.phases:
                phase = Phase("portal", "search", "cold")
                for c in args.levels:
                    redis.setnx(gen_key, 1)
                    meter.start()
                    outcome, wall = run_load(
                        c,
                        args.duration,
                        make_cold,
                        http_work(search_paths, parse=True),
                        len(search_paths),
                        args.warmup,
                        close_state=lambda s: s.close(),
                        before=bump,
                    )
                    record(phase, c, outcome, wall, meter.stop())
            if "suggest" in args.phases:
                # warm: every prefix answered once before (suggestions cached per index
                # generation); cold: the generation bumped before every request.
                for cache_state in ("warm", "cold"):
                    phase = Phase("portal", "suggest", cache_state)
                    for c in args.levels:
                        if cache_state == "warm":
                            run_load_once(args.port, suggest_paths, 4)
                        else:
                            redis.setnx(gen_key, 1)
                        meter.start()
                        outcome, wall = run_load(
                            c,
                            args.duration,
                            make_cold if cache_state == "cold" else (lambda: Client(args.port)),
                            http_work(suggest_paths, parse=False),
                            len(suggest_paths),
                            args.warmup,
                            close_state=lambda s: s.close(),
                            before=bump if cache_state == "cold" else None,
                        )
                        record(phase, c, outcome, wall, meter.stop())
    finally:
        server.stop()
        if args.cache_prefix != "portal":
            deleted = 0
            with contextlib.suppress(Exception):
                for key in redis.scan_iter(match=f"{args.cache_prefix}:*", count=1000):
                    deleted += redis.delete(key)
            if deleted:
                say(
                    f"deleted {deleted} keys of the benchmark's cache namespace"
                    f" {args.cache_prefix!r}"
                )

    if "warm_counts" in args.phases:
        # The same warm measurement with the page cache off: counts from the cache, every
        # page of hits from Elasticsearch (what "warm" measured before the page cache).
        counts_server = dataclasses.replace(
            server,
            extra_env={"SEARCH_PAGE_CACHE": "0"},
            logfile=RESULTS / f"{args.output}.counts.gunicorn.log",
            proc=None,
        )
        say("starting a second web app with SEARCH_PAGE_CACHE=0")
        counts_server.start()
        try:
            run_load_once(args.port, search_paths[:20], args.workers * 2)
            measure_warm(
                Phase("portal", "search", "warm-counts"),
                CpuMeter(counts_server.proc.pid if counts_server.proc else None),
            )
        finally:
            counts_server.stop()
            with contextlib.suppress(Exception):
                for key in redis.scan_iter(match=f"{args.cache_prefix}:*", count=1000):
                    redis.delete(key)

    from psycopg2.pool import ThreadedConnectionPool

    meter = CpuMeter(None)
    for mode in ("ilike", "fts"):
        if f"pg_{mode}" not in args.phases or lookups is None:
            continue
        phase = Phase(f"pg_{mode}", "search", "none")
        work = pg_work(mix, mode, lookups)
        for c in args.levels:
            pool = ThreadedConnectionPool(
                c,
                c,
                dbname=args.pg_db,
                connect_timeout=5,
                options="-c statement_timeout=30000",
                **conninfo,
            )
            try:
                meter.start()
                outcome, wall = run_load(
                    c, args.duration, lambda p=pool: p, work, len(mix), args.warmup
                )
                record(phase, c, outcome, wall, meter.stop())
            finally:
                pool.closeall()

    ratio_rows = ratios(rows)
    target_rows = targets(rows, ratio_rows)
    notes.append(
        "All processes share the machine's cores: the load generator (Python threads with"
        " keep-alive HTTP connections, or psycopg2 pools for the baselines), gunicorn,"
        " Elasticsearch, Redis and PostgreSQL. The CPU table shows each one's share."
    )
    comparison = None
    if args.compare:
        try:
            comparison = compare(Path(args.compare), rows)
        except (OSError, ValueError, KeyError) as exc:
            notes.append(f"No before/after table: cannot read {args.compare} ({exc}).")
    report = {
        "rows": rows,
        "extra_rows": extra_rows,
        "ratios": ratio_rows,
        "targets": target_rows,
        "details": details,
        "notes": notes,
        "comparison": comparison,
        "meta": {
            "started_at": started.isoformat(timespec="seconds"),
            "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "argv": " ".join(argv if argv is not None else sys.argv[1:]),
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "concurrency": args.levels,
            "server": server.describe(),
            "app_dir": str(server.app_dir),
            "index": index,
            "documents": documents,
            "cache_prefix": args.cache_prefix,
            "relevance_check": relevance,
            "idle_wait": quiet,
            "pg": pg_info,
            "mix": queries.describe(mix),
            "suggest_prefixes": len(prefixes),
            "seed": args.seed,
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
    for path in write_outputs(report, args.output):
        say(f"wrote {path.relative_to(ROOT)}")
    for r in ratio_rows:
        print(
            f"concurrency {r['concurrency']:>3}: portal warm {r['portal_warm_rps']} req/s,"
            f" best PG ({r['best_pg']}) {r['best_pg_rps']} req/s -> {r['ratio']}x"
        )
    for t in target_rows:
        print(f"{'MET ' if t['met'] else 'MISS'} {t['target']}: {t['measured']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
