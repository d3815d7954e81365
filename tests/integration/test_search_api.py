"""The search service, the JSON API and the search page against the real Elasticsearch."""

from __future__ import annotations

import json
import logging
import time
import uuid
from types import SimpleNamespace

import pytest
from elasticsearch import Elasticsearch
from elasticsearch.dsl import connections
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from indexing import writer
from portal.models import Tag
from search import freshness, indices, ratelimit, stores
from tests.helpers import make_package

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


@pytest.fixture
def catalog(search_index):
    """A small catalog with known facet counts, indexed synchronously."""
    x11, _ = Tag.objects.get_or_create(facet="interface", value="x11")
    cli, _ = Tag.objects.get_or_create(facet="interface", value="commandline")
    python, _ = Tag.objects.get_or_create(facet="implemented-in", value="python")
    made = {}
    made["vim"] = make_package(
        "vim",
        section="editors",
        summary="Vi IMproved - enhanced vi editor",
        priority="optional",
        installed_size_kb=3500,
    )
    made["vim-gtk3"] = make_package(
        "vim-gtk3", section="editors", summary="Vi IMproved - enhanced vi editor with GTK3 GUI"
    )
    made["neovim"] = make_package(
        "neovim", section="editors", summary="heavily refactored vim fork", installed_size_kb=50
    )
    made["firefox-esr"] = make_package(
        "firefox-esr",
        section="web",
        summary="Mozilla Firefox web browser - Extended Support",
        installed_size_kb=250_000,
    )
    made["gwenview"] = make_package(
        "gwenview",
        section="graphics",
        summary="image viewer",
        description="A fast and easy to use image viewer by KDE.",
    )
    made["feh"] = make_package("feh", section="graphics", summary="imlib2 based image viewer")
    made["viewer-image-tool"] = make_package(
        "viewer-image-tool", section="graphics", summary="a viewer tool for every image"
    )
    made["libssl3"] = make_package(
        "libssl3", section="libs", summary="Secure Sockets Layer toolkit", priority="important"
    )
    made["python3-django"] = make_package(
        "python3-django", section="python", summary="High-level Python web development framework"
    )
    made["evil"] = make_package(
        "evil-markup", section="misc", summary='<script>alert("x")</script> scripted <b>bold</b>'
    )
    for i in range(25):
        made[f"frob-{i}"] = make_package(
            f"frobnicator-{i:02d}",
            section="utils" if i % 2 else "devel",
            summary=f"frobnicator number {i}",
            priority="extra" if i % 5 == 0 else "optional",
        )
    made["vim"].tags.add(cli)
    made["vim-gtk3"].tags.add(x11)
    made["gwenview"].tags.add(x11, python)
    made["feh"].tags.add(x11)
    writer.process_outbox()
    return made


def api(client, **params):
    response = client.get("/api/search", params)
    return response.status_code, response.json()


def names(body) -> list[str]:
    return [h["name"] for h in body["hits"]]


def facet(body, name) -> dict[str, int]:
    for f in body["facets"]:
        if f["name"] == name:
            return {v["value"]: v["count"] for v in f["values"]}
    return {}


# ------------------------------------------------------------------------------- relevance


def test_exact_name_first_then_prefix_then_text(client, catalog):
    _, body = api(client, q="vim")
    assert names(body)[:2] == ["vim", "vim-gtk3"]
    assert "neovim" in names(body)


def test_name_parts_and_lib_prefix_match(client, catalog):
    assert names(api(client, q="django")[1])[0] == "python3-django"
    assert names(api(client, q="ssl")[1])[0] == "libssl3"


def test_typo_tolerance_without_drowning_exact_matches(client, catalog):
    _, body = api(client, q="firefx")
    assert names(body)[0] == "firefox-esr"
    _, body = api(client, q="feh")
    assert names(body)[0] == "feh"


def test_typo_tolerance_is_a_fallback_for_few_exact_hits(client, catalog):
    make_package("frobnicater-x", section="misc", summary="frobnicater, one letter off")
    writer.process_outbox()
    # 25 exact hits: the near miss "frobnicater" is not mixed in.
    _, body = api(client, q="frobnicator")
    assert body["total"] == 25 and "frobnicater-x" not in names(body)
    # One exact hit: typo tolerance adds the 25 "frobnicator"s, after the exact match.
    _, body = api(client, q="frobnicater")
    assert body["total"] == 26
    assert names(body)[0] == "frobnicater-x"
    # The facet-value search counts what the search counts (here: the typo-tolerant hits).
    response = client.get("/api/facets/section", {"q": "frobnicater"})
    counts = {v["value"]: v["count"] for v in response.json()["values"]}
    assert counts == {"devel": 13, "utils": 12, "misc": 1}


def test_filters_that_leave_few_hits_do_not_turn_typo_tolerance_on(client, catalog):
    """Typo tolerance and "did you mean" are about the words: a filter that leaves few of
    the packages they find says nothing about a typo (and the typo pass cost a sixth of the
    benchmark's searches a second request)."""
    from django.http import QueryDict

    from search import service

    make_package("frobnicater-x", section="misc", summary="frobnicater, one letter off")
    writer.process_outbox()
    # 25 packages say "frobnicator", none of them in misc: nothing shown, no near misses,
    # and the section counts say where they are.
    result = service.search(service.parse(QueryDict("q=frobnicator&section=misc")))
    assert (result.total, result.mode, result.suggestion) == (0, "exact", None)
    sections = {v.value: v.count for f in result.facets if f.name == "section" for v in f.values}
    assert sections["devel"] == 13 and sections["utils"] == 12
    # The facet-value search decides the same way.
    response = client.get("/api/facets/section", {"q": "frobnicator", "section": "misc"})
    counts = {v["value"]: v["count"] for v in response.json()["values"]}
    assert counts == {"devel": 13, "utils": 12, "misc": 0}  # selected: always listed
    # Words that find few packages still get typo tolerance, filtered or not.
    result = service.search(service.parse(QueryDict("q=frobnicater&section=devel")))
    assert (result.total, result.mode) == (13, "fuzzy")


