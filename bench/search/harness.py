"""The search benchmark's harness: the web app under test, the load generator, the CPU meter.

* :class:`Server`: the web app under gunicorn with production settings (``DJANGO_DEBUG=0``),
  on the benchmark's environment (``bench.common``: its own cache key prefix and Redis
  databases; the catalog database and index prefix it is given, only read).
* The load generator: a closed loop of threads, each sending its next request as soon as
  the previous one answered, over keep-alive HTTP connections (:class:`Client`) or
  psycopg2 pools. :func:`run_timed` runs for a fixed time after an unrecorded warm-up, each
  thread walking the mix from its own offset; :func:`run_counted` replays a stream from its
  first request to its last, the threads taking the next request of the one shared
  sequence, every request recorded.
* :class:`CpuMeter`: the CPU time (from ``/proc``) of the load generator, the web app
  (gunicorn's master and workers), Elasticsearch, PostgreSQL and the two Redis servers
  during the measured window. The services are found by the ports they listen on (so the
  services of other checkouts on the same machine are not counted), with their child
  processes (Elasticsearch's controller). Of PostgreSQL only the backends connected to the
  benchmark's databases count (the catalog the web app reads, the baselines' copy), with
  the parallel workers they start (:class:`PgFollower` follows them while they live): the
  server is shared, and its other databases' work (tests, another engineer's worker) is not
  the benchmark's. Elasticsearch and the Redis servers cannot be split that way: they count
  whole.
* What Elasticsearch and the cache Redis hold: index size on disk, heap, cache memory.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import common

HOST = "127.0.0.1"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def port_in_use(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((HOST, port)) == 0


# --------------------------------------------------------------------------- the web app


@dataclass
class Server:
    """The web app under gunicorn, on the benchmark's environment (``os.environ`` as
    ``bench.search`` set it up) plus the settings of this server."""

    port: int
    worker_class: str
    workers: int
    threads: int
    cache_prefix: str
    index_prefix: str
    source_db: str
    logfile: Path
    app_dir: Path = common.ROOT
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
        return common.child_env(
            read_only_data=True,
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
            # gunicorn.conf.py (the production settings) applies, with the sizes given on
            # the command line; no access log (its cost is the logging setup's, not search's).
            WEB_ACCESS_LOG="",
            **self.extra_env,
        )

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
        while not self._answers():
            if time.monotonic() > deadline:
                self.stop()
                raise SystemExit(f"gunicorn did not answer in {timeout:.0f}s; see {self.logfile}")
            time.sleep(0.3)

    def _answers(self) -> bool:
        """Whether the app answers a suggestion (raises if it died or answers an error)."""
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise SystemExit(f"gunicorn exited ({self.proc.returncode}); see {self.logfile}")
        with contextlib.suppress(OSError, http.client.HTTPException):
            conn = http.client.HTTPConnection(HOST, self.port, timeout=10)
            conn.request("GET", "/api/suggest?q=a")
            response = conn.getresponse()
            response.read()
            conn.close()
            if response.status in (400, 500):
                self.stop()
                raise SystemExit(f"the web app answered {response.status}; see {self.logfile}")
            return response.status == 200
        return False

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

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


class Client:
    """One load-generator thread's HTTP keep-alive connection (reconnects when the server
    closes it)."""

    def __init__(self, port: int, host: str = HOST) -> None:
        self.port = port
        self.conn = http.client.HTTPConnection(host, port, timeout=60)

    def get(self, path: str) -> tuple[int, bytes]:
        return self._send("GET", path)

    def post(self, path: str, body: bytes, content_type: str) -> tuple[int, bytes]:
        return self._send("POST", path, body, {"Content-Type": content_type})

    def _send(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, bytes]:
        try:
            self.conn.request(method, path, body, headers or {})
            response = self.conn.getresponse()
            return response.status, response.read()
        except (OSError, http.client.HTTPException):
            self.conn.close()
            raise

    def close(self) -> None:
        self.conn.close()


# --------------------------------------------------------------------------- CPU meter


def _proc_jiffies(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime
    except (OSError, IndexError, ValueError):
        return 0


def machine_busy_jiffies() -> int:
    parts = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(parts) - parts[3] - parts[4]  # all but idle and iowait


def _port(url: str, default: int) -> int:
    return urllib.parse.urlsplit(url).port or default


def elasticsearch_address() -> tuple[str, int]:
    """The host and HTTP port of the first Elasticsearch node the web app talks to."""
    from config import env

    url = env.connections().elasticsearch_hosts[0]
    return urllib.parse.urlsplit(url).hostname or HOST, _port(url, 9200)


@dataclass
class Services:
    """The pids of the services the benchmark talks to, found by their listening ports
    (again before every measurement: a service restarted meanwhile is followed, and noted
    in ``changes``)."""

    ports: dict[str, list[int]]  # group -> ports
    pg_databases: frozenset[str] = frozenset()  # only these databases' backends count
    roots: dict[str, list[int]] = field(default_factory=dict)  # group -> pids (and children)
    changes: list[str] = field(default_factory=list)

    @classmethod
    def discover(cls, pg_databases: set[str]) -> Services:
        from config import env

        c = env.connections()
        ports = {
            "elasticsearch": [_port(h, 9200) for h in c.elasticsearch_hosts],
            "postgres": [c.postgres_port],
            "redis_coordination": [_port(os.environ.get("REDIS_URL", c.redis_url), 6379)],
            "redis_cache": [_port(os.environ.get("REDIS_CACHE_URL", c.redis_cache_url), 6379)],
        }
        services = cls(ports, frozenset(pg_databases))
        services.refresh()
        return services

    def refresh(self) -> None:
        found = common.listening_pids({p for group in self.ports.values() for p in group})
        roots = {
            name: sorted({found[p] for p in group if p in found})
            for name, group in self.ports.items()
        }
        for name, pids in roots.items():
            if self.roots and pids != self.roots.get(name):
                self.changes.append(
                    f"{name} changed processes during the run ({self.roots.get(name)} -> {pids}):"
                    " restarted by someone else? The measurements around it are suspect."
                )
        self.roots = roots

    @property
    def missing(self) -> list[str]:
        """Groups whose process could not be found."""
        return [name for name, pids in self.roots.items() if not pids]


def _cmdline(pid: int) -> str:
    try:
        return (
            Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        )
    except OSError:
        return ""


class PgFollower(threading.Thread):
    """Follows the PostgreSQL server's child processes during a window (every
    ``interval`` s): the backends connected to ``databases`` (``postgres: user db host(port)
    state``) and the parallel workers they start (``... parallel worker for PID n``) count,
    with the CPU they had when last seen, even when they exit before the window ends. The
    server's own processes (checkpointer, autovacuum ...) and other databases' backends do
    not count."""

    def __init__(self, postmaster: int, databases: frozenset[str], interval: float = 0.1):
        super().__init__(daemon=True)
        self.postmaster = postmaster
        self.databases = databases
        self.interval = interval
        self.ours: set[int] = set()
        self.first: dict[int, int] = {}  # pid -> jiffies when the window started (or 0)
        self.last: dict[int, int] = {}  # pid -> jiffies when last seen
        self.done = threading.Event()
        self.sample(initial=True)

    def children(self) -> list[int]:
        pm = self.postmaster
        try:
            return [int(x) for x in Path(f"/proc/{pm}/task/{pm}/children").read_text().split()]
        except OSError:
            return [pid for pid, ppid, _ in common.processes() if ppid == pm]

    def is_ours(self, pid: int) -> bool:
        if pid in self.ours:
            return True
        words = _cmdline(pid).removeprefix("postgres: ").split()
        worker_of = int(words[-1]) if "worker" in words and words[-1].isdigit() else None
        if (len(words) >= 2 and words[1] in self.databases) or worker_of in self.ours:
            self.ours.add(pid)
            return True
        return False  # not remembered: a backend still starting up shows its database later

    def sample(self, initial: bool = False) -> None:
        for pid in self.children():
            if not self.is_ours(pid):
                continue
            jiffies = _proc_jiffies(pid)
            self.first.setdefault(pid, jiffies if initial else 0)
            self.last[pid] = max(self.last.get(pid, 0), jiffies)

    def run(self) -> None:
        while not self.done.wait(self.interval):
            self.sample()

    def seconds(self) -> float:
        """Stop following; the CPU seconds of the benchmark's PostgreSQL processes."""
        self.done.set()
        if self.is_alive():
            self.join()
        self.sample()
        return sum(max(0, self.last[pid] - self.first[pid]) for pid in self.last) / CLK_TCK


