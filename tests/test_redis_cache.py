"""The Redis cache backend (config.redis_cache) against the real Redis."""

from __future__ import annotations

import threading

from django.core.cache import cache, caches

from config.redis_cache import RedisCache


def test_one_client_object_per_pool_shared_by_threads():
    backend = cache._cache
    first = backend.get_client()
    assert backend.get_client() is first
    assert backend.get_client(write=True) is first  # one server: reads and writes share it
    seen = []
    threads = [threading.Thread(target=lambda: seen.append(backend.get_client())) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(client is first for client in seen)


def test_behaves_as_djangos_backend():
    assert isinstance(caches["default"], RedisCache)
    cache.set("redis-cache-test", {"a": [1, 2]}, 30)
    assert cache.get("redis-cache-test") == {"a": [1, 2]}
    assert cache.add("redis-cache-test", 0, 30) is False
    cache.set("redis-cache-counter", 1, 30)
    assert cache.incr("redis-cache-counter") == 2
    assert cache.get_many(["redis-cache-test", "missing"]) == {"redis-cache-test": {"a": [1, 2]}}
    cache.delete_many(["redis-cache-test", "redis-cache-counter"])
    assert cache.get("redis-cache-test") is None


def test_read_replicas_each_get_their_own_client():
    location = cache._servers[0]
    backend = RedisCache([location, location, location], {})._cache
    clients = {id(backend.get_client()) for _ in range(50)}
    assert len(clients) == 2  # reads spread over the two "replicas", one client each
    assert backend.get_client(write=True) not in {backend.get_client() for _ in range(50)}


def test_store_sets_entries_and_deletes_keys_in_one_pipeline():
    cache.set("redis-cache-lock", 1, 30)
    cache.store({"redis-cache-a": {"x": 1}, "redis-cache-b": 7}, 30, delete=["redis-cache-lock"])
    assert cache.get_many(["redis-cache-a", "redis-cache-b", "redis-cache-lock"]) == {
        "redis-cache-a": {"x": 1},
        "redis-cache-b": 7,
    }
    client = cache._cache.get_client(write=True)
    assert 0 < client.ttl(cache.make_and_validate_key("redis-cache-b")) <= 30
    cache.store({"redis-cache-a": "gone"}, 0)  # as Django's set: a timeout of 0 deletes
    assert cache.get("redis-cache-a") is None
    cache.delete("redis-cache-b")
