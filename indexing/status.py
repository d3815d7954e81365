"""The state of search indexing: recorded by the tasks and commands, read by
``search_status``, the admin's status page and ``/readyz``.

What is recorded (the worker's heartbeat, the outbox statistics, the last rebuild, recent
errors) lives in the coordination Redis, which never evicts: in the cache Redis a heartbeat
could be evicted by a burst of distinct searches and ``/readyz`` would report the worker
dead.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import redis
from django.conf import settings
from django.db import connection
from elasticsearch import ApiError, TransportError

from indexing.lease import holder
from indexing.writer import outbox_stats
from search import freshness, indices, stores

HEARTBEAT_KEY = "indexing:worker-heartbeat"
STATS_KEY = "indexing:outbox-stats"
ERRORS_KEY = "indexing:recent-errors"
# Per index prefix: deployments (and benchmarks) sharing a Redis and a key prefix with their
# own indices showed each other's last rebuild.
LAST_REBUILD_KEY = "indexing:last-rebuild:{prefix}"
MAX_ERRORS = 20
# An index behind the write alias alone while no rebuild holds the lease: a rebuild that was
# killed left it, and the worker keeps writing every change to it ("being built" forever).
ABANDONED = (
    "abandoned: an interrupted rebuild left it behind the write alias, and every change is "
    "still written to it; remove it with `manage.py search_status --remove-orphans`"
)
WORKER_MAX_AGE = 60.0  # seconds without a heartbeat before the worker counts as gone


def _put(name: str, value: Any, ttl: float | None = None) -> None:
    stores.coordination().set(
        stores.key(name), json.dumps(value), px=int(ttl * 1000) if ttl else None
    )


def _read(name: str) -> Any:
    """A recorded value (None if never recorded); raises ``RedisError``."""
    raw = stores.coordination().get(stores.key(name))
    return json.loads(raw) if raw else None


def _get(name: str) -> Any:
    """A recorded value, None also when Redis cannot be asked."""
    try:
        return _read(name)
    except redis.RedisError:
        return None


def record_heartbeat(stats: dict[str, Any]) -> None:
    """The sweeper's beat: the worker lives, and this is the backlog it saw."""
    _put(STATS_KEY, stats, ttl=300)
    _put(HEARTBEAT_KEY, time.time())


def heartbeat_age() -> float | None:
    """Seconds since the worker's last heartbeat, None if it never beat; raises
    ``RedisError`` when that cannot be known (it read as "no heartbeat yet")."""
    beat = _read(HEARTBEAT_KEY)
    return round(time.time() - float(beat), 1) if beat is not None else None


def record_rebuild(result: Any) -> None:
    """Remember the last full rebuild (shown on the status page)."""
    _put(
        LAST_REBUILD_KEY.format(prefix=settings.SEARCH_INDEX_PREFIX),
        {
            "index": result.index,
            "documents": result.documents,
            "seconds": round(result.seconds, 1),
            "finished_at": time.time(),
        },
    )


def last_rebuild() -> dict[str, Any] | None:
    """This deployment's last full rebuild (its index prefix's), or None."""
    return _get(LAST_REBUILD_KEY.format(prefix=settings.SEARCH_INDEX_PREFIX))


def record_error(exc: BaseException) -> None:
    """Keep the last indexing errors for the status page (best effort)."""
    entry = json.dumps({"at": time.time(), "error": f"{type(exc).__name__}: {exc}"[:500]})
    try:
        pipe = stores.coordination().pipeline(transaction=False)
        pipe.lpush(stores.key(ERRORS_KEY), entry)
        pipe.ltrim(stores.key(ERRORS_KEY), 0, MAX_ERRORS - 1)
        pipe.execute()
    except redis.RedisError:
        pass  # the error itself is logged by the caller


def recent_errors() -> list[dict[str, Any]]:
    try:
        raw = stores.coordination().lrange(stores.key(ERRORS_KEY), 0, MAX_ERRORS - 1)
    except redis.RedisError:
        return []
    return [json.loads(item) for item in raw]


def queue_lengths() -> dict[str, int | None]:
    """Messages waiting in each Celery queue (Redis broker lists), None if unreachable."""
    names = ("indexing", "maintenance", "celery")
    try:
        broker = stores.redis_client(settings.CELERY_BROKER_URL)
        return {name: int(broker.llen(name)) for name in names}
    except redis.RedisError:
        return dict.fromkeys(names)


