"""Editor tools in the admin: index state, reindex action, status page, read-your-writes."""

from __future__ import annotations

import re
import threading
import time
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

import indexing
from indexing import writer
from indexing.models import OutboxEntry
from portal.models import Package
from tests.helpers import change_form_data, make_package
from tests.integration.support import wait_until_indexed

pytestmark = [pytest.mark.integration]


@pytest.fixture
def editor_client(client):
    user = get_user_model().objects.create_superuser("ed", "ed@example.org", "pw")
    client.force_login(user)
    return client


@pytest.mark.django_db
def test_change_page_shows_the_index_state(editor_client, search_index):
    package = make_package("stateful")
    url = f"/admin/portal/package/{package.pk}/change/"
    assert "pending: a change is waiting" in editor_client.get(url).content.decode()
    writer.process_outbox()
    html = editor_client.get(url).content.decode()
    assert "in sync" in html
    package.refresh_from_db()
    assert f"row version {package.row_version}" in html
    assert re.search(r"last indexed 20\d\d-\d\d-\d\d \d\d:\d\d:\d\d UTC", html)  # readable
    assert "." not in html.split("last indexed ")[1][:25]  # no microseconds
    # Queued again although nothing changed (the reindex action): the document already has
    # the row's version, so the page says in sync, not pending.
    indexing.enqueue(Package.objects.filter(pk=package.pk))
    assert indexing.pending(package.pk)
    assert "in sync" in editor_client.get(url).content.decode()


@pytest.mark.django_db
def test_admin_search_lists_the_exact_name_first(editor_client):
    for name in ["abr2gbr", "gimp-data", "gimp", "xgimp"]:
        make_package(name, summary="works with gimp brushes")
    html = editor_client.get("/admin/portal/package/", {"q": "gimp"}).content.decode()
    listed = re.findall(r'class="field-name"><a href="[^"]+">([^<]+)</a>', html)
    assert listed[:3] == ["gimp", "gimp-data", "abr2gbr"], listed


@pytest.mark.django_db
def test_dependency_rows_are_labelled_by_what_they_say(editor_client):
    package = make_package("labelled")
    make_package("labelled-data")
    from portal.models import Dependency

    Dependency.objects.create(package=package, kind="depends", target_name="labelled-data")
    html = editor_client.get(f"/admin/portal/package/{package.pk}/change/").content.decode()
    assert "depends labelled-data" in html
    assert f"{package.pk} depends" not in html


@pytest.mark.django_db
def test_reindex_selected_action_queues_the_packages(editor_client, search_index):
    ids = [make_package(f"act-{i}").pk for i in range(3)]
    writer.process_outbox()
    assert OutboxEntry.objects.count() == 0
    response = editor_client.post(
        "/admin/portal/package/",
        {"action": "reindex_selected", "_selected_action": ids[:2]},
        follow=True,
    )
    assert "2 package(s) queued for reindexing" in response.content.decode()
    assert sorted(OutboxEntry.objects.values_list("object_id", flat=True)) == ids[:2]


