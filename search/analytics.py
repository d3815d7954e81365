"""Search analytics, logged off the request path.

A search request only appends one small entry to a Redis list (well under a millisecond; if
Redis is down the entry is dropped with a warning, and the search is unaffected). A periodic
task (:func:`flush`) drains the list, merges as-you-type fragments into the final query
(``vi``, ``vim``, ``vim plugin`` from the same visitor within a few seconds count once, as
``vim plugin``), and adds the counts to :class:`~search.models.QueryStat` in one statement.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime
from typing import Any

import redis
from django.conf import settings
from django.db import connection
from redis.backoff import NoBackoff
from redis.retry import Retry

from search.models import normalise_query

logger = logging.getLogger(__name__)

LIST_KEY = "search:query-log"
MERGE_WINDOW = 15.0  # seconds within which a longer query replaces its prefix
MAX_BATCH = 20_000
_client: redis.Redis | None = None
_down_until = 0.0


def make_client(url: str) -> redis.Redis:
    """A client that fails fast: short timeouts and no retries (a lost entry is fine)."""
    return redis.Redis.from_url(
        url, socket_connect_timeout=0.2, socket_timeout=0.5, retry=Retry(NoBackoff(), 0)
    )


def _redis() -> redis.Redis:
    global _client
    if _client is None:
        _client = make_client(settings.CACHES["default"]["LOCATION"])
    return _client


def _key() -> str:
    return f"{settings.CACHES['default'].get('KEY_PREFIX', '')}:{LIST_KEY}"


def log_search(query: str, total: int, visitor: str) -> None:
    """Record one search (called by the views; never raises, never blocks for long)."""
    global _down_until
    normal = normalise_query(query)
    if not normal or time.monotonic() < _down_until:
        return
    entry = json.dumps({"t": time.time(), "v": visitor[:64], "q": normal[:200], "n": total})
    try:
        _redis().lpush(_key(), entry)
    except redis.RedisError as exc:
        _down_until = time.monotonic() + 5.0
        logger.warning("search analytics: cannot log a query (%s); dropping for a while", exc)


def merge_fragments(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Drop entries that a later, longer query of the same visitor extends."""
    by_visitor: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for entry in entries:
        by_visitor[entry["v"]].append(entry)
    kept = []
    for visits in by_visitor.values():
        visits.sort(key=lambda e: e["t"])
        for i, entry in enumerate(visits):
            superseded = any(
                later["t"] - entry["t"] <= MERGE_WINDOW
                and later["q"] != entry["q"]
                and later["q"].startswith(entry["q"])
                for later in visits[i + 1 :]
            )
            if not superseded:
                kept.append(entry)
    return kept


def flush() -> int:
    """Move logged searches into QueryStat; return how many searches were counted."""
    client = _redis()
    pipe = client.pipeline()
    pipe.lrange(_key(), -MAX_BATCH, -1)
    pipe.ltrim(_key(), 0, -MAX_BATCH - 1)
    raw, _ = pipe.execute()
    entries = []
    for item in raw:
        try:
            entries.append(json.loads(item))
        except (ValueError, TypeError):
            continue
    kept = merge_fragments(entries)
    counts: Counter[tuple[str, str]] = Counter()
    zero: Counter[tuple[str, str]] = Counter()
    for entry in kept:
        day = datetime.fromtimestamp(entry["t"], UTC).date().isoformat()
        counts[(day, entry["q"])] += 1
        if entry["n"] == 0:
            zero[(day, entry["q"])] += 1
    if counts:
        rows = [(day, q, n, zero[(day, q)]) for (day, q), n in counts.items()]
        with connection.cursor() as cursor:
            from psycopg2.extras import execute_values

            execute_values(
                cursor,
                """
                INSERT INTO search_querystat (day, query, searches, zero_results) VALUES %s
                ON CONFLICT (day, query) DO UPDATE SET
                    searches = search_querystat.searches + EXCLUDED.searches,
                    zero_results = search_querystat.zero_results + EXCLUDED.zero_results
                """,
                rows,
            )
    return len(kept)