@dataclass
class Counts:
    documents: int
    rows: int
    backlog: int
    live: bool = True  # whether an index is live (behind the read alias)

    @property
    def mismatch(self) -> bool:
        """More difference between documents and rows than pending changes can explain."""
        return abs(self.documents - self.rows) > self.backlog

    def describe(self) -> str:
        text = f"{self.documents} documents for {self.rows} rows"
        if self.mismatch and not self.live:
            return text + ": there is no live index; run `manage.py reindex`"
        if self.mismatch:
            text += (
                f" ({self.backlog} changes pending): the index is incomplete or has extra "
                "documents; run `manage.py search_status --verify --repair`, or "
                "`manage.py reindex`"
            )
        return text


def counts() -> Counts:
    """Documents in the live index against rows in PostgreSQL, and the pending backlog."""
    es = indices.client()
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM portal_package")
        rows = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM indexing_outbox")
        backlog = cursor.fetchone()[0]
    state = indices.alias_state(es)
    documents = es.count(index=indices.read_alias())["count"] if state.live else 0
    return Counts(documents, rows, backlog, live=state.live is not None)


def redis_servers() -> dict[str, Any]:
    """Memory, cap, policy and evictions of both Redis servers (None: unreachable)."""
    found: dict[str, Any] = {}
    for name, client in (("coordination", stores.coordination), ("cache", stores.cache_client)):
        try:
            found[name] = stores.info(client())
        except redis.RedisError as exc:
            found[name] = {"error": str(exc)}
    return found


def collect() -> dict[str, Any]:
    """Everything the status page and ``search_status`` show. What comes from Elasticsearch
    (aliases, indices, counts, schemas) and what does not (the outbox, the worker, queues,
    Redis) are gathered apart: with Elasticsearch down (``engine_error``) the rest is still
    shown, which is when the backlog matters most. With the coordination Redis down
    (``coordination_error``) what it records is unknown, not absent."""
    found = _local_state()
    try:
        found.update(_engine_state())
        found["engine_error"] = None
    except (ApiError, TransportError) as exc:
        found["engine_error"] = f"Elasticsearch is not reachable: {exc}"
        return found
    if found["coordination_error"] is None and holder() is None:  # asked after the aliases
        for index in found["indices"]:
            if index["role"] == "being built":  # and no rebuild is running
                index["role"] = ABANDONED
    return found


def _engine_state() -> dict[str, Any]:
    es = indices.client()
    state = indices.alias_state(es)
    found = counts()
    return {
        "read_alias": {"name": indices.read_alias(), "indices": state.read},
        "write_alias": {"name": indices.write_alias(), "indices": state.write},
        "previous_alias": {"name": indices.previous_alias(), "indices": state.previous},
        "indices": [{"name": name, "role": state.role(name)} for name in state.all],
        "orphans": state.orphans,
        "documents": found.documents,
        "rows": found.rows,
        "count_mismatch": found.mismatch,
        # False: the live index was built with another schema (analysis or mappings); a
        # `manage.py reindex` makes the change take effect.
        "schema_current": indices.schema_is_current(state.live, es) if state.live else None,
        # The same for the rollback target: what `reindex --rollback` would make live.
        "rollback_target": (target := state.rollback_target),
        "rollback_schema_current": indices.schema_is_current(target, es) if target else None,
        "counts": found.describe(),
    }


def _local_state() -> dict[str, Any]:
    # Asking for the heartbeat also says whether the coordination Redis answers; what it
    # records is unknown while it does not (and is not asked for).
    age, coordination_error = None, None
    try:
        age = heartbeat_age()
    except redis.RedisError as exc:
        coordination_error = f"the coordination Redis is unreachable: {exc}"
    recorded = coordination_error is None
    return {
        "rollback_hours": settings.SEARCH_ROLLBACK_HOURS,
        "outbox": outbox_stats(),
        "coordination_error": coordination_error,
        "last_sweep": _get(STATS_KEY) if recorded else None,
        "worker_heartbeat_age_s": age,
        "worker_max_age_s": WORKER_MAX_AGE,
        "worker_stale": recorded and (age is None or age > WORKER_MAX_AGE),
        "generation": freshness.current_generation() if recorded else None,
        "lease": holder() if recorded else None,
        "last_rebuild": last_rebuild() if recorded else None,
        "recent_errors": recent_errors() if recorded else [],
        "queues": queue_lengths(),
        "redis": redis_servers(),
    }