GROUPS = (
    "load_generator",
    "web_app",
    "elasticsearch",
    "postgres",
    "redis_coordination",
    "redis_cache",
)


@dataclass
class CpuReading:
    """CPU of each part during a window: seconds, and cores (seconds per second of wall)."""

    wall: float
    seconds: dict[str, float]
    cores: dict[str, float]

    def ms_per_request(self, group: str, requests: int) -> float | None:
        if requests <= 0 or group not in self.seconds:
            return None
        return round(self.seconds[group] * 1000 / requests, 3)


class CpuMeter:
    """CPU used during a window by the load generator, the web app, Elasticsearch,
    PostgreSQL, the two Redis servers, and everything else on the machine."""

    def __init__(self, services: Services, web_pid: int | None = None) -> None:
        self.services = services
        self.web_pid = web_pid

    def _groups(self) -> dict[str, set[int]]:
        children: dict[int, list[int]] = {}
        for pid, ppid, _ in common.processes():
            children.setdefault(ppid, []).append(pid)

        def tree(roots: list[int]) -> set[int]:
            found, todo = set(), list(roots)
            while todo:
                pid = todo.pop()
                if pid not in found:
                    found.add(pid)
                    todo.extend(children.get(pid, []))
            return found

        groups = {name: tree(pids) for name, pids in self.services.roots.items()}
        if self._pg_follower() is not None:
            groups.pop("postgres")  # followed by PgFollower
        groups["load_generator"] = {os.getpid()}
        groups["web_app"] = tree([self.web_pid]) if self.web_pid else set()
        return groups

    def _pg_follower(self) -> PgFollower | None:
        postmaster = self.services.roots.get("postgres")
        if not postmaster or not self.services.pg_databases:
            return None
        return PgFollower(postmaster[0], self.services.pg_databases)

    def start(self) -> None:
        self.services.refresh()
        self.t0 = time.monotonic()
        # Processes started during the window count from zero.
        self.j0 = {pid: _proc_jiffies(pid) for pids in self._groups().values() for pid in pids}
        self.pg = self._pg_follower()
        if self.pg is not None:
            self.pg.start()
        self.busy0 = machine_busy_jiffies()
        self.load0 = os.getloadavg()[0]

    def stop(self) -> CpuReading:
        wall = max(time.monotonic() - self.t0, 1e-6)
        busy = (machine_busy_jiffies() - self.busy0) / CLK_TCK
        seconds = {
            name: sum(max(0, _proc_jiffies(pid) - self.j0.get(pid, 0)) for pid in pids) / CLK_TCK
            for name, pids in self._groups().items()
        }
        if self.pg is not None:
            seconds["postgres"] = self.pg.seconds()
        seconds["redis"] = seconds["redis_coordination"] + seconds["redis_cache"]
        seconds["machine_busy"] = busy
        seconds["others"] = max(0.0, busy - sum(seconds[g] for g in GROUPS))
        cores: dict[str, float] = {k: round(v / wall, 2) for k, v in seconds.items()}
        cores["loadavg_1m_before"] = round(self.load0, 2)
        cores["loadavg_1m_after"] = round(os.getloadavg()[0], 2)
        return CpuReading(wall, {k: round(v, 3) for k, v in seconds.items()}, cores)


