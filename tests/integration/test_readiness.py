"""/readyz follows its dependencies: 503 within 5 s of Elasticsearch or PostgreSQL stopping,
200 again once they are back."""

from __future__ import annotations

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
    assert set(body["checks"]) == {"postgres", "redis", "elasticsearch", "worker"}
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
