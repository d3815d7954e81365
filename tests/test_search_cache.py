"""The search cache's stampede lock (search.cache.remember) against the real cache Redis."""

from __future__ import annotations

import pytest
from django.core.cache import cache as backend

from search import cache


@pytest.fixture
def key():
    name = "search-cache-test"
    backend.delete_many([name, f"{name}:lock", f"{name}:page"])
    yield name
    backend.delete_many([name, f"{name}:lock", f"{name}:page"])


def test_the_value_and_what_comes_with_it_are_stored_and_the_lock_released(key):
    value, cached = cache.remember(key, lambda: ("summary", {f"{key}:page": "page", None: "x"}))
    assert (value, cached) == ("summary", False)
    assert backend.get_many([key, f"{key}:page", f"{key}:lock"]) == {
        key: "summary",
        f"{key}:page": "page",
    }
    # A request that finds the lock taken waits for the holder's value, and does not compute.
    backend.set(f"{key}:lock", 1, 5)
    assert cache.remember(key, pytest.fail) == ("summary", True)


def test_a_failing_computation_releases_the_lock(key):
    def fail():
        raise RuntimeError("engine down")

    with pytest.raises(RuntimeError):
        cache.remember(key, fail)
    assert backend.get(f"{key}:lock") is None  # the next request computes, not waits
    assert cache.remember(key, lambda: ("later", {})) == ("later", False)


def test_a_value_that_cannot_be_stored_releases_the_lock(key):
    with pytest.raises(Exception, match="pickle"):
        cache.remember(key, lambda: (lambda: None, {}))  # a function does not pickle
    assert backend.get(f"{key}:lock") is None
