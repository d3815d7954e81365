"""/readyz follows its dependencies: 503 within 5 s of Elasticsearch or PostgreSQL stopping,
200 again once they are back; the other checks are reported without taking the process out
(``degraded``)."""

from __future__ import annotations

import contextlib
import socket
import time

import pytest

from tests.conftest import wait_for
from tests.integration.test_faults import services

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def status(client) -> tuple[int, dict]:
    response = client.get("/readyz")
    return response.status_code, response.json()


def test_ready_when_everything_is_up(client, celery_worker, search_index):
    _code, body = wait_for(lambda: (r := status(client))[0] == 200 and r, timeout=30)
    assert body["status"] == "ready"
    assert set(body["checks"]) == {
        "postgres",
        "elasticsearch",
        "redis",
        "redis_cache",
        "worker",
        "index",
    }
    assert {n for n, c in body["checks"].items() if c["critical"]} == {"postgres", "elasticsearch"}
    assert all(check["ok"] for check in body["checks"].values())


@pytest.mark.parametrize("service", ["elasticsearch", "postgres"])
def test_unready_within_five_seconds_of_a_dependency_stopping(
    client, celery_worker, search_index, service
):
    wait_for(lambda: status(client)[0] == 200, timeout=30)
    services("down", service)
    try:
        stopped = time.monotonic()
        _, body = wait_for(lambda: (r := status(client))[0] == 503 and r, timeout=5)
        assert time.monotonic() - stopped <= 5
        assert body["checks"][service]["ok"] is False
        assert body["status"] == "unavailable"
    finally:
        services("up", service)
    _code, body = wait_for(lambda: (r := status(client))[0] == 200 and r, timeout=60)
    assert body["checks"][service]["ok"] is True


def test_degraded_but_serving_while_the_worker_is_down(client, celery_worker, search_index):
    """A dead worker means indexing lags, not that searches fail: 200, "degraded"."""
    from indexing.status import HEARTBEAT_KEY
    from search import stores

    wait_for(lambda: status(client)[0] == 200, timeout=30)
    stores.coordination().delete(stores.key(HEARTBEAT_KEY))
    code, body = status(client)
    assert code == 200 and body["status"] == "degraded"
    assert body["checks"]["worker"]["ok"] is False
    wait_for(lambda: status(client)[1]["status"] == "ready", timeout=30)


def test_a_closed_live_index_is_unready_and_unavailable_not_a_bad_query(client, search_index):
    # /readyz only looked the alias up (200: ready to serve), while every search failed with
    # a 400 that told the visitor to use fewer or simpler words.
    from indexing import writer
    from search.indices import client as es
    from tests.helpers import make_package

    make_package("closed-probe")
    writer.process_outbox()
    es().indices.close(index=search_index)
    try:
        code, body = status(client)
        assert code == 503 and not body["checks"]["elasticsearch"]["ok"]
        search = client.get("/api/search", {"q": "closed-probe"})
        assert search.status_code == 503
    finally:
        es().indices.open(index=search_index, wait_for_active_shards=1)


def test_the_postgres_probe_runs_under_its_statement_timeout():
    """``SET LOCAL`` lasts one transaction: in autocommit it did nothing, and the probe ran
    without a timeout."""
    from django.db import connection

    from config import health

    seen = []

    def record(execute, sql, params, many, context):
        seen.append((sql, connection.in_atomic_block))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        assert health._postgres() == "ok"
    assert seen[0][0].startswith("SET LOCAL statement_timeout")
    assert all(in_transaction for _sql, in_transaction in seen), seen


@contextlib.contextmanager
def hung_server():
    """A port that accepts connections and never answers (a Redis stopped with SIGSTOP)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()


@pytest.mark.parametrize("which", ["cache", "coordination"])
def test_a_hung_redis_leaves_readyz_fast_and_degraded(client, search_index, monkeypatch, which):
    """Its checks ran one after another on Redis's 2 s timeout and a retry: /readyz took 4 s,
    HAProxy's check gave up after 1 s and took every instance out (a 503 for everyone)
    because of a dependency that is not critical."""
    from config import health
    from search import stores

    wait_for(lambda: status(client)[0] == 200, timeout=30)
    with hung_server() as port:
        hung = stores.redis_client(f"redis://127.0.0.1:{port}/0")
        monkeypatch.setattr(
            stores, "cache_client" if which == "cache" else "coordination", lambda: hung
        )
        for _ in range(3):  # and again while the first checks are still hanging
            started = time.monotonic()
            code, body = status(client)
            took = time.monotonic() - started
            assert took < health.NON_CRITICAL_BUDGET + 0.5, took
            assert code == 200 and body["status"] == "degraded"
            failed = {name for name, check in body["checks"].items() if not check["ok"]}
            assert failed == ({"redis_cache"} if which == "cache" else {"redis", "worker"})
            assert "no answer within" in body["checks"][failed.pop()]["detail"]


def test_readyz_says_the_worker_is_unknown_not_missing_while_redis_is_down(
    client, search_index, monkeypatch
):
    """With the coordination Redis down, the worker check said "no worker heartbeat yet (is
    a Celery worker with beat running?)" while the worker was running."""
    from search import stores

    down = stores.redis_client("redis://127.0.0.1:9/0")
    monkeypatch.setattr(stores, "coordination", lambda: down)
    _code, body = status(client)
    worker = body["checks"]["worker"]
    assert not worker["ok"] and "heartbeat yet" not in worker["detail"]
    assert "ConnectionError" in worker["detail"]
