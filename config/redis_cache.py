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


def _client_of(backend: Any) -> django_redis.RedisCacheClient:
    """The Django Redis client behind a cache backend (default: the ``default`` cache)."""
    if backend is None:
        from django.core.cache import caches

        backend = caches["default"]
    inner = getattr(backend, "_cache", None)
    if not isinstance(inner, django_redis.RedisCacheClient):
        raise TypeError(f"{backend!r} is not a Redis cache")
    return inner


def write_client(backend: Any = None) -> Any:
    """The ``redis.Redis`` client behind a Redis cache (default: the ``default`` cache), for
    commands Django's cache API lacks (pipelines, sorted sets). Keys must be made with the
    cache's ``make_and_validate_key``."""
    return _client_of(backend).get_client(write=True)


def decode(raw: bytes, backend: Any = None) -> Any:
    """A value read with :func:`write_client`, decoded as the cache backend stores values."""
    return _client_of(backend)._serializer.loads(raw)
