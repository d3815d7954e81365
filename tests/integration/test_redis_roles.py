"""What Redis holds and what happens when it misbehaves (issue #10, items 5, 6 and 7):

* a write that fails on the client but is applied later never pairs old cached counts
  with its hits;
* filling the cache with distinct searches never stops indexing, and the query log is
  capped;
* a query-log flush that dies loses nothing.
"""

from __future__ import annotations

import os

import pytest
import redis
from django.core.cache import cache
from django.test import override_settings
from elastic_transport import ConnectionTimeout
from elasticsearch import helpers

from indexing import writer
from portal.models import Package, Section
from search import analytics, service
from search.indices import client as es
from search.indices import read_alias
from search.models import QueryStat
from tests.conftest import wait_for
from tests.helpers import make_package, make_packages

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


def section_counts(result) -> dict[str, int]:
    facet = next(f for f in result.facets if f.name == "section")
    return {v.value: v.count for v in facet.values}


# ------------------------------------------------------------------ 5. late writes


def test_a_write_applied_after_its_client_timed_out_never_pairs_with_old_counts(
    search_index, monkeypatch
):
    make_packages(3, prefix="latewrite", section="devel")
    writer.process_outbox()
    service.search("latewrite")
    assert section_counts(service.search("latewrite")) == {"devel": 3}
    graphics = Section.objects.create(name="graphics")
    first = Package.objects.filter(name__startswith="latewrite").order_by("pk").first()
    first.section = graphics
    first.save()
    real_bulk = helpers.bulk

    def applied_then_timed_out(client, actions, **kwargs):
        # Elasticsearch applies the write, but the client gives up before the refresh.
        real_bulk(client, actions, **{**kwargs, "refresh": False})
        raise ConnectionTimeout("simulated: the bulk request timed out on the client")

    monkeypatch.setattr(helpers, "bulk", applied_then_timed_out)
    with pytest.raises(ConnectionTimeout):
        writer.process_outbox()
    monkeypatch.undo()
    before_refresh = service.search("latewrite")  # may fill the cache with what it sees
    assert section_counts(before_refresh) == {"devel": 3}
    es().indices.refresh(index=read_alias())  # the late write becomes visible
    after = service.search("latewrite")
    assert section_counts(after) == {"devel": 2, "graphics": 1}
    assert sum(section_counts(after).values()) == after.total == 3


# ------------------------------------------------------------------ 6. the cache fills up


def server(url: str) -> redis.Redis:
    return redis.Redis.from_url(url)


def test_what_may_be_evicted_lives_apart_from_what_must_not(settings):
    cache_server = server(settings.CACHES["default"]["LOCATION"])
    broker = server(settings.CELERY_BROKER_URL)
    cache_id = cache_server.info("server")["run_id"]
    assert cache_id != broker.info("server")["run_id"], "the cache shares the broker's server"
    assert cache_server.config_get("maxmemory-policy")["maxmemory-policy"] == "allkeys-lru"
    assert int(cache_server.config_get("maxmemory")["maxmemory"]) > 0
    assert broker.config_get("maxmemory-policy")["maxmemory-policy"] == "noeviction"
    assert broker.config_get("appendfsync")["appendfsync"] == "always"


@pytest.mark.django_db(transaction=True)
def test_a_full_cache_never_stops_indexing(celery_worker, search_index):
    package = make_package("cache-flood", summary="before the flood")
    wait_for(lambda: service.search("cache-flood").total == 1, timeout=30)
    try:
        # Fill it to the brim, as distinct cached searches would: big entries past any cap
        # the servers have, then smaller ones into what is left. A cache may refuse them;
        # indexing must go on regardless.
        for size, count in ((1024 * 1024, 600), (1024, 2000), (64, 2000)):
            chunk = os.urandom(size)
            for i in range(count):
                try:
                    cache.set(f"flood:{size}:{i}", chunk, 600)
                except Exception:
                    break
        package.summary = "written after the cache filled up with zymotic entries"
        package.save()
        wait_for(lambda: service.search("zymotic").total == 1, timeout=30)
    finally:
        cache.clear()


@override_settings(SEARCH_QUERY_LOG_MAX=50)
def test_the_query_log_is_capped(client, search_index):
    analytics.flush()
    for i in range(80):
        analytics.log_search(f"capped query {i}", 1, "visitor")
    assert analytics.flush() <= 50


# ------------------------------------------------------------------ 7. the query-log flush


def test_a_flush_that_dies_mid_batch_loses_nothing(client, search_index, monkeypatch):
    analytics.flush()
    QueryStat.objects.all().delete()
    for visitor, query in [("a", "kept query one"), ("b", "kept query two")]:
        analytics.log_search(query, 3, visitor)

    def dies(entries):
        raise SystemExit("killed at the time limit")

    monkeypatch.setattr(analytics, "merge_fragments", dies)
    with pytest.raises(SystemExit):
        analytics.flush()
    monkeypatch.undo()
    analytics.flush()
    assert set(QueryStat.objects.values_list("query", "searches")) == {
        ("kept query one", 1),
        ("kept query two", 1),
    }
