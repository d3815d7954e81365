"""The index generation, and the writes in progress: when a cached count may be used.

Cache keys include the concrete index behind the read alias and the *generation*, a counter
that moves on after every index write has become searchable. That alone leaves a window:
between the moment a write becomes visible (Elasticsearch refreshed) and the moment the
generation moves on, a search would combine live hits with counts cached before the write.
So every write that can become visible runs inside :func:`writing`, which registers it in
Redis first (or is not made); while any write is registered, :func:`snapshot` returns no
generation and searches neither read nor fill the cache. :func:`writing` moves the
generation on *and* unregisters in one atomic step once the write is searchable, so a search
that starts after a write became searchable never uses an entry cached before it. (The same
idea as a sequence lock; a search already running when a write starts may still pair
counts read just before it with hits fetched just after, as any concurrent read may.)

What can go wrong, and what happens then:

* **A write fails** (a bulk request that timed out on the client may still be applied by
  Elasticsearch and become visible at any later refresh): the generation moves on at once
  (for whatever is already visible) and the registration stays for ``FAILED_WRITE_GRACE``
  seconds instead of being removed, so nothing is cached while the late write may still
  land; when it lapses, the generation moves on again.
* **A writer dies** without unregistering: its registration lapses at its deadline
  (``WRITE_DEADLINE``), and the generation moves on then.
* **The generation cannot be moved on** after a write (Redis went away): :func:`writing`
  raises :class:`GenerationNotBumped`, so the caller treats the write as failed and makes it
  again (the indexing outbox keeps it); the registration lapses and bumps as above.
* **Redis restarts**: the coordination Redis fsyncs every write (``appendfsync always``), so
  a SIGKILL loses no acknowledged registration or bump. A generation that is missing (a new,
  empty Redis) starts from the clock in milliseconds, past every generation used before, so
  entries cached under an older one can never come back.

Lapsed registrations are cleared, and the generation moved on for them, by the same atomic
script that every search runs to read the generation (:func:`snapshot`).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import redis
from django.conf import settings

from search import stores

logger = logging.getLogger(__name__)

GENERATION_KEY = "search:generation"
WRITING_KEY = "search:writing"
# A registration stops counting at its deadline (a writer that died never unregisters). It
# must outlive every cache entry made before the write (search cache TTL, 300 s).
WRITE_DEADLINE = 330.0

# KEYS: generation, writing. ARGV: now (s), a fresh generation (ms clock).
# Returns {generation, writers in progress}.
_SNAPSHOT = """
local lapsed = redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
if redis.call('EXISTS', KEYS[1]) == 0 then
    redis.call('SET', KEYS[1], ARGV[2])
end
local generation
if lapsed > 0 then
    generation = redis.call('INCR', KEYS[1])
else
    generation = tonumber(redis.call('GET', KEYS[1]))
end
return {generation, redis.call('ZCOUNT', KEYS[2], ARGV[1], '+inf')}
"""

# KEYS: generation, writing. ARGV: token, a fresh generation (ms clock), new deadline or ''.
# Moves the generation on; then unregisters the token ('' deadline) or keeps it registered
# until the given deadline (only if it is still registered). Returns the new generation.
_BUMP = """
if redis.call('EXISTS', KEYS[1]) == 0 then
    redis.call('SET', KEYS[1], ARGV[2])
end
local generation = redis.call('INCR', KEYS[1])
if ARGV[3] == '' then
    redis.call('ZREM', KEYS[2], ARGV[1])
else
    redis.call('ZADD', KEYS[2], 'XX', ARGV[3], ARGV[1])
end
return generation
"""

_scripts: stores.Memo[tuple[object, object]] = stores.Memo(
    lambda: (
        stores.coordination().register_script(_SNAPSHOT),
        stores.coordination().register_script(_BUMP),
    )
)


def _keys() -> list[str]:
    return [stores.key(GENERATION_KEY), stores.key(WRITING_KEY)]


def _fresh_generation() -> int:
    return int(time.time() * 1000)


def failed_write_grace() -> float:
    """How long a failed write keeps the cache off (``SEARCH_FAILED_WRITE_GRACE``)."""
    return float(getattr(settings, "SEARCH_FAILED_WRITE_GRACE", 60.0))


# Inside one_snapshot(): the request's snapshot, once taken (a list: empty until then).
_request_snapshot: ContextVar[list[int | None] | None] = ContextVar("snapshot", default=None)


@contextmanager
def one_snapshot() -> Iterator[None]:
    """Within the block, :func:`snapshot` asks Redis once and then gives the same answer:
    a web request's HTTP validator and its cache lookup share one round trip."""
    token = _request_snapshot.set([])
    try:
        yield
    finally:
        _request_snapshot.reset(token)


def snapshot() -> int | None:
    """The generation to key cached entries with, or None when the cache must not be used
    (an index write is in progress: it may already be visible). Raises when Redis fails."""
    taken = _request_snapshot.get()
    if taken:
        return taken[0]
    script, _ = _scripts.get()
    generation, writers = script(keys=_keys(), args=[time.time(), _fresh_generation()])
    value = None if writers else int(generation)
    if taken is not None:
        taken.append(value)
    return value


def current_generation() -> int | None:
    """The current generation (for status pages), or None when Redis is unreachable."""
    try:
        value = stores.coordination().get(stores.key(GENERATION_KEY))
    except redis.RedisError as exc:
        logger.warning("cannot read the index generation (%s)", exc)
        return None
    return int(value) if value is not None else None


def writes_in_progress() -> int:
    """Registered index writes whose deadline has not passed."""
    return int(stores.coordination().zcount(stores.key(WRITING_KEY), time.time(), "+inf"))


class WriteNotRegistered(RuntimeError):
    """An index write could not be registered in Redis, so it was not made."""


class GenerationNotBumped(RuntimeError):
    """An index write was made but the generation could not be moved on: the caller must
    treat the write as failed and make it again (its registration keeps the cache off)."""


def _bump(token: str, deadline: float | None) -> int:
    _, script = _scripts.get()
    until = "" if deadline is None else deadline
    return int(script(keys=_keys(), args=[token, _fresh_generation(), until]))


def bump_generation() -> int:
    """Move the generation on: every entry cached so far becomes unreachable (benchmarks
    use it to measure uncached searches). Returns the new generation."""
    return _bump("", None)


@contextmanager
def writing() -> Iterator[None]:
    """Around an index write that may become visible to searches (see the module docstring
    for what happens on each kind of failure)."""
    token = uuid.uuid4().hex
    try:
        stores.coordination().zadd(stores.key(WRITING_KEY), {token: time.time() + WRITE_DEADLINE})
    except redis.RedisError as exc:
        # Unregistered, the write could become visible while other processes still serve
        # counts cached before it: do not write (the outbox keeps the work; it is retried).
        raise WriteNotRegistered(
            f"cannot register an index write in Redis ({exc}); the write is retried later"
        ) from exc
    try:
        yield
    except BaseException:
        # Part of the write may be visible now, and the rest may become visible at a later
        # refresh: bump for the first, keep the cache off for the second.
        try:
            _bump(token, time.time() + failed_write_grace())
        except redis.RedisError as exc:
            logger.warning("cannot record a failed index write (%s); it lapses later", exc)
        raise
    try:
        _bump(token, None)
    except redis.RedisError as exc:
        raise GenerationNotBumped(
            f"the index write succeeded but the generation could not be moved on ({exc}); "
            "the write is made again"
        ) from exc