def test_summary_cache_holds_total_and_suggestion(client, catalog):
    first = api(client, q="grobnicator")[1]
    again = api(client, q="grobnicator")[1]
    assert (first["facets_cached"], again["facets_cached"]) == (False, True)
    assert first["total"] == again["total"] == 0
    assert first["did_you_mean"] == again["did_you_mean"] == "frobnicator"
    # A cached summary still gives the exact total on every page.
    page2 = api(client, q="frobnicator", page=2, page_size=10)[1]
    assert page2["facets_cached"] is False and page2["total"] == 25
    page3 = api(client, q="frobnicator", page=3, page_size=10)[1]
    assert page3["facets_cached"] is True and page3["total"] == 25
    assert len(page3["hits"]) == 5


def test_quoted_phrase_is_required_and_ranks(client, catalog):
    _, body = api(client, q='"image viewer"')
    assert set(names(body)) == {"gwenview", "feh"}  # "viewer tool for every image" is out
    _, body = api(client, q="image viewer")
    assert set(names(body)) >= {"gwenview", "feh", "viewer-image-tool"}
    assert names(body)[-1] == "viewer-image-tool"  # phrase matches rank higher


def test_did_you_mean_only_when_it_finds_more(client, catalog):
    # A wrong first letter is beyond typo tolerance: nothing found, a correction offered.
    _, body = api(client, q="grobnicator")
    assert body["total"] == 0
    assert body["did_you_mean"] == "frobnicator"
    assert api(client, q="frobnicator")[1]["total"] == 25
    # No suggestion when the search finds enough, or when no correction finds anything.
    _, body = api(client, q="vim")
    assert body["did_you_mean"] is None
    _, body = api(client, q="qqqqqqqqqzz")
    assert body["total"] == 0 and body["did_you_mean"] is None


# ------------------------------------------------------------------------------- facets


def test_disjunctive_facets(client, catalog):
    _, body = api(client, q="frobnicator", section=["utils"])
    assert body["total"] == 12
    # The section facet ignores its own filter: the other value is still offered.
    assert facet(body, "section") == {"utils": 12, "devel": 13}
    # Other facets apply it.
    assert facet(body, "priority") == {"optional": 10, "extra": 2}
    # OR within a facet, AND across facets.
    _, body = api(client, q="frobnicator", section=["utils", "devel"], priority=["extra"])
    assert body["total"] == 5
    assert facet(body, "section") == {"utils": 2, "devel": 3}
    assert facet(body, "priority") == {"optional": 20, "extra": 5}


def test_selected_values_always_shown(client, catalog):
    _, body = api(client, q="frobnicator", section=["graphics"])
    assert body["total"] == 0
    values = next(f for f in body["facets"] if f["name"] == "section")["values"]
    assert {"value": "graphics", "label": "graphics", "count": 0, "selected": True} in values


def test_tag_and_size_facets(client, catalog):
    _, body = api(client, **{"tag.interface": ["x11"]})
    assert set(names(body)) == {"vim-gtk3", "gwenview", "feh"}
    assert facet(body, "tag.interface") == {"x11": 3, "commandline": 1}
    assert facet(body, "tag.implemented-in") == {"python": 1}
    _, body = api(client, size=["huge"])
    assert names(body) == ["firefox-esr"]
    _, body = api(client, size=["tiny", "medium"])
    assert set(names(body)) == {"neovim", "vim"}


def test_facet_value_lists_leave_out_placeholders_unless_selected(client, catalog):
    # The sidebar hides "TODO" tag values (not properties of a package); "Show more" and the
    # facet's search box listed them.
    todo, _ = Tag.objects.get_or_create(facet="interface", value="TODO")
    catalog["feh"].tags.add(todo)
    writer.process_outbox()

    def listed(**params):
        response = client.get("/api/facets/tag.interface", params)
        return [v["value"] for v in response.json()["values"]]

    assert "TODO" not in listed(limit=100) and "x11" in listed(limit=100)
    assert "TODO" in listed(limit=100, **{"tag.interface": "TODO"})


def test_facet_value_lists_always_include_the_selected_values(client, catalog):
    # The page replaces a facet's checkboxes with this list (its search box, "Show more"):
    # a selected value missing from it lost its checkbox, and the next change of the form
    # dropped that filter.
    response = client.get("/api/facets/section", {"contains": "gra", "section": "editors"})
    values = {v["value"]: (v["count"], v["selected"]) for v in response.json()["values"]}
    assert values == {"graphics": (3, False), "editors": (3, True)}


def test_a_tag_label_edit_is_never_kept_in_cached_counts_by_a_process_that_lags(client, catalog):
    # Labels come from a per-process vocabulary kept 5 minutes. A process that had not yet
    # reloaded it cached the counts with the old label under the new generation, and every
    # process then served that for another 5 minutes, under a validator that looked fresh.
    from portal.models import Tag
    from search import facets

    def labels():
        body = client.get("/api/search", {"q": "viewer"}).json()
        shown = {f["name"]: f for f in body["facets"]}["tag.interface"]["values"]
        return {v["value"]: v["label"] for v in shown}

    Tag.objects.filter(facet="interface", value="x11").update(label="Old Label")
    facets._vocabulary.reset()
    writer.process_outbox()
    assert labels()["x11"] == "Old Label"
    Tag.objects.filter(facet="interface", value="x11").update(label="New Label")
    writer.process_outbox()  # the trigger reindexed its packages: the generation moved on
    # This process still has the old vocabulary: counts cached with it.
    assert labels()["x11"] == "Old Label"
    facets._vocabulary.reset()  # its 5 minutes are over (or another process answers)
    assert labels()["x11"] == "New Label"


