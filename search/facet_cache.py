"""The facet-count cache in Redis.

An entry is a search's *summary*: what its normalised query and filters determine, whatever
the page and sort: the facet counts, the total, whether typo tolerance was used and the "did
you mean" suggestion (``search.service.search`` fills and reads it). A key is derived from the
normalised query and filters (not paging or sort), the concrete
index behind the read alias and the index generation, which every visible index write
bumps (``search.freshness``; while a write is in progress the cache is not used at all): a
cached count is never served once an edit is searchable.
A TTL is only a backstop. A short lock per key lets one request compute a hot key while the
others wait briefly for it (no stampede). If Redis is down, searches run uncached: a circuit
breaker skips the cache for a few seconds instead of waiting on Redis for every request.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Sequence
from typing import Any

from django.core.cache import cache

from config.redis_cache import decode
from search import freshness
from search.params import SearchParams

logger = logging.getLogger(__name__)

TTL = 300
LOCK_TTL = 5
WAIT_SECONDS = 0.25
BREAKER_SECONDS = 5.0
VERSION = 2  # bump when the shape of a cached entry changes

_down_until = 0.0


def _available() -> bool:
    return time.monotonic() >= _down_until


def _trip(exc: Exception) -> None:
    global _down_until
    if _available():
        logger.warning("facet cache unavailable, searching uncached for a while: %s", exc)
    _down_until = time.monotonic() + BREAKER_SECONDS


def _digest(params: SearchParams, facet_names: list[str], variants: Sequence[str]) -> str:
    payload = json.dumps(
        [VERSION, params.cache_key_parts(), facet_names, list(variants)],
        sort_keys=True,
        ensure_ascii=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:32]


_generation_seen: int | None = None  # the last generation this process saw: a good guess


def lookup(
    index: str, params: SearchParams, facet_names: list[str], variants: Sequence[str] = ()
) -> tuple[str | None, dict[str, Any] | None]:
    """This search's cache key (None: the cache cannot be used now) and its cached summary.

    ``variants`` are the query's synonym expansions: an editor's synonym change alters what
    the query matches without an index write, so it must change the key as well.

    The generation changes far less often than searches come, so the entry under the
    generation this process saw last is fetched in the same round trip as the current
    generation; only when the generation has moved does it take a second one."""
    global _generation_seen
    if not _available():
        return None, None
    digest = _digest(params, facet_names, variants)
    guess = _generation_seen
    try:
        generation, raw = freshness.snapshot(
            None if guess is None else f"facets:{index}:{guess}:{digest}"
        )
    except Exception as exc:
        _trip(exc)
        return None, None
    if generation is None:
        return None, None  # an index write is in progress: count live
    _generation_seen = generation
    cache_key = f"facets:{index}:{generation}:{digest}"
    if generation != guess:
        return cache_key, get(cache_key)
    if raw is None:
        return cache_key, None
    try:
        return cache_key, decode(raw)
    except Exception as exc:  # an unreadable entry: compute it again
        logger.warning("facet cache: unreadable entry %s (%s)", cache_key, exc)
        return cache_key, None


def get(cache_key: str) -> dict[str, Any] | None:
    try:
        return cache.get(cache_key)
    except Exception as exc:
        _trip(exc)
        return None


def put(cache_key: str, summary: dict[str, Any]) -> None:
    try:
        cache.set(cache_key, summary, TTL)
    except Exception as exc:
        _trip(exc)


def lock(cache_key: str) -> bool:
    """True if this request should compute the counts (it got the lock, or Redis is down)."""
    try:
        return bool(cache.add(f"{cache_key}:lock", 1, LOCK_TTL))
    except Exception as exc:
        _trip(exc)
        return True


def unlock(cache_key: str) -> None:
    try:
        cache.delete(f"{cache_key}:lock")
    except Exception as exc:
        _trip(exc)


def wait_for(cache_key: str) -> dict[str, Any] | None:
    """Wait briefly for another request to fill the key."""
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline and _available():
        time.sleep(0.01)
        value = get(cache_key)
        if value is not None:
            return value
    return None
