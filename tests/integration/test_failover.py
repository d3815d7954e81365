"""Failover: a two-node Elasticsearch cluster loses a node while searches and edits go on.

The test starts a scratch cluster of its own with the real services manager
(``ELASTICSEARCH_NODES=2``, HTTP ports 29220/29221 and transport 29320/29321 by default,
data under ``.var/test-cluster``), so the services the rest of the suite and other people
use are not touched. Node 1 is master-eligible, node 2 holds data only.

The index has 2 shards and 1 replica (``SEARCH_INDEX_SHARDS`` / ``SEARCH_INDEX_REPLICAS``),
with both primaries placed on node 2, so killing node 2 kills every primary. A real Celery
worker and this process talk to both nodes (``ELASTICSEARCH_HOSTS``). While searches go
through the JSON API and edits through the ORM without pause, node 2 is killed with SIGKILL,
an edit made during the outage must become searchable, and node 2 is brought back with the
services manager. Then: no search failed or came back partial, every edit is in the index
(zero drift, the API shows each package's last summary), and the cluster is green again.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import pytest
from django.db import close_old_connections, connection
from django.test import Client

from config import env
from config.services import CACHE, es_runtime, port_open
from indexing import rebuild, verify
from portal.models import Package
from search import stores
from tests.conftest import ROOT, WorkerProcess, run_services, wait_for
from tests.helpers import make_packages
from tests.integration.support import (
    EditLoad,
    assert_index_matches_database,
    wait_until_indexed,
)

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

# The configured ports + 20 (29220/29320 by default), below Linux's ephemeral port range
# (32768-60999): a port inside it can be taken, as the source port of any outgoing
# connection the test run has open, when the cluster starts (seen once in CI: node 1 could
# not bind its transport port). Another checkout whose services use other ports gets other
# scratch ports.
HTTP_PORT = env.elasticsearch_port() + 20
TRANSPORT_PORT = env.elasticsearch_transport_port() + 20
HOSTS = [f"http://127.0.0.1:{HTTP_PORT}", f"http://127.0.0.1:{HTTP_PORT + 1}"]
VAR = ROOT / ".var" / "test-cluster"
NODE_1, NODE_2 = "portal-local-1", "portal-local-2"
PACKAGES = 100
PREFIX = "failover"


def manager_env() -> dict[str, str]:
    return {
        **os.environ,
        "PORTAL_VAR_DIR": str(VAR),
        "ELASTICSEARCH_NODES": "2",
        "ELASTICSEARCH_PORT": str(HTTP_PORT),
        "ELASTICSEARCH_TRANSPORT_PORT": str(TRANSPORT_PORT),
        "ES_HEAP_SIZE": "256m",
    }


def manage(*args: str) -> subprocess.CompletedProcess[str]:
    return run_services(*args, env=manager_env(), timeout=400)


def port_closed(port: int) -> bool:
    return not port_open(port)


@pytest.fixture
def cluster():
    """Start the scratch two-node cluster in the background; always stop and delete it."""
    shutil.rmtree(VAR, ignore_errors=True)
    # The distribution zip and the compiled analysis plugin from this checkout's own cache:
    # no Maven run and no plugin build (the manager checks both and redoes what differs).
    (VAR / "cache").mkdir(parents=True)
    version = es_runtime.choose().version  # what the manager picks in this environment
    for item in (CACHE / f"elasticsearch-{version}.zip", CACHE / "esplugin"):
        if item.is_dir():
            shutil.copytree(item, VAR / "cache" / item.name)
        elif item.exists():
            shutil.copy2(item, VAR / "cache" / item.name)
    starting = subprocess.Popen(
        [sys.executable, "-m", "config.services", "up", "elasticsearch"],
        cwd=ROOT,
        env=manager_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield starting
    finally:
        # Let a start in progress finish (killing the manager would leave a node behind
        # that writes its pid file later), then stop every node of the scratch cluster.
        if starting.returncode is None:
            try:
                starting.communicate(timeout=300)
            except subprocess.TimeoutExpired:
                starting.kill()
                starting.communicate()
        stopped = manage("down", "elasticsearch")
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr
        assert port_closed(HTTP_PORT) and port_closed(HTTP_PORT + 1)
        shutil.rmtree(VAR, ignore_errors=True)


@pytest.fixture
def cluster_connection(settings):
    """Point this process's Elasticsearch connection at both nodes; restore it afterwards."""
    from elasticsearch.dsl import connections

    settings.SEARCH_INDEX_SHARDS = 2
    settings.SEARCH_INDEX_REPLICAS = 1
    previous = connections.get_connection("default")
    options = {**settings.ELASTICSEARCH_DSL["default"], "hosts": HOSTS}
    client = connections.create_connection("default", **options)
    stores.Memo.reset_all()
    try:
        yield client
    finally:
        client.close()
        connections.add_connection("default", previous)
        stores.Memo.reset_all()


