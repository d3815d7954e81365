"""The state of search indexing, for ``search_status`` and the admin's status page."""

from __future__ import annotations

import contextlib
import time
from typing import Any

from django.core.cache import cache

from indexing.tasks import ERRORS_KEY, HEARTBEAT_KEY, STATS_KEY
from indexing.writer import outbox_stats
from portal.models import Package
from search import freshness, indices

LAST_REBUILD_KEY = "indexing:last-rebuild"


def record_rebuild(result: Any) -> None:
    """Remember the last full rebuild (shown on the status page)."""
    with contextlib.suppress(Exception):
        cache.set(
            LAST_REBUILD_KEY,
            {
                "index": result.index,
                "documents": result.documents,
                "seconds": round(result.seconds, 1),
                "finished_at": time.time(),
            },
            timeout=None,
        )


def _cached(key: str) -> Any:
    try:
        return cache.get(key)
    except Exception:
        return None


def queue_lengths() -> dict[str, int | None]:
    """Messages waiting in each Celery queue (Redis broker lists), None if unreachable."""
    import redis
    from django.conf import settings
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    names = ("indexing", "maintenance", "celery")
    try:
        broker = redis.Redis.from_url(
            settings.CELERY_BROKER_URL, socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0)
        )
        return {name: int(broker.llen(name)) for name in names}
    except redis.RedisError:
        return dict.fromkeys(names)


def collect() -> dict[str, Any]:
    """Aliases, counts, backlog and freshness lag, heartbeat, last rebuild, recent errors."""
    es = indices.client()
    read = indices.indices_behind(indices.read_alias())
    write = indices.indices_behind(indices.write_alias())
    docs = es.count(index=indices.read_alias())["count"] if read else 0
    heartbeat = _cached(HEARTBEAT_KEY)
    return {
        "read_alias": {"name": indices.read_alias(), "indices": read},
        "write_alias": {"name": indices.write_alias(), "indices": write},
        "documents": docs,
        "rows": Package.objects.count(),
        "outbox": outbox_stats(),
        "last_sweep": _cached(STATS_KEY),
        "worker_heartbeat_age_s": round(time.time() - float(heartbeat), 1) if heartbeat else None,
        "generation": freshness.current_generation(),
        "last_rebuild": _cached(LAST_REBUILD_KEY),
        "recent_errors": _cached(ERRORS_KEY) or [],
        "queues": queue_lengths(),
    }
