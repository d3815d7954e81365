"""Search analytics, logged off the request path, counted exactly once.

A search request appends one small entry to a list in the coordination Redis and trims the
list to ``SEARCH_QUERY_LOG_MAX`` entries in the same round trip (well under a millisecond; a
flood of searches while no worker flushes costs bounded memory, dropping the oldest
entries). If Redis is down the entry is dropped with a warning, a breaker skips logging for
a few seconds, and the search is unaffected.

A periodic task (:func:`flush`) moves the log into :class:`~search.models.QueryStat`:

1. One atomic step moves up to ``MAX_BATCH`` of the oldest entries into a *batch* key with
   a fresh id (or finds the batch an earlier flush left there: it was killed, or hit its
   time limit).
2. Fragments are merged (``vi``, ``vim``, ``vim plugin`` from one visitor within a few
   seconds count once, as ``vim plugin``), in time linear in the entries.
3. The counts and the batch id are written in one database transaction; a batch whose id
   is already recorded (the flush died after committing) is not counted again.
4. The batch key is deleted.

So a flush that dies at any point loses nothing and counts nothing twice.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import uuid
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import redis
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Sum
from django.utils import timezone
from psycopg2.extras import execute_values

from search import stores
from search.models import QueryLogBatch, QueryStat, normalise_query

logger = logging.getLogger(__name__)

LIST_KEY = "search:query-log"
BATCH_KEY = "search:query-log:batch"  # a hash: id, entries (JSON list)
MERGE_WINDOW = 15.0  # seconds within which a longer query replaces its prefix
MAX_BATCH = 20_000
breaker = stores.Breaker("search analytics", 5.0)

# KEYS: log, batch. ARGV: max entries, a new batch id. Returns {id, entries}: the pending
# batch if one exists, else the oldest entries of the log moved into a new one.
_TAKE_BATCH = """
local pending = redis.call('HMGET', KEYS[2], 'id', 'entries')
if pending[1] then
    return pending
end
local entries = redis.call('LRANGE', KEYS[1], -tonumber(ARGV[1]), -1)
if #entries == 0 then
    return {false, false}
