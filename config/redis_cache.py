"""Django's Redis cache backend, with one client object per connection pool.

Django's ``RedisCacheClient.get_client()`` builds a new ``redis.Redis`` object for every cache
call. Building one registers a couple of hundred response callbacks, which cost about a
millisecond of CPU: with two cache calls per search (index generation, facet counts) that was
a fifth of the web app's CPU per search in ``bench/search.py``. A ``redis.Redis`` object is
thread-safe (each command checks a connection out of the pool), so one per pool is enough.

:meth:`RedisCache.store` sets several entries and deletes keys in one round trip. Everything
else (key format, serialisation, options) is Django's, unchanged.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
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
    """``django.core.cache.backends.redis.RedisCache`` reusing its client objects, with one
    more call: :meth:`store`."""

    def __init__(self, server: Any, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = RedisCacheClient

    def store(
        self, entries: Mapping[str, Any], timeout: float, *, delete: Iterable[str] = ()
    ) -> None:
        """Set ``entries`` (each as :meth:`set` would) and delete the keys ``delete``, in one
        round trip (a pipeline, not a transaction).

        A cold search stores its summary and its page of hits and releases its stampede
        lock (``search.cache``): three round trips of the eight it made."""
        seconds = self.get_backend_timeout(timeout)
        client = self._cache.get_client(write=True)
        pipe = client.pipeline(transaction=False)
        for key, value in entries.items():
            if seconds == 0:  # as Django's set: a non-positive timeout deletes the entry
                pipe.delete(self.make_and_validate_key(key))
                continue
            pipe.set(
                self.make_and_validate_key(key), self._cache._serializer.dumps(value), ex=seconds
            )
        for key in delete:
            pipe.delete(self.make_and_validate_key(key))
        pipe.execute()