def test_a_tag_label_edited_in_the_admin_shows_at_once_in_that_process(client, catalog):
    from django.contrib.auth import get_user_model

    from portal.models import Tag

    tag = Tag.objects.get(facet="interface", value="x11")
    editor = get_user_model().objects.create_superuser("labeller", "l@example.org", "pw")
    client.force_login(editor)
    client.get("/api/search", {"q": "viewer"})  # the vocabulary is read and kept
    form = {"facet": tag.facet, "value": tag.value, "label": "Edited In Admin"}
    assert client.post(f"/admin/portal/tag/{tag.pk}/change/", form).status_code == 302
    writer.process_outbox()
    client.logout()
    body = client.get("/api/search", {"q": "viewer"}).json()
    shown = {f["name"]: f for f in body["facets"]}["tag.interface"]["values"]
    assert {v["value"]: v["label"] for v in shown}["x11"] == "Edited In Admin"


def test_facet_value_search(client, catalog):
    response = client.get("/api/facets/tag.interface", {"contains": "X1"})
    assert response.status_code == 200
    assert [v["value"] for v in response.json()["values"]] == ["x11"]
    response = client.get("/api/facets/maintainer", {"contains": "test"})
    assert response.json()["values"][0]["value"] == "Test Maintainer"
    assert client.get("/api/facets/size").status_code == 400
    assert client.get("/api/facets/nonsense").status_code == 400


# ------------------------------------------------------------------------------- cache


def test_facet_counts_are_cached_and_never_stale_after_an_edit(client, catalog):
    _, first = api(client, q="frobnicator")
    _, second = api(client, q="frobnicator", page=2)
    assert first["facets_cached"] is False
    assert second["facets_cached"] is True
    assert facet(second, "section") == facet(first, "section")
    moved = catalog["frob-1"]
    from portal.models import Section

    moved.section = Section.objects.get_or_create(name="graphics")[0]
    moved.save()
    writer.process_outbox()  # the edit is now searchable
    _, after = api(client, q="frobnicator")
    assert after["facets_cached"] is False
    assert facet(after, "section") == {"devel": 13, "utils": 11, "graphics": 1}


def test_no_cached_counts_while_a_write_may_already_be_visible(client, catalog):
    """The window between a write becoming searchable and the generation moving on."""

    api(client, q="frobnicator")
    assert api(client, q="frobnicator")[1]["facets_cached"] is True
    es = indices.client()
    doc = es.get(index=indices.read_alias(), id=catalog["frob-1"].pk)["_source"]
    with freshness.writing():
        # Visible at once, and the generation has not moved yet.
        es.index(
            index=indices.read_alias(),
            id=catalog["frob-1"].pk,
            document={**doc, "section": "graphics"},
            refresh=True,
        )
        _, during = api(client, q="frobnicator")
        assert during["facets_cached"] is False
        assert facet(during, "section") == {"devel": 13, "utils": 11, "graphics": 1}
        assert api(client, q="frobnicator")[1]["facets_cached"] is False  # nor filled
    _, after = api(client, q="frobnicator")
    assert after["facets_cached"] is False
    assert facet(after, "section") == {"devel": 13, "utils": 11, "graphics": 1}
    assert api(client, q="frobnicator")[1]["facets_cached"] is True
    # A writer that died without unregistering stops counting at its deadline, and the
    # generation moves on then (its write may have become visible meanwhile).
    key = stores.key(freshness.WRITING_KEY)
    redis_client = stores.coordination()
    before = freshness.snapshot()
    redis_client.zadd(key, {"dead-writer": time.time() - 1})
    assert freshness.snapshot() == before + 1
    redis_client.zadd(key, {"live-writer": time.time() + 60})
    assert freshness.snapshot() is None
    redis_client.delete(key)


def dead_redis():
    return stores.redis_client("redis://127.0.0.1:1/0")


def test_an_index_write_is_not_made_unregistered_nor_unregistered_unbumped(catalog, monkeypatch):
    with monkeypatch.context() as patched:
        patched.setattr(stores, "coordination", dead_redis)
        with pytest.raises(freshness.WriteNotRegistered), freshness.writing():
            pytest.fail("the write ran although it could not be registered")
    # A write whose generation bump failed raises (the caller writes again) and stays
    # registered: the cache stays off.
    assert freshness.snapshot() is not None
    real = stores.coordination()
    with pytest.raises(freshness.GenerationNotBumped), freshness.writing():
        # Redis goes away during the write: the registration is made, the bump cannot be.
        monkeypatch.setattr(stores, "coordination", dead_redis)
        stores.Memo.reset_all()
    monkeypatch.undo()
    stores.Memo.reset_all()
    assert freshness.snapshot() is None
    real.delete(stores.key(freshness.WRITING_KEY))
    assert freshness.snapshot() is not None


def count_engine_searches(monkeypatch) -> list[object]:
    """Record every search request the process sends to Elasticsearch."""
    calls: list[object] = []
    real = Elasticsearch.search

    def counting(self, *args, **kwargs):
        calls.append(kwargs.get("body"))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Elasticsearch, "search", counting)
    return calls


def test_a_repeated_search_is_answered_from_redis_alone(client, catalog, monkeypatch):
    api(client, q="vim")
    assert api(client, q="vim")[1]["hits_cached"] is True
    snapshots = []
    real_snapshot = freshness.snapshot
    monkeypatch.setattr(freshness, "snapshot", lambda *a: snapshots.append(a) or real_snapshot(*a))
    engine = count_engine_searches(monkeypatch)
    body = api(client, q="vim")[1]
    assert body["facets_cached"] and body["hits_cached"] and body["took_ms"] == 0
    assert names(body)[:2] == ["vim", "vim-gtk3"]
    # The generation (asked by the HTTP validator and the cache lookup: one Redis round trip
    # for both, test_one_snapshot_per_request), then counts and page; no engine.
    assert len(snapshots) == 2 and engine == []
    # Another page of the same search: counts from the cache, hits from the engine once.
    second = api(client, q="vim", page=2, page_size=1)[1]
    assert second["facets_cached"] and not second["hits_cached"] and len(engine) == 1
    assert names(second) == ["vim-gtk3"]
    assert api(client, q="vim", page=2, page_size=1)[1]["hits_cached"] is True
    # A new generation: nothing cached is used.
    freshness.bump_generation()
    body = api(client, q="vim")[1]
    assert not body["facets_cached"] and not body["hits_cached"]
    assert names(body)[:2] == ["vim", "vim-gtk3"]


