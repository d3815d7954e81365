"""The demo editor (``manage.py load_demo``) can do what the README says an editor does:
edit the catalog, curate search, read the analytics report and the index state, all
linked from the admin index."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from portal.management.commands.load_demo import DEMO_USER, Command

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


@pytest.fixture
def editor(client):
    Command().demo_editor()
    client.force_login(get_user_model().objects.get(username=DEMO_USER))
    return client


@pytest.mark.parametrize(
    "url",
    [
        "/admin/search/promotion/",
        "/admin/search/promotion/add/",
        "/admin/search/synonymset/",
        "/admin/search/synonymset/add/",
        "/admin/search/querystat/report/",
        "/admin/indexing/outboxentry/status/",
        "/admin/portal/package/",
    ],
)
def test_the_demo_editor_may_curate_and_read_the_reports(editor, url):
    assert editor.get(url).status_code == 200


def test_the_admin_index_links_the_search_pages(editor):
    html = editor.get("/admin/").content.decode()
    assert 'href="/admin/indexing/outboxentry/status/"' in html
    assert 'href="/admin/search/querystat/report/"' in html


def test_staff_without_those_permissions_see_no_links(client):
    staff = get_user_model().objects.create_user("plain", password="pw", is_staff=True)
    client.force_login(staff)
    html = client.get("/admin/").content.decode()
    assert "/admin/search/querystat/report/" not in html
    assert client.get("/admin/search/querystat/report/").status_code == 403


def test_zero_result_queries_offer_a_synonym_or_a_promotion(editor):
    from django.utils import timezone

    from search.models import QueryStat

    QueryStat.objects.create(
        day=timezone.now().date(), query="photo shop", searches=4, zero_results=4
    )
    html = editor.get("/admin/search/querystat/report/").content.decode()
    assert 'href="/admin/search/synonymset/add/?terms=photo%20shop%2C%20"' in html
    assert 'href="/admin/search/promotion/add/?query=photo%20shop"' in html
    form = editor.get("/admin/search/synonymset/add/", {"terms": "photo shop, "})
    assert "photo shop, </textarea>" in form.content.decode()  # the form starts filled in


def test_load_demo_rebuilds_an_index_built_with_another_schema(search_index, settings):
    # A checkout whose schema changed (a new field, an analyser) left the demo's complete
    # index as it was: `make run` then served a search without the new field until someone
    # ran `manage.py reindex` by hand.
    from io import StringIO

    from django.core.management import call_command

    from indexing import rebuild, writer
    from search import indices
    from tests.helpers import make_package

    settings.DEBUG = True
    make_package("schema-probe", installed_size_kb=50)
    writer.process_outbox()
    es = indices.client()
    es.indices.put_mapping(index=search_index, meta={"schema": "an older one"})
    out = StringIO()
    call_command("load_demo", stdout=out)
    live = indices.alias_state().live
    assert live != search_index, out.getvalue()
    assert indices.index_meta(live, es)["schema"] == indices.schema_digest()
    assert "another schema" in out.getvalue()
    assert rebuild.ensure_index().live == live


def test_load_demo_keeps_the_changes_an_index_made_meanwhile_still_needs(search_index, settings):
    """With no index yet, load_demo drops the import's outbox rows after its first rebuild
    (that rebuild read every row). If the worker made a first index meanwhile (the sweeper
    saw the import's backlog), the rebuild kept that index as its rollback target, and
    dropping the rows it never received left a partial catalog to roll back to."""
    from io import StringIO

    from django.core.management import call_command

    import indexing
    from indexing import rebuild, writer
    from portal.models import Package
    from search import indices
    from tests.conftest import drop_test_indices
    from tests.helpers import make_packages

    settings.DEBUG = True
    settings.SEARCH_ROLLBACK_HOURS = 24
    drop_test_indices()
    make_packages(30, prefix="demo-race")
    real_mark = indexing.outbox_mark

    def mark_then_the_worker_starts():
        mark = real_mark()
        rebuild.ensure_index()  # the worker's first index ...
        writer.process_outbox(batch_size=5, max_batches=1)  # ... and its first batch
        return mark

    indexing.outbox_mark = mark_then_the_worker_starts
    try:
        call_command("load_demo", stdout=StringIO())
    finally:
        indexing.outbox_mark = real_mark
    state = indices.alias_state()
    (target,) = state.previous
    writer.process_outbox()  # what the worker does next
    es = indices.client()
    es.indices.refresh(index=target)
    assert es.count(index=target)["count"] == Package.objects.count() == 30
