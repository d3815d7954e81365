"""Redis, split by what may be lost, and the two small tools every best-effort caller uses.

The portal uses two Redis servers (``README.md``, "Local services"):

* **coordination** (:func:`coordination`, ``settings.COORDINATION_REDIS_URL``): what must
  never be evicted or lost: the index generation and the writes in progress
  (``search.freshness``), the rebuild lease, the worker's heartbeat, indexing statistics and
  errors, the search query log. It runs with ``noeviction`` and fsyncs every write, and the
  Celery broker lives on the same server. Its write rate is low (a few writes per index
  batch), so the fsync costs nothing that matters.
* **cache** (Django's ``default`` cache, :func:`cache`): what may be evicted at any time:
  search summaries, pages of hits, autocomplete answers, stampede locks, rate-limit windows.
  It has a memory cap with LRU eviction and no persistence, so filling it with distinct
  searches can never stop indexing or the broker (with one server for both, it did:
  ``maxmemory`` with ``noeviction`` refused the next write registration).

:class:`Memo` is the one way to keep per-process state (a client, a list read from the
database, the live index name): computed on first use, optionally for a limited time, and
reset in one call by tests (``Memo.reset_all()``) instead of reaching into module globals.
:class:`Breaker` is the one circuit breaker: after a failure, callers skip a dependency for a
few seconds instead of waiting on its timeout at every request.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, ClassVar, Generic, TypeVar

import redis
from django.conf import settings
from django.core.cache import caches
from redis.backoff import NoBackoff
from redis.retry import Retry

logger = logging.getLogger(__name__)

T = TypeVar("T")
# What a failing Redis raises (connection refused or reset, timeouts, errors it answers).
REDIS_ERRORS = (redis.RedisError, OSError)


class Memo(Generic[T]):
    """A value computed once per process (or again after ``ttl`` seconds).

    ``constant``: the value cannot change while the process runs (the meaning model, read
    from an installed wheel), so :meth:`reset_all` keeps it. The tests reset every memo for
    each new index; reloading the model each time cost 0.2 s a test."""

    instances: ClassVar[list[Memo[Any]]] = []

    def __init__(
        self, compute: Callable[[], T], ttl: float | None = None, *, constant: bool = False
    ) -> None:
        self.compute = compute
        self.ttl = ttl
        self.constant = constant
        self._value: T | None = None
        self._at: float | None = None
        self._lock = threading.Lock()
        Memo.instances.append(self)

    def get(self) -> T:
        at = self._at
        if at is None or (self.ttl is not None and time.monotonic() - at > self.ttl):
            with self._lock:
                if self._at is at:  # nobody refreshed it meanwhile
                    self._value = self.compute()
                    self._at = time.monotonic()
        return self._value  # type: ignore[return-value]

    def reset(self) -> None:
        with self._lock:
            self._value, self._at = None, None

    @classmethod
    def reset_all(cls) -> None:
        """Forget every memoised value but the constant ones, and every open breaker (tests;
        never needed in production)."""
        for memo in cls.instances:
            if not memo.constant:
                memo.reset()
        for breaker in Breaker.instances:
            breaker.reset()


class Breaker:
    """Skip a failing dependency for ``seconds`` after a failure (logged once per opening)."""

    instances: ClassVar[list[Breaker]] = []

    def __init__(self, name: str, seconds: float = 5.0, log: logging.Logger | None = None) -> None:
        self.name = name
        self.seconds = seconds
        self.log = log or logger
        self._until = 0.0
        Breaker.instances.append(self)

    @property
    def open(self) -> bool:
        """True while callers should not even try."""
        return time.monotonic() < self._until

    def remaining(self) -> float:
        """Seconds until callers try again (0 when closed)."""
        return max(0.0, self._until - time.monotonic())

    def trip(self, exc: BaseException | str, waited: float = 0.0) -> None:
        """Open for ``seconds``, or three times what the failed call ``waited`` if longer: a
        dependency that hangs (4 s of timeouts per call) would otherwise be tried again by
        every request once a 5 s window lapsed during the very request that opened it."""
        window = max(self.seconds, 3 * waited)
        if not self.open:
            reason = str(exc).strip() or type(exc).__name__
            self.log.warning("%s unavailable, skipped for %.0f s: %s", self.name, window, reason)
        self._until = time.monotonic() + window

    def reset(self) -> None:
        self._until = 0.0


def redis_client(url: str) -> redis.Redis:
    """A client that fails fast: short timeouts and one immediate retry, on a new connection
    (a pooled connection is dead after Redis restarted; the retry keeps that from failing a
    request). Every caller has its own answer to Redis being down."""
    return redis.Redis.from_url(
        url,
        socket_connect_timeout=0.5,
        socket_timeout=2,
        retry=Retry(NoBackoff(), 1),
    )


_coordination: Memo[redis.Redis] = Memo(lambda: redis_client(settings.COORDINATION_REDIS_URL))


def coordination() -> redis.Redis:
    """The process's client of the coordination Redis (thread-safe, pooled)."""
    return _coordination.get()


def key(name: str) -> str:
    """A coordination key, namespaced like the cache's keys (tests use their own prefix)."""
    return f"{settings.CACHES['default'].get('KEY_PREFIX', '')}:{name}"


def cache() -> Any:
    """The cache Redis, through Django's cache API (may evict anything at any time)."""
    return caches["default"]


_cache_client: Memo[redis.Redis] = Memo(
    lambda: redis_client(settings.CACHES["default"]["LOCATION"])
)


def cache_client() -> redis.Redis:
    """A plain client of the cache Redis, for commands Django's cache API lacks (a pipelined
    counter); its keys are made with ``cache().make_and_validate_key`` and its values are
    not Django-serialised, so the two never read each other's entries."""
    return _cache_client.get()


def info(client: redis.Redis) -> dict[str, Any]:
    """What the status page and ``/readyz`` show of a Redis server: memory against its cap,
    eviction policy and evictions, persistence."""
    memory = client.info("memory")
    stats = client.info("stats")
    persistence = client.info("persistence")
    return {
        "used_memory": memory.get("used_memory"),
        "maxmemory": memory.get("maxmemory"),
        "policy": memory.get("maxmemory_policy"),
        "evicted_keys": stats.get("evicted_keys"),
        "aof": bool(persistence.get("aof_enabled")),
    }