def test_a_cold_search_keeps_its_summary_and_page_in_one_round_trip(client, catalog, monkeypatch):
    # Past the lookup, a cold search took the stampede lock, then stored its summary,
    # released the lock and stored its page: four round trips to the cache Redis where two
    # do (the lock; then the summary, the page and the release, pipelined).
    from redis.connection import AbstractConnection

    port = stores.cache_client().connection_pool.connection_kwargs["port"]
    sends = []
    real = AbstractConnection.send_packed_command

    def counting(self, *args, **kwargs):
        if getattr(self, "port", None) == port:
            sends.append(1)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(AbstractConnection, "send_packed_command", counting)
    cold = api(client, q="vim")[1]
    cold_trips = len(sends)
    sends.clear()
    warm = api(client, q="vim")[1]
    assert not cold["hits_cached"] and warm["facets_cached"] and warm["hits_cached"]
    assert cold_trips - len(sends) == 2


def test_a_cold_search_sends_its_plans_summary_body_first(client, catalog, monkeypatch):
    # bench.search's engine phase sends Plan.summary_bodies("exact") alone as the floor of
    # a cold search: they must be the very requests a cold search sends.
    from django.http import QueryDict

    from search import service

    sent = []
    real = service._run
    monkeypatch.setattr(service, "_run", lambda body: sent.append(body) or real(body))
    query_string = "q=image+viewer&section=graphics&sort=relevance"
    api(client, **dict(QueryDict(query_string).items()))
    plan = service.plan(service.parse(QueryDict(query_string)))
    assert sent and [sent[0]] == plan.summary_bodies("exact")
    assert {"query", "aggs", "highlight", "post_filter"} <= set(sent[0])


def test_a_browse_counts_the_same_however_it_is_asked(client, catalog):
    # A browse sorted by a field is asked as match_all with its unfiltered facets at the top
    # level (Elasticsearch then counts from the index): the same counts, total and hits as
    # when every package is scored and every facet counted under a filter aggregation.
    from django.http import QueryDict

    from search import query, service

    for query_string in ("", "section=utils", "section=utils&priority=extra"):
        work = service.plan(service.parse(QueryDict(f"{query_string}&sort=name")))
        fast = work.summary_body("exact")
        assert fast["query"] == {"match_all": {}}
        top = {name for name in fast["aggs"] if not name.startswith("#")}
        assert bool(top) == (len(work.clauses) < 2)
        slow = dict(fast, query=query.ranked_query(""))
        slow["aggs"] = {k: v for k, v in fast["aggs"].items() if k not in top}
        slow["aggs"]["#all"] = {
            "filter": {"match_all": {}},
            "aggs": {k: fast["aggs"][k] for k in top},
        }
        answers = service._run(fast), service._run(slow)
        flat = dict(answers[1]["aggregations"])
        flat.update(flat.pop("#all"))
        counts = [service._read_facets(work, a) for a in (answers[0]["aggregations"], flat)]
        assert counts[0] == counts[1] and sum(v.count for v in counts[0][0].values) > 0
        totals = [a["hits"]["total"]["value"] for a in answers]
        assert totals[0] == totals[1] > 0
        assert [h["_id"] for h in answers[0]["hits"]["hits"]] == [
            h["_id"] for h in answers[1]["hits"]["hits"]
        ]
        status, body = api(client, **dict(QueryDict(query_string).lists()), sort="name")
        assert status == 200 and body["total"] == totals[0]


def test_a_browse_by_relevance_counts_apart_from_its_ranked_hits(client, catalog, monkeypatch):
    # Ranked by relevance, a browse's hits need every package scored, but its counts do not:
    # its cold search sends both requests together (one msearch), the counts as match_all,
    # and answers as the one scored request with the aggregations did.
    from django.http import QueryDict

    from search import query, service

    sent = []
    real = Elasticsearch.msearch
    monkeypatch.setattr(
        Elasticsearch, "msearch", lambda self, **kw: sent.append(kw) or real(self, **kw)
    )
    for query_string in ("", "section=utils", "section=utils&priority=extra"):
        work = service.plan(service.parse(QueryDict(query_string)))
        hits, counts = work.summary_bodies("exact")
        assert "function_score" in str(hits["query"]) and "aggs" not in hits
        assert counts["query"] == {"match_all": {}} and counts["aggs"] == work.aggregations
        one = service._run(work.summary_body("exact"))
        both = service._run_all([hits, counts])
        assert both["hits"]["total"] == one["hits"]["total"]
        assert [h["_id"] for h in both["hits"]["hits"]] == [h["_id"] for h in one["hits"]["hits"]]
        facets = service._read_facets(work, both["aggregations"])
        assert facets == service._read_facets(work, one["aggregations"]) and facets
        assert query.totals(both) == query.totals(one)
        sent.clear()
        service.freshness.bump_generation()
        status, body = api(client, **dict(QueryDict(query_string).lists()))
        assert status == 200 and body["total"] == one["hits"]["total"]["value"]
        assert [kw["searches"] for kw in sent] == [query.msearch_searches([hits, counts])]
    # bench.search's engine phase sends the same pair, as one msearch.
    from bench import search_queries
    from bench.search.phases import engine_bodies

    browse = search_queries.Query(q="", filters={"section": ("utils",)}, kind="browse")
    [(endpoint, payload)] = engine_bodies([browse])
    work = service.plan(service.parse(QueryDict("section=utils")))
    lines = [json.loads(line) for line in payload.decode().splitlines()]
    assert endpoint == "_msearch"
    assert lines == query.msearch_searches(work.summary_bodies("exact"))
    # The counts (size 0) are not kept by Elasticsearch's request cache, as in the service.
    assert [line for line in lines if "request_cache" in line] == [
        {"request_cache": True},
        {"request_cache": False},
    ]
    [(endpoint, _)] = engine_bodies([search_queries.Query(q="vim")])
    assert endpoint == "_search?request_cache=false"