@pytest.mark.django_db
def test_status_page(editor_client, search_index):
    make_package("counted")
    writer.process_outbox()
    response = editor_client.get("/admin/indexing/outboxentry/status/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Documents / rows" in html and "1 documents for 1 rows" in html
    assert "Redis (coordination)" in html and "Redis (cache)" in html and "allkeys-lru" in html
    assert search_index in html
    assert "none: everything is indexed" in html
    # Queue lengths read from the broker (whatever earlier tests left waiting there).
    assert re.search(r"indexing: \d+ · maintenance: \d+", html), html


@pytest.mark.django_db
def test_status_page_shows_what_it_can_while_elasticsearch_is_down(
    editor_client, search_index, monkeypatch
):
    """It showed one line, "Elasticsearch is not reachable", and hid the outbox backlog,
    the worker's heartbeat, the queues and Redis, none of which needs Elasticsearch: what
    an operator needs most while it is down."""
    from elasticsearch import Elasticsearch

    from indexing import status
    from search import indices

    make_package("waiting")  # a pending change
    status.record_heartbeat({"backlog": 1})
    down = Elasticsearch("http://127.0.0.1:9", max_retries=0, request_timeout=1)
    with monkeypatch.context() as patch:  # undone before the index fixture's teardown
        patch.setattr(indices, "client", lambda: down)
        html = editor_client.get("/admin/indexing/outboxentry/status/").content.decode()
    assert "Elasticsearch is not reachable" in html
    assert "1 pending" in html and "Worker heartbeat" in html and "s ago" in html
    assert "Redis (coordination)" in html and "Celery queues" in html


@pytest.mark.django_db
def test_status_page_says_unknown_when_the_coordination_redis_is_down(
    editor_client, search_index, monkeypatch
):
    """With the coordination Redis down it stated "no worker has reported for over 60 s",
    "Last full reindex: not recorded" and "None recorded" as facts."""
    from search import stores

    down = stores.redis_client("redis://127.0.0.1:9/0")
    with monkeypatch.context() as patch:  # undone before the index fixture's teardown
        patch.setattr(stores, "coordination", lambda: down)
        html = editor_client.get("/admin/indexing/outboxentry/status/").content.decode()
    assert "no worker has reported" not in html and "not recorded" not in html
    assert "None recorded" not in html
    assert html.count("unknown: the coordination Redis is unreachable") >= 3


@pytest.mark.django_db
def test_status_page_warns_of_another_schema_a_silent_worker_and_set_aside_changes(
    editor_client, search_index
):
    # The page showed none of these: the live index built with another schema (only the
    # command said so), a worker heartbeat long past what /readyz accepts, and which
    # changes Elasticsearch refused and why.
    from indexing import status
    from indexing.models import OutboxEntry
    from search.indices import client

    package = make_package("set-aside")
    writer.process_outbox()
    client().indices.put_mapping(index=search_index, meta={"schema": "an older one"})
    status.record_heartbeat({"backlog": 0})
    stores_key = status.stores.key(status.HEARTBEAT_KEY)
    status.stores.coordination().set(stores_key, time.time() - 600)
    OutboxEntry.objects.create(
        object_id=package.pk, version=package.row_version, refusal="mapper_parsing_exception: x"
    )
    OutboxEntry.objects.update(retry_after=timezone.now() + timedelta(minutes=5))
    html = editor_client.get("/admin/indexing/outboxentry/status/").content.decode()
    assert "built with another schema" in html and "manage.py reindex" in html
    assert "no worker has reported" in html
    assert "1 set aside" in html
    listing = editor_client.get("/admin/indexing/outboxentry/").content.decode()
    assert "mapper_parsing_exception: x" in listing


@pytest.mark.django_db(transaction=True)
def test_editor_reads_their_own_write_without_waiting(editor_client, celery_worker, search_index):
    package = make_package("ryw-package", summary="old words")
    wait_until_indexed()
    response = editor_client.post(
        f"/admin/portal/package/{package.pk}/change/",
        change_form_data(Package.objects.get(pk=package.pk), summary="fresh quokkalicious words"),
    )
    assert response.status_code == 302
    # Straight away, with no polling in the test: the page waits for this editor's write.
    page = editor_client.get("/", {"q": "quokkalicious"})
    assert [h.name for h in page.context["result"].hits] == ["ryw-package"]


def _write_outbox_later(delay: float) -> threading.Thread:
    """The worker, late: the outbox is written ``delay`` seconds from now, in a thread."""
    from django.db import connection

    def run() -> None:
        time.sleep(delay)
        try:
            writer.process_outbox()
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("change", ["rename section", "delete package", "delete selected"])
def test_editor_waits_for_every_kind_of_change_of_theirs(editor_client, search_index, change):
    """Only a package's save was waited for: after renaming a section or deleting a
    package in the admin, the editor's next search showed the old state."""
    from portal.models import Section

    package = make_package("ryw-kept", section="ryw-old-section", summary="wombatish words")
    make_package("ryw-gone", section="ryw-old-section", summary="wombatish words")
    writer.process_outbox()
    section = Section.objects.get(name="ryw-old-section")
    if change == "rename section":
        response = editor_client.post(
            f"/admin/portal/section/{section.pk}/change/", {"name": "ryw-new-section"}
        )
    elif change == "delete package":
        gone = Package.objects.get(name="ryw-gone")
        response = editor_client.post(f"/admin/portal/package/{gone.pk}/delete/", {"post": "yes"})
    else:
        gone = Package.objects.get(name="ryw-gone")
        response = editor_client.post(
            "/admin/portal/package/",
            {"action": "delete_selected", "_selected_action": [gone.pk], "post": "yes"},
        )
    assert response.status_code == 302
    late = _write_outbox_later(1.0)
    try:
        page = editor_client.get("/", {"q": "wombatish"})
    finally:
        late.join()
    hits = page.context["result"].hits
    if change == "rename section":
        assert {h.section for h in hits} == {"ryw-new-section"}
    else:
        assert [h.name for h in hits] == [package.name]


@pytest.mark.django_db
def test_change_page_says_the_index_state_is_unknown_while_elasticsearch_is_down(
    editor_client, search_index, monkeypatch
):
    """It said "last indexed by the last full rebuild" (false) after an error cut mid-word."""
    from elasticsearch import Elasticsearch

    from search import service

    package = make_package("unreachable-state")
    down = Elasticsearch("http://127.0.0.1:9", max_retries=0, request_timeout=1)
    with monkeypatch.context() as patch:
        patch.setattr(service, "client", lambda: down)
        html = editor_client.get(f"/admin/portal/package/{package.pk}/change/").content.decode()
    assert "index unreachable" in html and "last indexed unknown" in html
    assert "by the last full rebuild" not in html
