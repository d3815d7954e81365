"""The generation-keyed search cache: lock, compute, store, in one place.

Entries are keyed by the concrete index behind the read alias and the index *generation*
(``search.freshness``), which every visible index write moves on: a cached entry is never
served once an edit it does not reflect is searchable. While an index write is in progress
the cache is not used at all, neither read nor filled. The TTL is only a backstop.

What is cached (all in the cache Redis, which may evict any of it):

* a search's :class:`~search.results.Summary` (counts, total, typo fallback, "did you
  mean"), keyed by the normalised query and filters and the query's synonym expansions;
* a page of hits, under its summary's key plus the sort, page and page size;
* autocomplete answers, keyed by the prefix.

:func:`lookup` reads the generation (coordination Redis) and then every wanted entry (cache
Redis) in one round trip each. :func:`remember` computes a missing entry at most once
across processes: the first request takes a short lock and computes, the others wait
briefly for it (no stampede); the entry, the page of hits computed with it and the lock's
release then take one round trip (a cold search made 8 Redis round trips, now 6). If
Redis is down, searches run uncached: a breaker skips the cache for a few seconds instead
of waiting on Redis for every request.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from search import freshness, stores

logger = logging.getLogger(__name__)

T = TypeVar("T")
TTL = 300
LOCK_TTL = 5
WAIT_SECONDS = 0.25
BREAKER_SECONDS = 5.0
VERSION = 7  # bump when the shape of a cached entry, or the ranking, changes

breaker = stores.Breaker("search cache", BREAKER_SECONDS)


def digest(*parts: Any) -> str:
    """A short stable digest of JSON-able parts (a cache key's variable part)."""
    payload = json.dumps([VERSION, *parts], sort_keys=True, ensure_ascii=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:32]


@dataclass
class Found:
    """What :func:`lookup` found: each wanted entry's key and cached value (None: not
    cached). ``usable`` is False when the cache cannot be used now (an index write in
    progress, Redis unreachable): then nothing may be read or stored."""

    keys: list[str]
    values: list[Any]
    usable: bool

    def key(self, i: int) -> str | None:
        return self.keys[i] if self.usable else None

    def value(self, i: int) -> Any:
        return self.values[i] if self.usable else None

    @classmethod
    def unusable(cls) -> Found:
        return cls([], [], usable=False)


def lookup(index: str, names: Sequence[str]) -> Found:
    """The entries ``names`` (each under the index and the current generation)."""
    if breaker.open:
        return Found.unusable()
    started = time.monotonic()
    try:
        generation = freshness.snapshot()
        if generation is None:
            return Found.unusable()  # an index write is in progress: live
        keys = [f"search:{index}:{generation}:{name}" for name in names]
        found = stores.cache().get_many(keys)
    except stores.REDIS_ERRORS as exc:  # search uncached for a while
        breaker.trip(exc, waited=time.monotonic() - started)
        return Found.unusable()
    return Found(keys, [found.get(k) for k in keys], usable=True)


def put(key: str | None, value: Any) -> None:
    """Keep an entry (TTL as a backstop); nothing when ``key`` is None."""
    if key is None:
        return
    try:
        stores.cache().set(key, value, TTL)
    except stores.REDIS_ERRORS as exc:
        breaker.trip(exc)


def remember(
    key: str | None, compute: Callable[[], tuple[T, Mapping[str | None, Any]]]
) -> tuple[T, bool]:
    """The entry ``key`` if another request stores it while we briefly wait, else
    ``compute()``'s value; returns (value, whether it came from the cache).

    The caller looked ``key`` up already and found nothing. Only the request holding the
    key's short lock computes and stores; the others wait up to ``WAIT_SECONDS`` for it,
    then compute on their own without storing (a slow computation never blocks a page).
    ``compute`` returns the value and other entries to keep with it (a search's page of
    hits; a None key is skipped): they are stored, and the lock released, in one round trip
    (:func:`_store`)."""
    if key is None:
        return compute()[0], False
    cache = stores.cache()
    lock = f"{key}:lock"
    try:
        locked = bool(cache.add(lock, 1, LOCK_TTL))
    except stores.REDIS_ERRORS as exc:  # compute uncached
        breaker.trip(exc)
        return compute()[0], False
    if not locked:
        waited = _wait_for(key)
        if waited is not None:
            return waited, True
        return compute()[0], False
    try:
        value, others = compute()
        entries = {key: value, **{name: v for name, v in others.items() if name is not None}}
        _store(entries, release=lock)
    except BaseException:  # compute (or encoding what it returned) failed
        _store({}, release=lock)
        raise
    return value, False


def _store(entries: Mapping[str, Any], *, release: str) -> None:
    """Keep ``entries`` and drop the lock ``release``, in one round trip (if Redis fails,
    the lock expires by itself)."""
    try:
        stores.cache().store(entries, TTL, delete=[release])
    except stores.REDIS_ERRORS as exc:
        breaker.trip(exc)


def _wait_for(key: str) -> Any:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline and not breaker.open:
        time.sleep(0.01)
        try:
            value = stores.cache().get(key)
        except stores.REDIS_ERRORS as exc:
            breaker.trip(exc)
            return None
        if value is not None:
            return value
    return None