def test_a_failed_part_of_a_browse_is_a_clear_error(client, catalog, monkeypatch):
    from search import service

    def failing(self, **kw):
        return {"responses": [{"hits": {}}, {"error": {"type": "x"}, "status": 503}]}

    monkeypatch.setattr(Elasticsearch, "msearch", failing)
    with pytest.raises(service.SearchUnavailable):
        service._run_all([{"query": {"match_all": {}}}, {"size": 0}])
    service.freshness.bump_generation()
    status, body = api(client, section="utils")
    assert status == 503 and "error" in body


def partial(response) -> dict:
    """``response`` as Elasticsearch answers when a shard failed: its hits are missing."""
    body = dict(response)
    total = body["_shards"]["total"]
    body["_shards"] = {**body["_shards"], "successful": total - 1, "failed": 1}
    body["hits"] = {**body["hits"], "hits": []}
    return body


def test_a_partial_answer_is_asked_again(client, catalog, monkeypatch):
    # A node that just died leaves a shard without an answer for a moment: the search is
    # asked once more (the copies that took over answer it), never served or cached partial.
    calls = []
    real = Elasticsearch.search

    def partial_once(self, **kwargs):
        calls.append(kwargs.get("body"))
        response = real(self, **kwargs)
        return partial(response) if len(calls) == 1 else response

    monkeypatch.setattr(Elasticsearch, "search", partial_once)
    status, body = api(client, q="frobnicator")
    assert status == 200 and body["total"] == 25 and len(body["hits"]) == 20
    assert calls[0] == calls[1]  # the same request, again


def test_a_search_still_partial_is_refused_and_not_cached(client, catalog, monkeypatch):
    real = Elasticsearch.search
    monkeypatch.setattr(Elasticsearch, "search", lambda self, **kw: partial(real(self, **kw)))
    status, body = api(client, q="frobnicator")
    assert status == 503 and "unavailable" in body["error"]["message"]
    assert api(client, sort="name", section="utils")[0] == 503  # a browse too
    monkeypatch.undo()
    status, body = api(client, q="frobnicator")
    assert status == 200 and body["total"] == 25 and not body["facets_cached"]


def test_a_search_waiting_for_anothers_summary_uses_the_cached_page(client, catalog, monkeypatch):
    # The summary is being computed by another request (its lock is taken) and the page of
    # hits is cached: once the summary arrives, nothing is asked of the engine.
    import threading

    from django.http import QueryDict

    from search import cache, service

    api(client, q="vim")
    work = service.plan(service.parse(QueryDict("q=vim")))
    found = cache.lookup(service.live_index(), [work.summary_name(), work.page_name()])
    summary_key, summary = found.key(0), found.value(0)
    assert summary is not None and found.value(1) is not None
    store = stores.cache()
    store.delete(summary_key)
    store.set(f"{summary_key}:lock", 1, 5)
    threading.Timer(0.05, lambda: store.set(summary_key, summary, 60)).start()
    engine = count_engine_searches(monkeypatch)
    body = api(client, q="vim")[1]
    assert body["facets_cached"] and body["hits_cached"] and engine == []
    assert names(body)[:2] == ["vim", "vim-gtk3"]


def test_page_cache_can_be_switched_off(client, catalog, settings):
    settings.SEARCH_PAGE_CACHE = False
    api(client, q="vim")
    body = api(client, q="vim")[1]
    assert body["facets_cached"] is True and body["hits_cached"] is False


def test_search_works_uncached_when_redis_is_down(client, catalog, monkeypatch, caplog):
    monkeypatch.setattr(stores, "coordination", dead_redis)
    stores.Memo.reset_all()
    with caplog.at_level(logging.WARNING):
        status, body = api(client, q="vim")
        status2, body2 = api(client, q="vim")
    assert (status, status2) == (200, 200)
    assert names(body)[0] == "vim" and body["facets"]
    assert body2["facets_cached"] is False
    assert "search cache unavailable" in caplog.text
    monkeypatch.undo()
    stores.Memo.reset_all()


@pytest.fixture
def engine_down():
    """The process's Elasticsearch connection points at a closed port."""
    previous = connections.get_connection("default")
    connections.create_connection(
        "default", hosts=["http://127.0.0.1:1"], request_timeout=1, max_retries=0
    )
    stores.Memo.reset_all()
    yield
    connections.add_connection("default", previous)
    stores.Memo.reset_all()


def test_elasticsearch_down_gives_503(client, catalog, engine_down):
    response = client.get("/api/search", {"q": "vim"})
    assert response.status_code == 503
    assert "temporarily unavailable" in response.json()["error"]["message"]
    page = client.get("/", {"q": "vim"})
    assert page.status_code == 503
    assert b"Search is temporarily unavailable" in page.content
    assert client.get("/api/suggest", {"q": "vi"}).status_code == 503


def test_a_database_failure_while_planning_a_search_gives_503(client, catalog, monkeypatch):
    # A search reads the editors' curation and the tag facets from PostgreSQL (kept per
    # process for a while); when that read failed, the answer was a 500.
    from django.db import OperationalError

    from search import curation
    from search.stores import Memo

    def down():
        raise OperationalError("could not connect to server")

    Memo.reset_all()
    monkeypatch.setattr(curation, "_load", down)
    monkeypatch.setattr(curation._current, "compute", down)
    response = client.get("/api/search", {"q": "vim"})
    assert response.status_code == 503
    assert "temporarily unavailable" in response.json()["error"]["message"]
    assert client.get("/", {"q": "vim"}).status_code == 503


# ------------------------------------------------------------------------------- paging etc.