@pytest.fixture
def failover_worker(django_db_setup):
    """A worker of this test's own, talking to both nodes (the session's worker, which talks
    to the shared single node through the same broker, is paused meanwhile)."""
    from django.conf import settings

    from config.services import purge_worker_queues

    paused = WorkerProcess.session
    if paused is not None and paused.running():
        paused.stop()
    else:
        paused = None
    purge_worker_queues()
    worker = WorkerProcess(
        settings.DATABASES["default"]["NAME"],
        name="failover",
        env_extra={
            "ELASTICSEARCH_HOSTS": ",".join(HOSTS),
            "SEARCH_INDEX_SHARDS": "2",
            "SEARCH_INDEX_REPLICAS": "1",
        },
    )
    try:
        yield worker
    finally:
        worker.stop()
        if paused:
            paused.start(timeout=180)


class SearchLoad(threading.Thread):
    """Searches through the JSON API without pause; a failure is any answer but a 200 that
    finds every test package (a partial result from a lost shard counts as a failure)."""

    def __init__(self, names: list[str]) -> None:
        super().__init__(daemon=True)
        self.names = names
        self.stop_event = threading.Event()
        self.done: list[tuple[float, float]] = []  # (start, duration) of each good search
        self.failures: list[str] = []

    def run(self) -> None:
        client = Client()
        n = 0
        try:
            while not self.stop_event.is_set():
                n += 1
                time.sleep(0.02)
                started = time.monotonic()
                # Alternately the whole set and one package by name.
                name = self.names[n % len(self.names)]
                query = PREFIX if n % 2 else name
                try:
                    response = client.get("/api/search", {"q": query, "page_size": 5})
                    body = response.json()
                except Exception as exc:  # pragma: no cover - reported below
                    self.failures.append(f"{query}: {exc!r}")
                    continue
                if response.status_code != 200:
                    self.failures.append(f"{query}: HTTP {response.status_code} {body}")
                elif query == PREFIX and body["total"] != len(self.names):
                    self.failures.append(f"{query}: {body['total']} hits, not {len(self.names)}")
                elif query == name and (not body["hits"] or body["hits"][0]["name"] != name):
                    self.failures.append(f"{query}: top hit {body['hits'][:1]}")
                else:
                    self.done.append((started, time.monotonic() - started))
        finally:
            close_old_connections()
            connection.close()

    def between(self, start: float, end: float) -> int:
        return sum(1 for at, _ in self.done if start <= at < end)

    def stop(self) -> None:
        self.stop_event.set()
        self.join(timeout=30)


def api_hit(client: Client, name: str) -> dict:
    response = client.get("/api/search", {"q": name, "page_size": 1})
    assert response.status_code == 200, response.content
    hits = response.json()["hits"]
    assert hits and hits[0]["name"] == name, hits
    return hits[0]


