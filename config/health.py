"""Load-balancer probes.

* ``/healthz``: the process is alive (no dependencies checked).
* ``/readyz``: every dependency, each within a short timeout. **Critical** checks decide
  whether this process can serve visitors at all: PostgreSQL and the Elasticsearch read
  alias; when one fails the answer is 503 (a balancer takes the process out). The others
  (the coordination Redis, the cache Redis, a Celery worker's heartbeat, whether the live
  index holds as many documents as PostgreSQL has rows) are reported, and turn the status to
  ``degraded`` with a 200: searches still work without them (uncached, or with indexing
  catching up later), and taking every web process out because the worker died would turn a
  lag into an outage. The JSON body says which check failed and why.

A non-critical check must not make the answer late either: the balancer's check gives up
after a second (``config/services/web.py``), and a late answer is a failed one. The Redis
checks (both servers, and the worker's heartbeat, which lives in Redis) run side by side in
a small thread pool while the critical ones run, and have ``NON_CRITICAL_BUDGET`` seconds
together; one without an answer by then has failed ("no answer within 0.5 s"). They ran one
after another on Redis's 2 s timeout and a retry: a hung cache Redis (SIGSTOP) made /readyz
take 4 s, and HAProxy took every web instance out, a 503 for everyone. A check still hanging
from an earlier probe is not started again (the pool would fill with them).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from django.db import connection, transaction
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from indexing.status import WORKER_MAX_AGE, counts, heartbeat_age
from search import stores
from search.indices import client, read_alias
from search.stores import Memo

HEARTBEAT_MAX_AGE = WORKER_MAX_AGE  # one rule for /readyz and the status page
COUNTS_TTL = 10.0  # the index/row count check is remembered this long per process


def _postgres() -> str:
    try:
        # SET LOCAL lasts one transaction (in autocommit it did nothing).
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL statement_timeout = 2000")
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception:
        # Drop a broken persistent connection so the next probe reconnects.
        connection.close()
        raise
    return "ok"


def _redis() -> str:
    info = stores.info(stores.coordination())
    return f"ok ({info['used_memory']} bytes, {info['policy']}, aof {info['aof']})"


def _redis_cache() -> str:
    info = stores.info(stores.cache_client())
    return (
        f"ok ({info['used_memory']} of {info['maxmemory']} bytes, {info['policy']}, "
        f"{info['evicted_keys']} evicted)"
    )


def _elasticsearch() -> str:
    es = client().options(request_timeout=2, max_retries=0)
    behind = list(es.indices.get_alias(name=read_alias()).keys())
    if not behind:
        raise RuntimeError(f"alias {read_alias()} points at no index")
    # A search of nothing, as a visitor's would go: an index that exists but cannot be
    # searched (closed, its shards unassigned) answered the alias lookup all the same.
    es.search(index=read_alias(), size=0, track_total_hits=False, request_cache=False)
    return f"ok ({behind[0]})"


def _worker() -> str:
    age = heartbeat_age()
    if age is None:
        raise RuntimeError("no worker heartbeat yet (is a Celery worker with beat running?)")
    if age > HEARTBEAT_MAX_AGE:
        raise RuntimeError(f"last worker heartbeat {age:.0f}s ago")
    return f"ok ({age:.0f}s ago)"


_recent_counts = Memo(counts, ttl=COUNTS_TTL)


def _index() -> str:
    found = _recent_counts.get()
    if found.mismatch:
        raise RuntimeError(found.describe())
    return f"ok ({found.describe()})"


CHECKS: dict[str, Callable[[], str]] = {
    "postgres": _postgres,
    "elasticsearch": _elasticsearch,
    "redis": _redis,
    "redis_cache": _redis_cache,
    "worker": _worker,
    "index": _index,
}
CRITICAL = {"postgres", "elasticsearch"}
# Run side by side, within NON_CRITICAL_BUDGET seconds together (module docstring).
CONCURRENT = ("redis", "redis_cache", "worker")
NON_CRITICAL_BUDGET = 0.5
_pool = ThreadPoolExecutor(max_workers=len(CONCURRENT), thread_name_prefix="readyz")
_running: dict[str, Future[tuple[str, bool, float]]] = {}
_running_lock = threading.Lock()


def _result(name: str, detail: str, ok: bool, ms: float) -> dict[str, Any]:
    return {"ok": ok, "critical": name in CRITICAL, "detail": detail, "ms": ms}


def _timed(check: Callable[[], str]) -> tuple[str, bool, float]:
    started = time.monotonic()
    try:
        detail, ok = check(), True
    except Exception as exc:  # any failure of a dependency is a failed check
        detail, ok = f"{type(exc).__name__}: {exc}"[:400], False
    return detail, ok, round((time.monotonic() - started) * 1000, 1)


def _start(name: str) -> Future[tuple[str, bool, float]]:
    """The check's run: a new one, or the one an earlier probe started that still hangs."""
    with _running_lock:
        previous = _running.get(name)
        if previous is not None and not previous.done():
            return previous
        _running[name] = _pool.submit(_timed, CHECKS[name])
        return _running[name]


@never_cache
@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@never_cache
@require_safe
def readyz(request: HttpRequest) -> JsonResponse:
    started = time.monotonic()
    pending = {name: _start(name) for name in CONCURRENT}
    results: dict[str, Any] = {}
    for name, check in CHECKS.items():
        if name not in pending:
            results[name] = _result(name, *_timed(check))
    for name, future in pending.items():
        left = max(0.0, started + NON_CRITICAL_BUDGET - time.monotonic())
        try:
            results[name] = _result(name, *future.result(timeout=left))
        except TimeoutError:
            waited = round((time.monotonic() - started) * 1000, 1)
            detail = f"no answer within {NON_CRITICAL_BUDGET} s"
            results[name] = _result(name, detail, False, waited)
    results = {name: results[name] for name in CHECKS}  # in the documented order
    if not all(results[name]["ok"] for name in CRITICAL):
        status = "unavailable"
    elif all(check["ok"] for check in results.values()):
        status = "ready"
    else:
        status = "degraded"
    return JsonResponse(
        {"status": status, "checks": results}, status=503 if status == "unavailable" else 200
    )