def test_sorting_and_paging(client, catalog):
    _, body = api(client, q="frobnicator", sort="name", page_size=10)
    assert names(body)[:3] == ["frobnicator-00", "frobnicator-01", "frobnicator-02"]
    _, page3 = api(client, q="frobnicator", sort="name", page_size=10, page=3)
    assert names(page3) == [f"frobnicator-{i:02d}" for i in range(20, 25)]
    _, by_size = api(client, sort="size", page_size=3)
    assert names(by_size) == ["neovim", "vim", "firefox-esr"]


def test_cursor_paging_walks_everything_once(client, catalog):
    seen, cursor = [], None
    for _ in range(10):
        params = {"q": "frobnicator", "page_size": 7, "sort": "name"}
        if cursor:
            params["cursor"] = cursor
        status, body = api(client, **params)
        assert status == 200
        seen += names(body)
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert seen == sorted(seen) and len(seen) == len(set(seen)) == 25


def test_a_page_that_ends_at_the_last_hit_gives_no_cursor(client, catalog):
    # A full last page offered a cursor to a page of nothing (the schema: null on the
    # last page).
    _, body = api(client, q="frobnicator", page_size=25, sort="name")
    assert len(body["hits"]) == 25 and body["next_cursor"] is None
    _, body = api(client, q="frobnicator", page_size=5, page=5, sort="name")
    assert len(body["hits"]) == 5 and body["next_cursor"] is None
    _, body = api(client, q="frobnicator", page_size=5, page=4, sort="name")
    assert body["next_cursor"] is not None


def test_highlights_are_safe_html(client, catalog):
    _, body = api(client, q="scripted")
    html = body["hits"][0]["highlight"]["summary"]
    assert "<script" not in html and "<b>" not in html
    assert "&lt;" in html and "<mark>scripted</mark>" in html
    # Only our own tags survive: strip them and no markup is left.
    assert "<" not in html.replace("<mark>", "").replace("</mark>", "")
    page = client.get("/", {"q": "scripted"}).content.decode()
    assert "<script>alert" not in page
    assert "<mark>scripted</mark>" in page


def suggested(client, prefix: str) -> list[str]:
    """The names /api/suggest offers for ``prefix``."""
    response = client.get("/api/suggest", {"q": prefix})
    assert response.status_code == 200
    return [s["name"] for s in response.json()["suggestions"]]


def test_suggest(client, catalog):
    found = suggested(client, "vi")
    assert found[:2] == ["vim", "vim-gtk3"] or set(found[:3]) >= {"vim", "vim-gtk3"}
    assert client.get("/api/suggest", {"q": ""}).json()["suggestions"] == []


def test_suggest_completes_any_part_of_a_name(client, catalog):
    assert "vim-gtk3" in suggested(client, "gtk")  # a part after a hyphen
    assert "vim-gtk3" in suggested(client, "GTK3")
    assert suggested(client, "vim gt")[0] == "vim-gtk3"  # every typed word is a prefix of a part
    assert suggested(client, "im-gtk") == []  # parts are completed from their start only


def test_suggest_completes_every_word_of_several(client, catalog):
    make_package("mupdf-x", section="text", summary="lightweight PDF viewer")
    make_package("libvie-perl", section="perl", summary="Perl module for vie files")
    make_package("pdfsam-x", section="text", summary="PDF split and merge tool")
    writer.process_outbox()
    found = suggested(client, "pdf vie")
    assert found[0] == "mupdf-x"  # "pdf" a word of its summary, "vie" the start of one
    assert "libvie-perl" not in found and "pdfsam-x" not in found  # each lacks a word


def test_suggest_offers_searches_people_made(client, catalog):
    from django.utils import timezone

    from search.models import QueryStat

    today = timezone.now().date()
    for query, searches, zero in [
        ("vim plugins", 9, 0),
        ("vim", 30, 0),  # what was typed: not offered again
        ("vim colors", 4, 0),
        ("vimperator", 5, 5),  # never found anything: not offered
    ]:
        QueryStat.objects.create(
            day=today,
            query=query,
            searches=searches,
            zero_results=zero,
            found_results=searches - zero,
        )
    body = client.get("/api/suggest", {"q": "Vim"}).json()
    assert body["queries"] == ["vim plugins", "vim colors"]
    assert body["suggestions"][0]["name"] == "vim"


def test_suggest_offers_four_past_searches_besides_the_typed_one(client, catalog):
    from django.utils import timezone

    from search.models import QueryStat

    today = timezone.now().date()
    made = [("vim", 50), ("vim plugins", 9), ("vim colors", 8), ("vim tutor", 7), ("vimrc", 6)]
    for query, searches in made:
        QueryStat.objects.create(
            day=today, query=query, searches=searches, zero_results=0, found_results=searches
        )
    # The typed search is the most frequent; leaving it out still leaves four to offer.
    body = client.get("/api/suggest", {"q": "vim"}).json()
    assert body["queries"] == ["vim plugins", "vim colors", "vim tutor", "vimrc"]


def test_suggestions_are_cached_until_an_edit_is_searchable(client, catalog, monkeypatch):
    first = suggested(client, "zyg")
    assert first == []
    engine = count_engine_searches(monkeypatch)
    assert suggested(client, "ZYG") == [] and engine == []  # from the cache (case does not matter)
    make_package("zygote-tool", section="devel", summary="a new package")
    writer.process_outbox()  # searchable now: the cached answer must not be served
    assert suggested(client, "zyg") == ["zygote-tool"] and len(engine) == 1
    assert suggested(client, "zyg") == ["zygote-tool"] and len(engine) == 1


