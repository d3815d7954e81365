"""Load-balancer probes.

* ``/healthz``: the process is alive (no dependencies checked).
* ``/readyz``: every dependency answers within a short timeout: PostgreSQL, Redis, the
  Elasticsearch read alias, and a Celery worker heartbeat (written by the outbox sweeper).
  200 when all pass, 503 otherwise; the JSON body says which check failed and why.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

HEARTBEAT_MAX_AGE = 60.0


def _postgres() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL statement_timeout = 2000")
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception:
        # Drop a broken persistent connection so the next probe reconnects.
        connection.close()
        raise
    return "ok"


def _redis() -> str:
    cache.set("readyz:probe", 1, 10)
    if cache.get("readyz:probe") != 1:
        raise RuntimeError("Redis did not return what was written")
    return "ok"


def _elasticsearch() -> str:
    from search.indices import client, read_alias

    es = client().options(request_timeout=2, max_retries=0)
    behind = list(es.indices.get_alias(name=read_alias()).keys())
    if not behind:
        raise RuntimeError(f"alias {read_alias()} points at no index")
    return f"ok ({behind[0]})"


def _worker() -> str:
    from indexing.tasks import HEARTBEAT_KEY

    beat = cache.get(HEARTBEAT_KEY)
    if beat is None:
        raise RuntimeError("no worker heartbeat yet (is a Celery worker with beat running?)")
    age = time.time() - float(beat)
    if age > HEARTBEAT_MAX_AGE:
        raise RuntimeError(f"last worker heartbeat {age:.0f}s ago")
    return f"ok ({age:.0f}s ago)"


CHECKS: dict[str, Callable[[], str]] = {
    "postgres": _postgres,
    "redis": _redis,
    "elasticsearch": _elasticsearch,
    "worker": _worker,
}


@never_cache
@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@never_cache
@require_safe
def readyz(request: HttpRequest) -> JsonResponse:
    results: dict[str, Any] = {}
    ready = True
    for name, check in CHECKS.items():
        started = time.monotonic()
        try:
            detail = check()
            ok = True
        except Exception as exc:
            detail, ok = f"{type(exc).__name__}: {exc}"[:300], False
            ready = False
        results[name] = {
            "ok": ok,
            "detail": detail,
            "ms": round((time.monotonic() - started) * 1000, 1),
        }
    return JsonResponse(
        {"status": "ready" if ready else "unavailable", "checks": results},
        status=200 if ready else 503,
    )
