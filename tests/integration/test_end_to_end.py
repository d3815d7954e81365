"""The walking skeleton: ORM save -> after-commit task -> real worker -> index -> search page."""

from __future__ import annotations

import pytest
from django.conf import settings

from tests.conftest import wait_for
from tests.helpers import make_package

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_saved_row_becomes_findable_through_the_real_worker(celery_worker, search_index, client):
    assert settings.CELERY_TASK_ALWAYS_EAGER is False  # the worker process does the indexing

    make_package(
        "zorblax-frobnicator",
        section="utils",
        summary="frobnicates zorblaxes with great care",
    )
    make_package("other-frobnicator", section="web", summary="frobnicates the web")

    def found():
        response = client.get("/", {"q": "frobnicator"})
        assert response.status_code == 200
        html = response.content.decode()
        # Both rows are searchable, and the section facet shows each value with its count.
        if "zorblax-frobnicator" not in html or "other-frobnicator" not in html:
            return None
        facets = response.context["result"].facets
        section = next((f for f in facets if f.name == "section"), None)
        counts = {(v.value, v.count) for v in section.values} if section else set()
        return html if counts == {("utils", 1), ("web", 1)} else None

    # The facet counts must follow within seconds (the cache's TTL backstop is minutes).
    html = wait_for(found, timeout=20)
    assert 'data-facet="section" data-value="utils"' in html
    assert 'data-facet="section" data-value="web"' in html

    # Selecting the facet narrows the hits.
    response = client.get("/", {"q": "frobnicator", "section": "utils"})
    names = [h.name for h in response.context["result"].hits]
    assert names == ["zorblax-frobnicator"]


def test_rolled_back_write_is_never_indexed(celery_worker, search_index, client):
    from django.db import transaction

    from search.indices import client as es_client
    from search.indices import read_alias

    with pytest.raises(RuntimeError), transaction.atomic():
        make_package("ghost-package-rolled-back")
        raise RuntimeError("abort")
    marker = make_package("marker-after-rollback")

    # Once the later write is visible, the rolled-back one would have been too.
    wait_for(lambda: es_client().exists(index=read_alias(), id=marker.pk), timeout=20)
    es_client().indices.refresh(index=read_alias())
    hits = es_client().search(
        index=read_alias(), query={"term": {"name.raw": "ghost-package-rolled-back"}}
    )
    assert hits["hits"]["total"]["value"] == 0