# ------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"q": "x" * 300}, "too long"),
        ({"page": "0"}, "between 1"),
        ({"page": "abc"}, "whole number"),
        ({"page": "²"}, "whole number"),  # isdigit() but not int(): the page was a 500
        ({"page": "2000", "page_size": "²"}, "whole number"),
        ({"page_size": "1000"}, "between 1 and 100"),
        ({"sort": "bogus"}, "Unknown sort"),
        ({"colour": "red"}, "Unknown filter"),
        ({"priority": "urgent"}, "Unknown value"),
        ({"size": "gigantic"}, "Unknown value"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        # A number past 64 bits made the search "unavailable" (503); another sort's cursor
        # was a 400 that blamed the words.
        ({"sort": "popularity", "cursor": "Wzk5OTk5OTk5OTk5OTk5OTk5OTk5OTk5LCJhIl0"}, "cursor"),
        ({"sort": "name", "cursor": "WzU4LjAzMzc5LDMsInhlbWFjczIxLWJpbiJd"}, "sorted by name"),
        ({"tag.nosuchfacet": "x"}, "Unknown filter"),
    ],
)
def test_bad_input_is_a_clear_400(client, catalog, params, message):
    status, body = api(client, **params)
    assert status == 400
    assert message in body["error"]["message"]
    page = client.get("/", params)
    assert page.status_code == 400
    assert b"We could not run that search" in page.content


@pytest.mark.parametrize("path", ["/api/search", "/api/suggest", "/api/facets/section"])
def test_wrong_method_is_a_json_405_even_without_a_csrf_token(catalog, path):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)  # as a browser or a script would post
    response = strict.post(path, {"q": "vim"})
    assert response.status_code == 405
    assert response["Content-Type"] == "application/json"
    assert response["Allow"] == "GET, HEAD"
    assert "POST is not allowed" in response.json()["error"]["message"]


@pytest.mark.parametrize("path", ["/api/", "/api/nothing", "/api/search/extra", "/api/facets/"])
def test_an_unknown_api_path_is_a_json_404(client, path):
    response = client.get(path)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert "no API endpoint" in response.json()["error"]["message"]


texts = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=250)
param_names = st.sampled_from(
    [
        "q",
        "page",
        "page_size",
        "sort",
        "section",
        "priority",
        "size",
        "maintainer",
        "tag.interface",
        "cursor",
        "junk",
        "architecture",
    ]
)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.lists(st.tuples(param_names, texts), max_size=6))
def test_property_never_a_500(client, catalog, pairs):
    query = {}
    for name, value in pairs:
        query.setdefault(name, []).append(value)
    for url in ("/api/search", "/", "/api/suggest", "/api/facets/maintainer"):
        response = client.get(url, query)
        assert response.status_code in (200, 400), (url, query, response.content[:500])


