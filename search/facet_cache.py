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

    The generation changes far less often than searches come, so the entries under the
    generation this process saw last are fetched in the same round trip as the current
    generation; only when the generation has moved does it take a second one."""
    global _generation_seen
    if not _available():
        return None, []
    guess = _generation_seen
    try:
        generation, raw = freshness.snapshot(keys(guess) if guess is not None else ())
    except Exception as exc:
        _trip(exc)
        return None, []
    if generation is None:
        return None, []  # an index write is in progress: compute live
    _generation_seen = generation
    wanted = keys(generation)
    if generation != guess:
        try:
            found = cache.get_many(wanted)
        except Exception as exc:
            _trip(exc)
            return None, []
        return wanted, [found.get(k) for k in wanted]
    values = []
    for key, value in zip(wanted, raw, strict=True):
        try:
            values.append(decode(value) if value is not None else None)
        except Exception as exc:  # an unreadable entry: compute it again
            logger.warning("facet cache: unreadable entry %s (%s)", key, exc)
            values.append(None)
    return wanted, values


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
