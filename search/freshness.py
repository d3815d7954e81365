"""The index generation, and the writes in progress: when a cached count may be used.

Facet-count cache keys include the concrete index behind the read alias and the
*generation*, a counter that moves on after every index write has become searchable. That
alone leaves a window: between the moment a write becomes visible (Elasticsearch refreshed)
and the moment the generation moves on, a search would combine live hits with counts cached
before the write. So every write that can become visible runs inside :func:`writing`, which
registers it in Redis first (or is not made); while any write is registered,
:func:`cache_generation` returns None and searches neither read nor fill the cache.
:func:`writing` moves the generation on *before* it unregisters, so a search that starts
after a write became searchable never uses an entry cached before it. (The same idea as a
sequence lock; a search already running when a write starts may still pair counts read
just before it with hits fetched just after, as any concurrent read may.)

Writers are registered in a sorted set with a deadline: a writer that dies without
unregistering stops counting after ``WRITE_DEADLINE`` seconds.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from django.core.cache import cache

from config.redis_cache import write_client

logger = logging.getLogger(__name__)

GENERATION_KEY = "search:generation"
WRITING_KEY = "search:writing"
# A registration stops counting at its deadline (a writer that died never unregisters). It
# must outlive every cache entry made before the write (search.facet_cache.TTL, 300 s), so
# that even a write whose generation bump failed can never bring an old entry back.
WRITE_DEADLINE = 330.0


def current_generation() -> int | None:
    """The current generation, or None when Redis is unreachable."""
    try:
        value = cache.get(GENERATION_KEY)
        if value is None:
            cache.add(GENERATION_KEY, 1, timeout=None)
            value = cache.get(GENERATION_KEY)
        return int(value) if value is not None else None
    except Exception as exc:
        logger.warning("facet cache: cannot read the index generation (%s)", exc)
        return None


def cache_generation() -> int | None:
    """The generation to key cached counts with, or None when they must not be used because
    an index write is in progress (it may already be visible). Raises when Redis fails."""
    return snapshot()[0]


def snapshot(also_get: Sequence[str] = ()) -> tuple[int | None, list[bytes | None]]:
    """:func:`cache_generation` and, in the same atomic round trip, the raw values of the
    cache keys ``also_get`` (guesses at the keys the caller will need)."""
    pipe = write_client(cache).pipeline(transaction=True)
    pipe.get(cache.make_and_validate_key(GENERATION_KEY))
    pipe.zcount(cache.make_and_validate_key(WRITING_KEY), time.time(), "+inf")
    for key in also_get:
        pipe.get(cache.make_and_validate_key(key))
    value, writers, *extra = pipe.execute()
    if writers:
        return None, []
    generation = current_generation() if value is None else int(value)
    return generation, extra


class WriteNotRegistered(RuntimeError):
    """An index write could not be registered in Redis, so it was not made."""


def bump_generation() -> bool:
    """Invalidate every cached facet count (called after each visible index write); False
    when Redis could not be told (logged)."""
    try:
        try:
            cache.incr(GENERATION_KEY)
        except ValueError:
            cache.add(GENERATION_KEY, 1, timeout=None)
            cache.incr(GENERATION_KEY)
        return True
    except Exception as exc:
        logger.warning("facet cache: cannot bump the index generation (%s)", exc)
        return False


@contextmanager
def writing() -> Iterator[None]:
    """Around an index write that may become visible to searches: searches bypass the facet
    cache until it is over, and the generation moves on at the end (even on failure: part of
    the write may be visible)."""
    token = uuid.uuid4().hex
    key = cache.make_and_validate_key(WRITING_KEY)
    try:
        client = write_client(cache)
        now = time.time()
        pipe = client.pipeline(transaction=False)
        pipe.zremrangebyscore(key, "-inf", now)  # writers that died without unregistering
        pipe.zadd(key, {token: now + WRITE_DEADLINE})
        pipe.execute()
    except Exception as exc:
        # Unregistered, the write could become visible while other processes still serve
        # counts cached before it: do not write (the outbox keeps the work; it is retried).
        raise WriteNotRegistered(
            f"cannot register an index write in Redis ({exc}); the write is retried later"
        ) from exc
    try:
        yield
    finally:
        if bump_generation():
            try:
                client.zrem(key, token)
            except Exception as exc:
                # It stops counting at its deadline.
                logger.warning("facet cache: cannot unregister an index write (%s)", exc)
        else:
            # The generation did not move: stay registered (searches keep off the cache)
            # until the deadline, by which time every entry made before the write expired.
            logger.warning(
                "facet cache: generation not bumped; cache off for up to %.0f s", WRITE_DEADLINE
            )