end
redis.call('LTRIM', KEYS[1], 0, -#entries - 1)
local encoded = cjson.encode(entries)
redis.call('HSET', KEYS[2], 'id', ARGV[2], 'entries', encoded)
return {ARGV[2], encoded}
"""
# KEYS: batch. ARGV: its id. Deletes the batch if it is still that one.
_DONE = """
if redis.call('HGET', KEYS[1], 'id') == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""
_scripts = stores.Memo(
    lambda: (
        stores.coordination().register_script(_TAKE_BATCH),
        stores.coordination().register_script(_DONE),
    )
)


def log_limit() -> int:
    return int(getattr(settings, "SEARCH_QUERY_LOG_MAX", 100_000))


def visitor_key(request: Any) -> str:
    """An opaque per-visitor key for merging as-you-type fragments (no address is stored)."""
    raw = request.META.get("REMOTE_ADDR", "") + request.META.get("HTTP_USER_AGENT", "")[:200]
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def log_search(query: str, total: int | None, visitor: str) -> None:
    """Record one search (called by the views; never raises, never blocks for long);
    ``total`` None: its total does not tell whether the words found anything."""
    normal = normalise_query(query)
    if not normal or breaker.open:
        return
    entry = json.dumps({"t": time.time(), "v": visitor[:64], "q": normal[:200], "n": total})
    started = time.monotonic()
    try:
        pipe = stores.coordination().pipeline(transaction=False)
        pipe.lpush(stores.key(LIST_KEY), entry)
        pipe.ltrim(stores.key(LIST_KEY), 0, log_limit() - 1)
        pipe.execute()
    except redis.RedisError as exc:
        breaker.trip(exc, waited=time.monotonic() - started)


def merge_fragments(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Drop entries that a later, longer query of the same visitor (within
    ``MERGE_WINDOW`` seconds) extends.

    Linear in the entries (times the query length): each visitor's entries are walked from
    the newest back, remembering for every proper prefix of a query seen so far the earliest
    time a query extending it was searched; an entry is superseded when its own query is such
    a prefix, extended soon enough. (Comparing every pair was quadratic: a visitor with
    20,000 entries in a batch took minutes.)"""
    by_visitor: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for entry in entries:
        by_visitor[entry["v"]].append(entry)
    kept = []
    for visits in by_visitor.values():
        visits.sort(key=lambda e: e["t"])
        extended_at: dict[str, float] = {}  # prefix -> earliest later time it was extended
        survivors = []
        for entry in reversed(visits):
            later = extended_at.get(entry["q"])
            if later is None or later - entry["t"] > MERGE_WINDOW:
                survivors.append(entry)
            query, at = entry["q"], entry["t"]
            for end in range(1, len(query)):
                extended_at[query[:end]] = at  # walking back in time: the earliest so far
        kept.extend(reversed(survivors))
    return kept


def _count(entries: list[dict[str, Any]]) -> list[tuple[str, str, int, int, int]]:
    """(day, query, searches, found nothing, found something) per day and query; a
    search logged without a total (a filtered one) is neither."""
    counts: Counter[tuple[str, str]] = Counter()
    zero: Counter[tuple[str, str]] = Counter()
    found: Counter[tuple[str, str]] = Counter()
    for entry in entries:
        key = (datetime.fromtimestamp(entry["t"], UTC).date().isoformat(), entry["q"])
        counts[key] += 1
        total = entry["n"]
        if total == 0:
            zero[key] += 1
        elif isinstance(total, int) and total > 0:
            found[key] += 1
    return [(day, q, n, zero[(day, q)], found[(day, q)]) for (day, q), n in counts.items()]


def _store(batch_id: str, rows: list[tuple[str, str, int, int, int]]) -> bool:
    """Add the counts and record the batch, in one transaction; False if it was counted."""
    try:
        with transaction.atomic():
            QueryLogBatch.objects.create(batch_id=batch_id)
            if rows:
                with connection.cursor() as cursor:
                    execute_values(
                        cursor,
                        """
                        INSERT INTO search_querystat
                            (day, query, searches, zero_results, found_results)
                        VALUES %s
                        ON CONFLICT (day, query) DO UPDATE SET
                            searches = search_querystat.searches + EXCLUDED.searches,
                            zero_results = search_querystat.zero_results + EXCLUDED.zero_results,
                            found_results =
                                search_querystat.found_results + EXCLUDED.found_results
                        """,
                        rows,
                    )
    except IntegrityError:
        return False
    return True


def flush(max_batches: int = 10) -> int:
    """Move logged searches into QueryStat; return how many searches were counted."""
    take, done = _scripts.get()
    counted = 0
    for _ in range(max_batches):
        batch_id, encoded = take(
            keys=[stores.key(LIST_KEY), stores.key(BATCH_KEY)],
            args=[MAX_BATCH, uuid.uuid4().hex],
        )
        if not batch_id:
            break
        entries = []
        for item in json.loads(encoded):
            try:
                entries.append(json.loads(item))
            except (ValueError, TypeError):
                continue
        kept = merge_fragments(entries)
        if _store(batch_id.decode(), _count(kept)):
            counted += len(kept)
        done(keys=[stores.key(BATCH_KEY)], args=[batch_id])
        if len(entries) < MAX_BATCH:
            break
    QueryLogBatch.forget_old()
    return counted


POPULAR_DAYS = 30
POPULAR_KEPT = 5000  # the most frequent searches kept per process for autocomplete
POPULAR_TTL = 300.0


def _load_popular() -> list[str]:
    """Searches of the last ``POPULAR_DAYS`` days known to have found something (unfiltered,
    with hits), most frequent first. A filtered search's total says nothing about its
    words: counted as found, one visitor's filtered search for any text became everyone's
    suggestion."""
    since = timezone.now().date() - timedelta(days=POPULAR_DAYS)
    rows = (
        QueryStat.objects.filter(day__gte=since)
        .values("query")
        .annotate(total=Sum("searches"), found=Sum("found_results"))
        .filter(found__gt=0)
        .order_by("-total", "query")[:POPULAR_KEPT]
    )
    return [row["query"] for row in rows]


# Kept per process, not asked per keystroke: a database query in every uncached suggestion
# cost cold autocomplete a third of its throughput (521 -> 372 a second at concurrency 8,
# p95 22.3 -> 32.3 ms); filtering 5,000 strings in Python is tens of microseconds.
_popular = stores.Memo(_load_popular, ttl=POPULAR_TTL)


def popular_queries(prefix: str, limit: int = 4) -> list[str]:
    """Searches visitors made lately that start with ``prefix`` and found something, the
    most frequent first: the query suggestions of autocomplete (as of up to
    ``POPULAR_TTL`` seconds ago)."""
    start = prefix.lower()
    found = []
    for query in _popular.get():
        if query.startswith(start):
            found.append(query)
            if len(found) == limit:
                break
    return found