def test_api_rate_limit(client, catalog, settings, monkeypatch):
    settings.SEARCH_API_RATE_LIMIT = "5/60"
    # Every request in one window (the windows follow the clock's minutes), from an address
    # no earlier run has counted.
    frozen = (time.time() // 60) * 60 + 10
    monkeypatch.setattr(ratelimit, "time", SimpleNamespace(time=lambda: frozen))
    address = {"REMOTE_ADDR": f"2001:db8::{uuid.uuid4().hex[:4]}"}
    codes = [client.get("/api/suggest", {"q": "vi"}, **address).status_code for _ in range(7)]
    assert codes[:5] == [200] * 5
    assert codes[5:] == [429, 429]
    response = client.get("/api/search", {"q": "vim"}, **address)
    assert response.status_code == 429
    assert int(response["Retry-After"]) <= 60
    assert "Too many requests" in response.json()["error"]["message"]
    # The window's counter expires with the window (it never lingers in Redis).
    from django.core.cache import cache

    redis_client = stores.cache_client()
    keys = redis_client.keys(cache.make_and_validate_key("ratelimit:*"))
    assert keys and all(0 < redis_client.ttl(k) <= 61 for k in keys)


def test_a_search_without_facets_skips_the_cache_and_counts(catalog):
    from search import service
    from search.params import SearchParams

    result = service.search(
        SearchParams(q="vim", filters={"section": ("editors",)}), with_facets=False
    )
    assert result.facets == [] and not result.facets_cached and not result.hits_cached
    assert result.total >= 1 and result.hits[0].name == "vim"


def test_staff_see_why_a_hit_ranks_where_it_does(client, catalog):
    from django.contrib.auth import get_user_model

    anonymous = client.get("/", {"q": "vim", "explain": "1"})
    assert anonymous.status_code == 200 and b"Why this rank" not in anonymous.content
    staff = get_user_model().objects.create_user("ranker", password="pw", is_staff=True)
    client.force_login(staff)
    page = client.get("/", {"q": "vim", "explain": "1"})
    html = page.content.decode()
    assert "Why this rank" in html
    first = page.context["result"].hits[0]
    assert first.name == "vim"
    whats = " | ".join(what for _, _, what in first.explanation)
    assert "function score" in whats  # the popularity and kind factors are shown
    assert first.explanation[0][1] == pytest.approx(first.score, rel=1e-4)


def test_a_page_past_the_end_shows_the_last_page_and_keeps_the_search(client, catalog):
    page = client.get("/", {"q": "frobnicator", "page_size": 10, "sort": "name", "page": 9})
    assert page.status_code == 200
    result = page.context["result"]
    assert result.params.page == 3 and result.params.q == "frobnicator"
    assert [h.name for h in result.hits] == [f"frobnicator-{i:02d}" for i in range(20, 25)]
    assert "only 3 pages of results; this is the last one" in page.content.decode()
    assert 'value="frobnicator"' in page.content.decode()


def test_a_page_deeper_than_the_window_is_a_notice_on_the_page_and_a_400_in_the_api(
    client, catalog
):
    page = client.get("/", {"q": "frobnicator", "page": 999})
    assert page.status_code == 200
    assert page.context["result"].params.page == 2  # 25 results, 20 a page: the last page
    assert b"We could not run that search" not in page.content
    deep = client.get("/", {"q": "frobnicator", "page": 40, "page_size": 50})
    assert deep.status_code == 200 and deep.context["result"].params.page == 1
    status, body = api(client, q="frobnicator", page=40, page_size=50)
    assert status == 400 and "too deep" in body["error"]["message"]


def test_facet_values_ignore_the_paging_of_the_hits(client, catalog):
    # The page's script asks for a facet's values with the page's whole query string: on a
    # page deeper than the window (shown as its last page), that was a 400 and nothing.
    response = client.get("/api/facets/section", {"q": "frobnicator", "page": 60, "sort": "name"})
    assert response.status_code == 200
    assert {v["value"] for v in response.json()["values"]} == {"devel", "utils"}


def test_the_page_has_a_heading_keeps_its_page_size_and_ignores_tracking(client, catalog):
    # No <h1> (each hit is an <h2>); no way to choose a page size, and the form dropped one
    # from a link when the sort or a filter changed; a shared link with utm_source was a 400.
    page = client.get("/", {"q": "frobnicator", "page_size": 50, "utm_source": "news"})
    assert page.status_code == 200
    html = page.content.decode()
    assert '<h1 class="visually-hidden">Search Debian packages</h1>' in html
    assert '<select name="page_size" data-autosubmit>' in html
    assert '<option value="50" selected>' in html
    odd = client.get("/", {"q": "frobnicator", "page_size": 30}).content.decode()
    assert '<option value="30" selected>' in odd


def test_paging_links_reach_the_first_and_last_pages(client, catalog):
    page = client.get("/", {"q": "frobnicator", "page_size": 1, "sort": "name", "page": 10})
    context = page.context
    assert context["first_url"] == "?q=frobnicator&page_size=1&sort=name"
    assert context["last_url"] == "?q=frobnicator&page_size=1&sort=name&page=25"
    assert [link.number for link in context["page_links"]] == list(range(7, 14))
    first = client.get("/", {"q": "frobnicator", "page_size": 1, "sort": "name"}).context
    assert first["first_url"] is None and first["prev_url"] is None


def test_one_snapshot_per_request(search_index):
    outside = freshness.snapshot()
    with freshness.one_snapshot():
        first = freshness.snapshot()
        freshness.bump_generation()  # a write lands meanwhile: this request keeps its view
        assert freshness.snapshot() == first
    assert freshness.snapshot() > first >= outside


def test_a_long_facet_offers_more_values_than_it_lists(client, search_index):
    for i in range(14):
        make_package(f"sectioned-{i:02d}", section=f"section-{i:02d}")
    writer.process_outbox()
    page = client.get("/")
    section = next(f for f in page.context["result"].facets if f.name == "section")
    assert len(section.values) == 12 and section.more and section.searchable
    assert 'data-facet-more="section"' in page.content.decode()
    priority = next(f for f in page.context["result"].facets if f.name == "priority")
    assert not priority.more  # a closed set, all listed
    # A selected value among the top ones still leaves two values out.
    filtered = client.get("/", {"section": "section-00"}).context["result"].facets
    assert next(f for f in filtered if f.name == "section").more
    listed = client.get("/api/facets/section", {"limit": 50}).json()["values"]
    assert len(listed) == 14
    assert client.get("/api/facets/section", {"limit": 0}).status_code == 400
    assert client.get("/api/facets/section", {"limit": "many"}).status_code == 400


def test_no_results_offer_popular_searches(client, catalog):
    from django.utils import timezone

    from search.models import QueryStat

    QueryStat.objects.create(
        day=timezone.now().date(), query="image viewer", searches=7, found_results=7
    )
    page = client.get("/", {"q": "zzqqxxnothing"})
    assert page.context["result"].total == 0
    assert '<a href="?q=image+viewer">image viewer</a>' in page.content.decode()


def test_a_filter_sent_in_unclean_form_can_be_removed_with_its_chip(client, catalog):
    """The chip's remove link and the facet value's link compared the raw value ("devel " or
    "devel" with a zero-width space) with the clean one: both links kept the filter, and
    only "Clear all" removed it."""
    for raw in ("devel ", "devel\u200b"):
        page = client.get("/", {"q": "frobnicator", "section": raw})
        assert page.status_code == 200
        (chip,) = page.context["chips"]
        assert chip.remove_url == "?q=frobnicator"
        (section,) = [f for f in page.context["result"].facets if f.name == "section"]
        (devel,) = [v for v in section.values if v.value == "devel"]
        assert devel.selected and devel.url == "?q=frobnicator"


def test_too_many_parameters_is_a_400_that_says_so_in_the_answers_format(client, catalog):
    """Over 1,000 parameters Django refuses the request before any view: the API answered
    with the HTML 400 page, which spoke of an oversized form whose content was lost."""
    query = "&".join(["a=1"] * 1100)
    api_answer = client.get("/api/search?" + query)
    assert api_answer.status_code == 400
    assert api_answer["Content-Type"].startswith("application/json")
    assert "Too many parameters" in api_answer.json()["error"]["message"]
    page = client.get("/?" + query)
    assert page.status_code == 400
    html = page.content.decode()
    assert "Too many parameters" in html and "MB" not in html


def test_a_facet_value_filter_past_its_length_is_refused_not_cut(client, catalog):
    """The OpenAPI document says `contains` holds at most 50 characters; longer input was
    cut to 50 and searched, silently."""
    response = client.get("/api/facets/section", {"contains": "d" * 51})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "contains"
    assert "at most 50" in response.json()["error"]["message"]
    twice = client.get("/api/facets/section?contains=de&contains=ut")
    assert twice.status_code == 400 and "given 2 times" in twice.json()["error"]["message"]
    assert client.get("/api/facets/section", {"contains": "d" * 50}).status_code == 200


def test_a_facet_value_limit_given_twice_is_refused(client, catalog):
    """`limit=1&limit=50` answered with one value (the first won, silently), while every
    other one-value parameter given twice is refused; a `limit` that is not UTF-8 neither."""
    twice = client.get("/api/facets/section?limit=1&limit=50")
    assert twice.status_code == 400
    assert twice.json()["error"]["param"] == "limit"
    assert "given 2 times" in twice.json()["error"]["message"]
    assert client.get("/api/facets/section?limit=%ff").json()["error"]["param"] == "limit"
    once = client.get("/api/facets/section?limit=2")
    assert once.status_code == 200 and len(once.json()["values"]) == 2
