"""Shared pieces of the benchmarks: isolated environment, Django setup, catalog, worker.

Isolation: the benchmarks never touch the development database ``portal``, the ``portal``
index prefix, the test prefix ``test`` or the Redis databases of development (0, 1) and tests
(2, 3) on either Redis server (coordination and cache). ``BENCH_ENV`` is applied with
``os.environ.setdefault`` (so a caller can point a run elsewhere), and
:func:`check_isolation` refuses any setting that would collide, or any service that is not
local. ``bench.search`` reads the development catalog and index (never writes them): it
passes ``read_only_data=True``, which allows ``portal`` as the database and index prefix but
still demands the benchmark's own cache key prefix and Redis databases.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from config.services import ForegroundWorker, purge_worker_queues

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"

BENCH_ENV = {
    "DJANGO_SETTINGS_MODULE": "config.settings",
    "POSTGRES_DB": "bench",
    "SEARCH_INDEX_PREFIX": "bench",
    "CACHE_KEY_PREFIX": "bench",
    # Redis databases 4 and 5 of the coordination server (REDIS_PORT: broker and
    # coordination) and 5 of the cache server (REDIS_CACHE_PORT), filled in by bench_env().
    "CELERY_BROKER_URL": "redis://127.0.0.1:{redis_port}/4",
    "REDIS_URL": "redis://127.0.0.1:{redis_port}/5",
    "REDIS_CACHE_URL": "redis://127.0.0.1:{redis_cache_port}/5",
}
LOCAL_HOSTS = {"127.0.0.1", "localhost"}
REDIS_VARIABLES = ("CELERY_BROKER_URL", "REDIS_URL", "REDIS_CACHE_URL")
# Development (coordination 0, broker 1, cache 0) and tests (coordination 2, broker 3, cache 1).
RESERVED_REDIS_DBS = {"0", "1", "2", "3"}


def bench_env() -> dict[str, str]:
    """``BENCH_ENV`` for the local services as configured now (their ports)."""
    from config.env import redis_cache_port, redis_port

    ports = {"redis_port": redis_port(), "redis_cache_port": redis_cache_port()}
    return {key: value.format(**ports) for key, value in BENCH_ENV.items()}


def apply_env(overrides: dict[str, str] | None = None, *, read_only_data: bool = False) -> None:
    """Default the benchmark environment (explicit overrides win over the caller's env)."""
    for key, value in bench_env().items():
        os.environ.setdefault(key, value)
    for key, value in (overrides or {}).items():
        os.environ[key] = value
    check_isolation(os.environ, read_only_data=read_only_data)


def child_env(*, read_only_data: bool = False, **overrides: str) -> dict[str, str]:
    """The environment for a subprocess (a worker, a reindex, a web app): ours plus
    ``overrides``."""
    environment = dict(os.environ)
    for key, value in bench_env().items():
        environment.setdefault(key, value)
    environment.update(overrides)
    environment.setdefault("PYTHONUNBUFFERED", "1")
    check_isolation(environment, read_only_data=read_only_data)
    return environment


def _data_problems(environment: Any, read_only_data: bool) -> list[str]:
    db = environment.get("POSTGRES_DB", "")
    prefix = environment.get("SEARCH_INDEX_PREFIX", "")
    shared_db = {"", "postgres"} if read_only_data else {"", "portal", "postgres"}
    shared_prefix = {""} if read_only_data else {"", "portal"}
    problems = []
    if db in shared_db or db.startswith("test"):
        problems.append(f"POSTGRES_DB={db!r} is not a benchmark database")
    if prefix in shared_prefix or prefix.startswith("test"):
        problems.append(f"SEARCH_INDEX_PREFIX={prefix!r} is not a benchmark prefix")
    return problems


def _redis_problems(environment: Any) -> list[str]:
    cache_prefix = environment.get("CACHE_KEY_PREFIX", "")
    problems = []
    if cache_prefix in {"", "portal"} or cache_prefix.startswith("test"):
        problems.append(f"CACHE_KEY_PREFIX={cache_prefix!r} is not a benchmark prefix")
    for key in REDIS_VARIABLES:
        url = environment.get(key, "")
        if urllib.parse.urlsplit(url).hostname not in LOCAL_HOSTS:
            problems.append(f"{key}={url!r} is not a local Redis")
        elif url.rsplit("/", 1)[-1] in RESERVED_REDIS_DBS:
            problems.append(f"{key}={url!r} uses a development or test Redis database")
    return problems


def local_problems(environment: Any) -> list[str]:
    """PostgreSQL and Elasticsearch settings that point away from this machine."""
    problems = []
    host = environment.get("POSTGRES_HOST", "127.0.0.1")
    if host not in LOCAL_HOSTS:
        problems.append(f"POSTGRES_HOST={host!r} is not local")
    for es in environment.get("ELASTICSEARCH_HOSTS", "http://127.0.0.1").split(","):
        if urllib.parse.urlsplit(es.strip()).hostname not in LOCAL_HOSTS:
            problems.append(f"ELASTICSEARCH_HOSTS entry {es!r} is not local")
    return problems


def check_isolation(environment: Any, *, read_only_data: bool = False) -> None:
    """Refuse to run against development or test data, or against a non-local service.

    ``read_only_data``: the database and index prefix may be the development ones (only
    read, as ``bench.search`` does); the cache prefix and Redis databases must still be the
    benchmark's own."""
    problems = (
        _data_problems(environment, read_only_data)
        + _redis_problems(environment)
        + local_problems(environment)
    )
    if problems:
        raise SystemExit("refusing to run the benchmark: " + "; ".join(problems))


def setup_django(overrides: dict[str, str] | None = None) -> None:
    """Apply the benchmark environment, set up Django, check the services answer, make
    sure the benchmark's database exists."""
    apply_env(overrides)
    import django

    django.setup()
    require_services()
    ensure_database(os.environ["POSTGRES_DB"])


def service_checks() -> dict[str, Callable[[], object]]:
    """What every benchmark needs answering, by name (Django set up)."""
    from search import stores
    from search.indices import client

    return {
        "PostgreSQL": lambda: pg_connect().close(),
        # The cluster's health, not its banner: Elasticsearch 9.5.4 as the services manager
        # runs it (the integration-test distribution) answers ``GET /`` with 405.
        "Elasticsearch": lambda: (
            client().options(request_timeout=5, max_retries=0).cluster.health()
        ),
        "Redis (coordination)": lambda: stores.coordination().ping(),
        "Redis (cache)": lambda: stores.cache_client().ping(),
    }


def require_services(checks: dict[str, Callable[[], object]] | None = None) -> None:
    """Stop, saying which service is not answering and what to do, before the benchmark
    starts (it died with a connection traceback from deep in its first request)."""
    problems = []
    for name, check in (service_checks() if checks is None else checks).items():
        try:
            check()
        except Exception as exc:  # whatever the client raises: the service is not usable
            detail = (str(exc).strip().splitlines() or [""])[0][:200]
            problems.append(f"{name} ({type(exc).__name__}: {detail})")
    if problems:
        raise SystemExit(
            "cannot run the benchmark: not answering: "
            + "; ".join(problems)
            + ". Start the services with `make services`; `python -m config.services status` "
            "shows which are up and where their logs are."
        )


# --------------------------------------------------------------------------- PostgreSQL


def pg_conninfo() -> dict[str, Any]:
    """psycopg2 keyword arguments (host, port, user, password) of the local PostgreSQL
    server; refuses a non-local one."""
    from config import env

    conn_settings = env.connections()
    problems = local_problems({"POSTGRES_HOST": conn_settings.postgres_host})
    if problems:
        raise SystemExit("refusing to run the benchmark: " + "; ".join(problems))
    return {
        "host": conn_settings.postgres_host,
        "port": conn_settings.postgres_port,
        "user": conn_settings.postgres_user,
        "password": conn_settings.postgres_password,
    }


def pg_connect(dbname: str = "postgres") -> Any:
    """A plain psycopg2 connection (autocommit) to the benchmark's PostgreSQL server."""
    import psycopg2

    conn = psycopg2.connect(dbname=dbname, connect_timeout=5, **pg_conninfo())
    conn.autocommit = True
    return conn


def database_exists(name: str) -> bool:
    with contextlib.closing(pg_connect()) as conn, conn.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        return cursor.fetchone() is not None


def ensure_database(name: str, template: str | None = None) -> bool:
    """Create the database if missing; return whether it was created."""
    check_isolation({**os.environ, "POSTGRES_DB": name})
    if database_exists(name):
        return False
    with contextlib.closing(pg_connect()) as conn, conn.cursor() as cursor:
        sql = f'CREATE DATABASE "{name}"'
        if template:
            sql += f' TEMPLATE "{template}"'
        cursor.execute(sql)
    return True


def drop_database(name: str) -> None:
    check_isolation({**os.environ, "POSTGRES_DB": name})
    with contextlib.closing(pg_connect()) as conn, conn.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def database_size(name: str) -> int:
    with contextlib.closing(pg_connect()) as conn, conn.cursor() as cursor:
        cursor.execute("SELECT pg_database_size(%s)", [name])
        return int(cursor.fetchone()[0])


# --------------------------------------------------------------------------- catalog


def say(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def shown(path: Path) -> Path:
    """``path`` as messages show it: from the checkout when inside it, else whole."""
    try:
        return path.resolve().relative_to(ROOT)
    except ValueError:
        return path


def document_count() -> int:
    """Documents behind the read alias (-1 when there is no index)."""
    from search import indices

    if not indices.indices_behind(indices.read_alias()):
        return -1
    indices.client().indices.refresh(index=indices.read_alias())
    return indices.client().count(index=indices.read_alias())["count"]


def ensure_catalog() -> dict[str, Any]:
    """Migrate the benchmark database; import the real catalog if it has no packages, and
    (re)build the index if it is missing or incomplete.

    As ``manage.py load_demo`` does, outbox entries recorded before the full rebuild are
    dropped after it: the rebuild covered them, and nothing else writes to this database.
    """
    from django.core.management import call_command
    from django.db.models import Max

    from indexing.models import OutboxEntry
    from portal.models import Package

    call_command("migrate", verbosity=0, interactive=False)
    imported = False
    if not Package.objects.exists():
        say("importing the real catalog into the benchmark database (about a minute) ...")
        started = time.monotonic()
        call_command("import_catalog", no_index=True, verbosity=0)
        imported = True
        say(f"imported in {time.monotonic() - started:.0f}s")
    rows = Package.objects.count()
    docs = document_count()
    rebuilt = False
    if imported or docs != rows:
        say(f"index holds {docs} of {rows} packages: rebuilding it ...")
        high_water = OutboxEntry.objects.aggregate(m=Max("id"))["m"] or 0
        call_command("reindex", verbosity=0)
        OutboxEntry.objects.filter(id__lte=high_water).delete()
        rebuilt = True
    return {"rows": rows, "imported": imported, "rebuilt": rebuilt}


def outbox_backlog() -> int:
    from indexing.models import OutboxEntry

    return OutboxEntry.objects.count()


# --------------------------------------------------------------------------- worker


class Worker(ForegroundWorker):
    """The benchmark's Celery worker (with embedded beat), on the benchmark's database and
    broker; the queues are purged before it starts."""

    def __init__(self, logfile: Path, concurrency: int = 4) -> None:
        self.tmp = tempfile.TemporaryDirectory(prefix="bench-beat-")
        super().__init__(
            hostname=f"bench-{os.getpid()}",
            logfile=logfile,
            schedule=Path(self.tmp.name) / "celerybeat-schedule",
            env=child_env(CELERY_TASK_ALWAYS_EAGER="0"),
            concurrency=concurrency,
        )

    def start(self, timeout: float = 120) -> None:
        purge_worker_queues()
        self.logfile.unlink(missing_ok=True)  # this run's log only
        super().start(timeout)

    def stop(self) -> None:
        super().stop()
        self.tmp.cleanup()


# --------------------------------------------------------------------------- reporting


def percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile (p in 0..100) of ``values``; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def wait_until(predicate: Callable[[], object], timeout: float, interval: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


def markdown_table(
    headers: Sequence[str], rows: Iterable[Sequence[object]], decimals: int | None = None
) -> str:
    """A Markdown table, columns padded. Floats get 3 decimals below 10 and 1 above, or
    ``decimals`` everywhere when given; None is shown as ``-``."""
    cells = [[str(h) for h in headers]] + [[_cell(v, decimals) for v in row] for row in rows]
    if not cells[1:]:
        cells.append(["-"] * len(headers))
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"
        for row in cells
    ]
    lines.insert(1, "| " + " | ".join("-" * w for w in widths) + " |")
    return "\n".join(lines)


def _cell(value: object, decimals: int | None = None) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and decimals is not None:
        return f"{value:,.{decimals}f}"
    if isinstance(value, float):
        return f"{value:.3f}" if value < 10 else f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def write_json(name: str, data: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / name
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path


def write_text(name: str, text: str) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / name
    path.write_text(text)
    return path


def machine() -> dict[str, Any]:
    """What else ran on the machine: benchmarks on a shared box are noisy."""
    return {
        "cpus": os.cpu_count(),
        "loadavg_1m": round(os.getloadavg()[0], 2),
        "other_pytest_processes": len(_other_processes("pytest")),
    }


def _other_processes(word: str) -> list[int]:
    return [pid for pid, _, cmd in processes() if word in cmd and pid != os.getpid()]


# --------------------------------------------------------------------------- processes


def processes() -> Iterator[tuple[int, int, str]]:
    """(pid, parent pid, command line) of every process (from /proc)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, IndexError, ValueError):
            continue
        yield int(entry.name), ppid, cmd


def _listening_inodes(ports: set[int]) -> dict[str, int]:
    """Socket inode -> port, for the TCP sockets listening on ``ports``."""
    inodes: dict[str, int] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                port = int(fields[1].rsplit(":", 1)[1], 16)
                if fields[3] == "0A" and port in ports:  # 0A: LISTEN
                    inodes[fields[9]] = port
    return inodes


def listening_pids(ports: Iterable[int]) -> dict[int, int]:
    """Port -> pid of the process listening on it, for the given local TCP ports (ports
    nobody listens on, or whose process cannot be inspected, are left out)."""
    inodes = _listening_inodes(set(ports))
    found: dict[int, int] = {}
    for pid, _, _ in processes():
        if len(found) == len(set(inodes.values())):
            break
        with contextlib.suppress(OSError):
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                with contextlib.suppress(OSError):
                    link = os.readlink(fd)
                    if link.startswith("socket:[") and link[8:-1] in inodes:
                        found.setdefault(inodes[link[8:-1]], pid)
    return found
