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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from django.core.cache import cache

from search import freshness, stores
from search.params import SearchParams

logger = logging.getLogger(__name__)

TTL = 300
LOCK_TTL = 5
WAIT_SECONDS = 0.25
BREAKER_SECONDS = 5.0
VERSION = 2  # bump when the shape of a cached entry changes

breaker = stores.Breaker("search cache", BREAKER_SECONDS)


def _available() -> bool:
    return not breaker.open


def _trip(exc: Exception) -> None:
    breaker.trip(exc)


def _digest(params: SearchParams, facet_names: list[str], variants: Sequence[str]) -> str:
    payload = json.dumps(
        [VERSION, params.cache_key_parts(), facet_names, list(variants)],
        sort_keys=True,
        ensure_ascii=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:32]


@dataclass
class Cached:
    """What :func:`lookup` found: the summary key (None: the cache cannot be used now), the
    summary, and the page of hits (under :func:`page_key`), each None when not cached."""

    key: str | None = None
    summary: dict[str, Any] | None = None
    page: dict[str, Any] | None = None


def page_key(summary_key: str, page: str) -> str:
    """Where one page of a search's hits is kept: under its summary's key (same index, same
    generation), so it is exactly as fresh as the counts."""
    return f"{summary_key}:page:{hashlib.sha256(page.encode()).hexdigest()[:16]}"


def lookup(
    index: str,
    params: SearchParams,
    facet_names: list[str],
    variants: Sequence[str] = (),
    page: str | None = None,
) -> Cached:
    """This search's cache key, its cached summary and (if ``page`` describes the page
    wanted) its cached page of hits.

    ``variants`` are the query's synonym expansions: an editor's synonym change alters what
    the query matches without an index write, so it must change the key as well."""
    digest = _digest(params, facet_names, variants)

    def keys(generation: int) -> list[str]:
        summary_key = f"facets:{index}:{generation}:{digest}"
        return [summary_key] + ([page_key(summary_key, page)] if page is not None else [])

    wanted, values = _fetch(keys)
    if wanted is None:
        return Cached()
    return Cached(wanted[0], values[0], values[1] if page is not None else None)


def lookup_value(index: str, name: str) -> tuple[str | None, Any]:
    """Another value kept per index generation (autocomplete suggestions): its key (None:
    the cache cannot be used now) and its cached value, or None."""
    digest = hashlib.sha256(name.encode()).hexdigest()[:32]
    wanted, values = _fetch(lambda generation: [f"values:{index}:{generation}:{digest}"])
    if wanted is None:
        return None, None
    return wanted[0], values[0]


def _fetch(keys: Callable[[int], list[str]]) -> tuple[list[str] | None, list[Any]]:
    """The keys for the current generation and their values (None for a missing one); no
    keys when the cache cannot be used (an index write in progress, Redis unreachable).

    Two round trips: the generation from the coordination Redis, then the entries from the
    cache Redis (they are separate servers, so that the cache may evict)."""
    if not _available():
        return None, []
    try:
        generation = freshness.snapshot()
        if generation is None:
            return None, []  # an index write is in progress: compute live
        wanted = keys(generation)
        found = stores.cache().get_many(wanted)
    except Exception as exc:
        _trip(exc)
        return None, []
    return wanted, [found.get(k) for k in wanted]


def get(cache_key: str) -> dict[str, Any] | None:
    try:
        return cache.get(cache_key)
    except Exception as exc:
        _trip(exc)
        return None


def put(cache_key: str, value: Any) -> None:
    """Keep a summary, a page of hits or another per-generation value (TTL as backstop)."""
    try:
        cache.set(cache_key, value, TTL)
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