def background(services: Services, seconds: float = 3.0) -> dict[str, float]:
    """The cores each part uses with no load from the benchmark (the services are shared:
    other people's work shows here, and inflates the CPU per request at low rates)."""
    meter = CpuMeter(services)
    meter.start()
    time.sleep(seconds)
    return meter.stop().cores


def wait_for_quiet(max_wait: float, busy_below: float) -> dict[str, Any]:
    """Wait (at most ``max_wait`` s) until the machine's CPU use, over 5 s, is below
    ``busy_below`` cores: other people's tests on a shared machine distort every number."""
    deadline = time.monotonic() + max_wait
    while True:
        busy0 = machine_busy_jiffies()
        time.sleep(5)
        busy = (machine_busy_jiffies() - busy0) / CLK_TCK / 5
        if busy < busy_below or time.monotonic() >= deadline:
            return {"busy_cores": round(busy, 2), "quiet": busy < busy_below}
        common.say(f"the machine is busy ({busy:.2f} cores in use by others); waiting ...")


# --------------------------------------------------------------------------- load generator


Info = dict[str, Any] | None
Work = Callable[[Any, int], tuple[bool, str | None, Info]]


@dataclass
class Outcome:
    """What a measurement recorded. ``completed`` counts every request (answered or
    failed) that finished inside the measured window: the CPU per request divides by it."""

    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    completed: int = 0
    took_ms: list[float] = field(default_factory=list)
    facets_cached: int = 0
    facets_uncached: int = 0
    hits_cached: int = 0
    hits_uncached: int = 0
    cached_at: dict[int, bool] = field(default_factory=dict)  # position -> hits cached
    lock: threading.Lock = field(default_factory=threading.Lock)

    def error(self, message: str) -> None:
        with self.lock:
            self.errors += 1
            if len(self.error_samples) < 5:
                self.error_samples.append(message[:300])

    def add(self, position: int, latency_ms: float, info: Info) -> None:
        with self.lock:
            self.latencies_ms.append(latency_ms)
            if not info:
                return
            if info.get("took_ms") is not None:
                self.took_ms.append(info["took_ms"])
            if info.get("facets_cached") is not None:
                self.facets_cached += bool(info["facets_cached"])
                self.facets_uncached += not info["facets_cached"]
            if info.get("hits_cached") is not None:
                self.hits_cached += bool(info["hits_cached"])
                self.hits_uncached += not info["hits_cached"]
                self.cached_at[position] = bool(info["hits_cached"])

    def share(self, cached: int, uncached: int) -> float | None:
        seen = cached + uncached
        return round(cached / seen, 3) if seen else None