# Two JVM start-ups, a restart and a rebuild on a shared 2-core machine: more than the
# suite's default per-test limit, which counts the fixtures' set-up and tear-down too.
@pytest.mark.timeout(1500)
def test_searches_and_edits_survive_losing_a_node(cluster, cluster_connection, failover_worker):
    es = cluster_connection
    # Health calls that wait on the server side: the client must wait longer than they do.
    patient = es.options(request_timeout=150)
    began = time.monotonic()
    # The worker starts while the cluster comes up; the JVMs take most of the time.
    failover_worker.start(timeout=180)
    output, _ = cluster.communicate(timeout=300)
    assert cluster.returncode == 0, output
    cluster_up = time.monotonic() - began
    health = patient.cluster.health(wait_for_nodes="2", timeout="120s")
    assert health["number_of_nodes"] == 2 and health["number_of_data_nodes"] == 2

    # The index, with both primaries on node 2: node 1 is kept out while they are allocated.
    from search import freshness

    es.cluster.put_settings(persistent={"cluster.routing.allocation.exclude._name": NODE_1})
    index = rebuild.ensure_index().live
    es.cluster.put_settings(persistent={"cluster.routing.allocation.exclude._name": None})
    live = es.indices.get_settings(index=index)[index]["settings"]["index"]
    assert (live["number_of_shards"], live["number_of_replicas"]) == ("2", "1")
    patient.cluster.health(index=index, wait_for_status="green", timeout="120s")
    shards = es.cat.shards(index=index, format="json", h="shard,prirep,state,node")
    assert sorted((s["prirep"], s["node"]) for s in shards) == [
        ("p", NODE_2),
        ("p", NODE_2),
        ("r", NODE_1),
        ("r", NODE_1),
    ], shards
    freshness.bump_generation()

    ids = make_packages(PACKAGES, prefix=PREFIX)
    wait_until_indexed(timeout=60)
    names = dict(Package.objects.filter(pk__in=ids).values_list("pk", "name"))

    searches = SearchLoad(sorted(names.values()))
    edits = EditLoad(ids, interval=0.1)
    api = Client()
    try:
        searches.start()
        edits.start()
        time.sleep(3)

        # Node 2, holding every primary, dies without a chance to say goodbye.
        pid = int((VAR / "elasticsearch-2" / "run" / "elasticsearch.pid").read_text().split()[0])
        killed_at = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: port_closed(HTTP_PORT + 1), timeout=30)
        wait_for(lambda: es.cluster.health()["number_of_nodes"] == 1, timeout=30, interval=0.2)

        # Writes still land while the node is gone: the replicas on node 1 took over.
        marker = Package.objects.get(pk=ids[0])
        marker.summary = "written while node 2 was down"
        marker.save()
        wait_for(
            lambda: api_hit(api, marker.name)["summary"] == "written while node 2 was down",
            timeout=30,
            interval=0.3,
        )
        assert port_closed(HTTP_PORT + 1), "node 2 must still be down"

        # Back with the services manager; searches and edits go on while it starts.
        restarted = manage("up", "elasticsearch")
        back_at = time.monotonic()
        assert restarted.returncode == 0, restarted.stdout + restarted.stderr
        assert "elasticsearch-2: removing stale pid file" in restarted.stdout
        assert "elasticsearch: already running" in restarted.stdout
        health = patient.cluster.health(index=index, wait_for_status="green", timeout="120s")
        assert health["status"] == "green" and not health["timed_out"], health
        time.sleep(2)
        # Enough edits to matter, however quickly node 2 came back.
        wait_for(lambda: edits.edits >= 200, timeout=120, interval=0.5)
    finally:
        edits.stop()
        searches.stop()

    assert not searches.failures, searches.failures[:10]
    assert searches.between(killed_at, back_at) >= 20, "searches must go on during the outage"
    assert searches.between(back_at, time.monotonic()) >= 1
    assert edits.edits >= 200 and not edits.errors, (edits.edits, edits.errors[:5])

    # Every edit reached the index: zero drift, and the API shows each package's last value.
    wait_until_indexed(timeout=90)
    report = verify.verify()
    assert report.rows == PACKAGES and report.clean, report
    assert_index_matches_database()
    response = api.get("/api/search", {"q": PREFIX, "page_size": PACKAGES, "sort": "name"})
    assert response.status_code == 200, response.content
    shown = {hit["name"]: hit["summary"] for hit in response.json()["hits"]}
    assert shown == dict(Package.objects.filter(pk__in=ids).values_list("name", "summary"))
    assert es.cluster.health()["status"] == "green"

    # A full rebuild on the cluster keeps the shards and replicas of the settings.
    rebuilt = rebuild.rebuild()
    live = es.indices.get_settings(index=rebuilt.index)[rebuilt.index]["settings"]["index"]
    assert (live["number_of_shards"], live["number_of_replicas"]) == ("2", "1")
    assert rebuilt.documents == PACKAGES
    health = patient.cluster.health(index=rebuilt.index, wait_for_status="green", timeout="120s")
    assert health["status"] == "green", health
    assert api.get("/api/search", {"q": PREFIX}).json()["total"] == PACKAGES
    slowest = max(duration for _, duration in searches.done)
    print(
        f"\nfailover: cluster up in {cluster_up:.0f}s, node 2 down for "
        f"{back_at - killed_at:.0f}s (restart included); {len(searches.done)} searches "
        f"(slowest {slowest:.2f}s), {edits.edits} edits; {time.monotonic() - began:.0f}s in all"
    )
