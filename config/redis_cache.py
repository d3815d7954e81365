"""Django's Redis cache backend, with one client object per connection pool.

Django's ``RedisCacheClient.get_client()`` builds a new ``redis.Redis`` object for every cache
call. Building one registers a couple of hundred response callbacks, which cost about a
millisecond of CPU: with two cache calls per search (index generation, facet counts) that was
a fifth of the web app's CPU per search in ``bench/search.py``. A ``redis.Redis`` object is
thread-safe (each command checks a connection out of the pool), so one per pool is enough.

Everything else (key format, serialisation, options) is Django's, unchanged.
"""

from __future__ import annotations

import threading
from typing import Any

from django.core.cache.backends import redis as django_redis


class RedisCacheClient(django_redis.RedisCacheClient):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[int, Any] = {}
        self._clients_lock = threading.Lock()

    def get_client(self, key: Any = None, *, write: bool = False) -> Any:
        index = self._get_connection_pool_index(write)  # random among read replicas
        client = self._clients.get(index)
        if client is None:
            with self._clients_lock:
                if index not in self._pools:
                    self._pools[index] = self._pool_class.from_url(
                        self._servers[index], **self._pool_options
                    )
                client = self._clients.setdefault(
                    index, self._client(connection_pool=self._pools[index])
                )
        return client


class RedisCache(django_redis.RedisCache):
    """``django.core.cache.backends.redis.RedisCache`` reusing its client objects."""

    def __init__(self, server: Any, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = RedisCacheClient


def write_client(alias: str = "default") -> Any:
    """The ``redis.Redis`` client behind a cache of this backend, for commands Django's cache
    API lacks (pipelines); keys must be made with ``caches[alias].make_and_validate_key``."""
    from django.core.cache import caches

    backend = caches[alias]
    if not isinstance(backend, RedisCache):
        raise TypeError(f"cache {alias!r} is not config.redis_cache.RedisCache")
    return backend._cache.get_client(write=True)