@dataclass
class Load:
    """What each of ``concurrency`` threads does: its state (a connection, a pool), the
    request ``work(state, i)`` for position ``i``, and optionally ``before(state, i)``,
    outside the measured time (the cold-cache bump)."""

    concurrency: int
    make_state: Callable[[], Any]
    work: Work
    close_state: Callable[[Any], None] = lambda state: None
    before: Callable[[Any, int], None] | None = None


@dataclass
class Measurement:
    outcome: Outcome
    wall: float  # seconds the recorded requests span (the measured window)
    cpu: CpuReading | None


class _TimedSchedule:
    """Each thread walks the mix from its own offset until the end time; requests that
    started after the warm-up and finished before the end are recorded."""

    def __init__(self, mix_size: int, concurrency: int, duration: float, warmup: float) -> None:
        self.mix_size = mix_size
        stride = max(1, mix_size // concurrency)
        self.cursors = [(n * stride) % mix_size for n in range(concurrency)]
        self.duration = duration
        self.warmup = warmup
        self.measure = self.end = float("inf")

    def begin(self, now: float) -> None:
        self.measure = now + self.warmup
        self.end = self.measure + self.duration

    def next(self, thread: int) -> int | None:
        if time.perf_counter() >= self.end:
            return None
        i = self.cursors[thread]
        self.cursors[thread] = (i + 1) % self.mix_size
        return i

    def counts(self, t0: float, t1: float) -> tuple[bool, bool]:
        """(recorded, completed in the window)."""
        return t0 >= self.measure and t1 <= self.end, self.measure <= t1 <= self.end


class _CountedSchedule:
    """The threads take the next position of one shared sequence until ``count`` were
    taken: every request is recorded."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.issued = 0
        self.lock = threading.Lock()

    def begin(self, now: float) -> None:
        pass

    def next(self, thread: int) -> int | None:
        with self.lock:
            if self.issued >= self.count:
                return None
            self.issued += 1
            return self.issued - 1

    def counts(self, t0: float, t1: float) -> tuple[bool, bool]:
        return True, True


class _Loop:
    def __init__(self, load: Load, schedule: _TimedSchedule | _CountedSchedule) -> None:
        self.load = load
        self.schedule = schedule
        self.outcome = Outcome()
        self.gate = threading.Barrier(load.concurrency + 1)
        self.threads = [
            threading.Thread(target=self.thread, args=(n,), daemon=True)
            for n in range(load.concurrency)
        ]

    def thread(self, n: int) -> None:
        state = self.load.make_state()
        self.gate.wait()
        try:
            while (i := self.schedule.next(n)) is not None:
                self.request(state, i)
        finally:
            self.load.close_state(state)

    def request(self, state: Any, i: int) -> None:
        t0 = time.perf_counter()
        try:
            if self.load.before is not None:
                self.load.before(state, i)
                t0 = time.perf_counter()
            ok, message, info = self.load.work(state, i)
        except Exception as exc:
            ok, message, info = False, f"{type(exc).__name__}: {exc}", None
        t1 = time.perf_counter()
        recorded, completed = self.schedule.counts(t0, t1)
        if completed:
            with self.outcome.lock:
                self.outcome.completed += 1
        if not recorded:
            return
        if ok:
            self.outcome.add(i, (t1 - t0) * 1000, info)
        else:
            self.outcome.error(message or "error")

    def open(self) -> float:
        """Start the threads and let them go; returns the start time."""
        for t in self.threads:
            t.start()
        now = time.perf_counter()
        self.schedule.begin(now)
        self.gate.wait()
        return now

    def join(self) -> None:
        for t in self.threads:
            t.join()


def _sleep_until(moment: float) -> None:
    delay = moment - time.perf_counter()
    if delay > 0:
        time.sleep(delay)


def run_timed(
    load: Load, mix_size: int, duration: float, warmup: float, meter: CpuMeter | None
) -> Measurement:
    """A closed loop for ``duration`` seconds after ``warmup`` unrecorded seconds; the CPU
    meter covers the measured window only."""
    schedule = _TimedSchedule(mix_size, load.concurrency, duration, warmup)
    loop = _Loop(load, schedule)
    loop.open()
    _sleep_until(schedule.measure)
    if meter:
        meter.start()
    _sleep_until(schedule.end)
    cpu = meter.stop() if meter else None
    loop.join()
    return Measurement(loop.outcome, duration, cpu)


def run_counted(
    load: Load, count: int, meter: CpuMeter | None, progress: float = 30
) -> Measurement:
    """Positions 0 .. ``count`` - 1 in order, shared by the threads, all recorded (no
    warm-up); the CPU meter covers the whole run. Reports progress every ``progress``
    seconds."""
    loop = _Loop(load, _CountedSchedule(count))
    if meter:
        meter.start()
    started = loop.open()
    report_at = started + progress
    for t in loop.threads:
        while t.is_alive():
            t.join(timeout=1)
            if time.perf_counter() >= report_at:
                common.say(f"  ... {loop.outcome.completed:,} of {count:,} requests")
                report_at += progress
    wall = time.perf_counter() - started
    cpu = meter.stop() if meter else None
    return Measurement(loop.outcome, wall, cpu)


def run_once(port: int, paths: list[str], concurrency: int) -> Outcome:
    """Every path once (no measurement): fills caches, warms the workers up."""
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

    threads = [threading.Thread(target=loop, daemon=True) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return outcome


def http_work(paths: list[str], parse: bool) -> Work:
    """GET ``paths[i]``; with ``parse``, read what the search API says of its caches."""

    def work(client: Client, i: int) -> tuple[bool, str | None, Info]:
        status, body = client.get(paths[i])
        if status != 200:
            return False, f"HTTP {status} for {paths[i]}: {body[:200]!r}", None
        if not parse:
            return True, None, None
        data = json.loads(body)
        keys = ("took_ms", "facets_cached", "hits_cached")
        return True, None, {k: data.get(k) for k in keys}

    return work


# --------------------------------------------------------------------------- services' state


def es_index(index_prefix: str) -> dict[str, Any]:
    """The index behind the read alias: name, documents, size on disk (``_cat/indices``
    store size, primaries and total), and every index of the prefix."""
    from search.indices import client

    es = client()
    alias = f"{index_prefix}-packages"
    name = sorted(es.indices.get_alias(name=alias))[0]
    documents = int(es.count(index=alias)["count"])
    cat = es.cat.indices(
        index=f"{alias}-*", format="json", bytes="b", h="index,docs.count,store.size,pri.store.size"
    )
    sizes = {row["index"]: row for row in cat}
    live = sizes.get(name, {})
    return {
        "index": name,
        "documents": documents,
        "store_bytes": int(live.get("store.size") or 0),
        "primary_store_bytes": int(live.get("pri.store.size") or 0),
        "prefix_indices": {
            n: {"docs": int(r.get("docs.count") or 0), "store_bytes": int(r.get("store.size") or 0)}
            for n, r in sorted(sizes.items())
        },
    }


def es_heap() -> list[dict[str, Any]]:
    """Heap used and max of every Elasticsearch node (``_nodes/stats/jvm``), in MB."""
    from search.indices import client

    with contextlib.suppress(Exception):
        nodes = client().nodes.stats(metric="jvm")["nodes"]
        return [
            {
                "node": node.get("name"),
                "heap_used_mb": round(node["jvm"]["mem"]["heap_used_in_bytes"] / 2**20, 1),
                "heap_max_mb": round(node["jvm"]["mem"]["heap_max_in_bytes"] / 2**20, 1),
            }
            for node in nodes.values()
        ]
    return []


def cache_redis_state() -> dict[str, Any]:
    """Memory and evictions of the cache Redis (the whole server)."""
    from search import stores

    with contextlib.suppress(Exception):
        info = stores.info(stores.cache_client())
        return {
            "used_memory_mb": round((info["used_memory"] or 0) / 2**20, 1),
            "maxmemory_mb": round((info["maxmemory"] or 0) / 2**20, 1),
            "evicted_keys": info["evicted_keys"],
        }
    return {}


def delete_namespace(client: Any, prefix: str) -> int:
    """Delete every key of ``prefix`` (the benchmark's own CACHE_KEY_PREFIX) in one Redis."""
    common.check_isolation(
        {**os.environ, "CACHE_KEY_PREFIX": prefix}, read_only_data=True
    )  # never the development or test prefix
    deleted = 0
    batch: list[bytes] = []
    for key in client.scan_iter(match=f"{prefix}:*", count=1000):
        batch.append(key)
        if len(batch) >= 500:
            deleted += client.delete(*batch)
            batch = []
    if batch:
        deleted += client.delete(*batch)
    return deleted
