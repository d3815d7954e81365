"""Promoted results, synonyms and search analytics."""

from __future__ import annotations

import time

import pytest
from django.contrib.auth import get_user_model

from indexing import writer
from search import analytics, curation, stores
from search.models import Promotion, QueryStat, SynonymSet
from tests.helpers import make_package

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


@pytest.fixture
def small(search_index):
    curation.reset()
    made = {
        "evince": make_package("evince", summary="Document (PostScript, PDF) viewer"),
        "okular": make_package("okular", summary="universal document viewer"),
        "qpdf": make_package("qpdf", summary="tools for transforming PDF files"),
        "zathura": make_package("zathura", summary="document viewer with a minimalistic interface"),
    }
    writer.process_outbox()
    yield made
    curation.reset()


def names(client, q):
    return [(h["name"], h["promoted"]) for h in client.get("/api/search", {"q": q}).json()["hits"]]


def test_promoted_results_come_first_with_a_label(client, small):
    assert ("zathura", "Pick") not in names(client, "document viewer")
    Promotion.objects.create(query="  Document   VIEWER ", package=small["zathura"], label="Pick")
    curation.reset()
    got = names(client, "document viewer")
    assert got[0] == ("zathura", "Pick")
    assert [n for n, _ in got].count("zathura") == 1  # not repeated below
    # Normalised matching; other queries are unaffected.
    assert names(client, "DOCUMENT viewer!")[0] == ("zathura", "Pick")
    assert all(p is None for _, p in names(client, "pdf"))


def test_promoted_results_keep_the_filters_the_page_size_and_appear_once(client, small):
    """A pinned package was prepended to page 1 whatever the filters (a graphics package
    under section=games), made page 1 longer than its size, and showed again on the page
    where it ranked. It now ranks first among the search's own results (as Elasticsearch's
    pinned query does): filtered like them, counted like them, listed once."""
    for i in range(6):
        make_package(f"viewer-{i}", section="graphics", summary=f"document viewer number {i}")
    pinned = make_package("pinned-viewer", section="games", summary="a document viewer game")
    writer.process_outbox()
    before = client.get("/api/search", {"q": "document viewer"}).json()["total"]
    Promotion.objects.create(query="document viewer", package=pinned, label="Pick")
    Promotion.objects.create(query="document viewer", package=small["qpdf"], position=2)
    curation.reset()

    def page(**params):
        return client.get("/api/search", {"q": "document viewer", **params}).json()

    first = page(page_size=3)
    assert [(h["name"], h["promoted"]) for h in first["hits"][:2]] == [
        ("pinned-viewer", "Pick"),
        ("qpdf", "Editor's pick"),
    ]
    assert len(first["hits"]) == 3
    # qpdf does not say "document viewer": pinned, it belongs to the search now.
    assert first["total"] == before + 1
    everything = [h["name"] for p in range(1, 5) for h in page(page_size=3, page=p)["hits"]]
    assert len(everything) == len(set(everything)) == first["total"]
    sections = {f["name"]: f for f in first["facets"]}["section"]["values"]
    assert sum(v["count"] for v in sections) == first["total"]
    # Filtered out, a pinned package is not shown.
    games = page(section="graphics")
    assert "pinned-viewer" not in [h["name"] for h in games["hits"]]
    assert games["total"] == 6 and games["hits"][0]["promoted"] is None


def test_a_pin_on_a_query_that_finds_nothing_keeps_its_second_passes(client, small):
    # Editors pin packages to the searches the zero-result report shows. Counted among the
    # matches, the pin stopped the typo and "any one word" passes: the pin alone was shown.
    before = [n for n, _ in names(client, "adobe document")]
    assert {"evince", "okular", "zathura"} <= set(before)  # any one word: "document"
    Promotion.objects.create(query="adobe document", package=small["qpdf"], label="Pick")
    curation.reset()
    after = names(client, "adobe document")
    assert after[0] == ("qpdf", "Pick")
    assert [n for n, _ in after[1:]] == [n for n in before if n != "qpdf"]


def test_synonyms_apply_at_query_time_without_reindex(client, small):
    SynonymSet.objects.all().delete()  # without the default set (search migration 0003)
    curation.reset()
    before = {n for n, _ in names(client, "portable document format")}
    assert "qpdf" not in before
    SynonymSet.objects.create(terms="pdf, portable document format")
    curation.reset()  # as the admin does; other processes pick it up within TTL seconds
    after = {n for n, _ in names(client, "portable document format")}
    assert {"qpdf", "evince"} <= after
    assert curation.TTL <= 60
    # The cached total and facet counts of the query changed with it (no index write, so
    # the generation did not move: the expansions are part of the cache key).
    body = client.get("/api/search", {"q": "portable document format"}).json()
    assert body["facets_cached"] is True
    assert body["total"] == len(after) >= 2
    sections = {f["name"]: f for f in body["facets"]}["section"]["values"]
    assert sum(v["count"] for v in sections) == body["total"]


def test_synonym_admin_takes_effect_immediately_in_this_process(client, small):
    user = get_user_model().objects.create_superuser("ed", "ed@example.org", "pw")
    client.force_login(user)
    response = client.post(
        "/admin/search/synonymset/add/", {"terms": "reader, viewer", "enabled": "on"}
    )
    assert response.status_code == 302
    assert {"okular", "zathura", "evince"} <= {n for n, _ in names(client, "reader")}
    bad = client.post("/admin/search/synonymset/add/", {"terms": "lonely", "enabled": "on"})
    assert bad.status_code == 200 and b"at least two" in bad.content


def test_analytics_merges_fragments_and_counts_zero_results(client, small):
    analytics.flush()  # start from an empty log
    QueryStat.objects.all().delete()
    headers = {"HTTP_USER_AGENT": "visitor-a"}
    for q in ["p", "pd", "pdf", "pdf viewer"]:
        client.get("/api/search", {"q": q}, **headers)
    client.get("/", {"q": "nosuchthingatall"}, HTTP_USER_AGENT="visitor-b")
    client.get("/api/search", {"q": "pdf"}, HTTP_USER_AGENT="visitor-b")
    counted = analytics.flush()
    assert counted == 3  # "pdf viewer" (a), "nosuchthingatall" (b), "pdf" (b)
    stats = {s.query: (s.searches, s.zero_results) for s in QueryStat.objects.all()}
    assert stats == {"pdf viewer": (1, 0), "nosuchthingatall": (1, 1), "pdf": (1, 0)}
    user = get_user_model().objects.create_superuser("an", "an@example.org", "pw")
    client.force_login(user)
    report = client.get("/admin/search/querystat/report/").content.decode()
    assert "nosuchthingatall" in report and "pdf viewer" in report


def test_logging_adds_no_request_latency_when_redis_is_down(client, small, monkeypatch):
    unreachable = stores.redis_client("redis://127.0.0.1:1/0")
    attempts: list[float] = []
    real_pipeline = unreachable.pipeline

    class TimedPipeline:
        def __init__(self, *args, **kwargs):
            self.pipe = real_pipeline(*args, **kwargs)

        def __getattr__(self, name):
            return getattr(self.pipe, name)

        def execute(self):
            started = time.monotonic()
            try:
                return self.pipe.execute()
            finally:
                attempts.append(time.monotonic() - started)

    monkeypatch.setattr(unreachable, "pipeline", TimedPipeline)
    monkeypatch.setattr(stores, "coordination", lambda: unreachable)
    for _ in range(5):
        assert client.get("/api/search", {"q": "pdf"}).status_code == 200
    # One failed attempt, bounded by the client's short timeouts; then the breaker skips
    # logging for a while instead of trying again on every request.
    assert len(attempts) == 1
    assert attempts[0] < 1.0


def test_the_curation_version_and_the_curation_come_from_one_snapshot(small, monkeypatch):
    # Kept on clocks of their own, the version could stay old while the promotions were
    # new: an answer with the new promotion went out under the old validator, and a cache
    # holding the old answer was told it was current.
    clock = [1000.0]
    monkeypatch.setattr(stores.time, "monotonic", lambda: clock[0])
    curation.reset()
    assert curation.promotions_for("pdf tool") == []
    clock[0] += 20
    old = curation.version()
    Promotion.objects.create(query="pdf tool", package=small["qpdf"])
    clock[0] += 15  # past the TTL of what was read first, not of what was read later
    promoted = curation.promotions_for("pdf tool")
    assert (promoted == []) == (curation.version() == old)


@pytest.fixture
def superuser_client(client):
    user = get_user_model().objects.create_superuser("curator", "c@example.org", "pw")
    client.force_login(user)
    return client


def test_the_curation_forms_refuse_what_would_fail_or_do_nothing(superuser_client, small):
    # A case variant of a pinned query was a 500 (the unique constraint met the normalised
    # query only on save); a query of punctuation was stored as "" and pinned the package
    # to every search of punctuation; position 0 and synonyms of one distinct term, or a
    # term the normalisation changes ("c++" is searched as "c"), were accepted silently.
    add = "/admin/search/promotion/add/"
    package = small["zathura"].pk
    first = superuser_client.post(
        add, {"query": "pdf", "package": package, "position": 1, "label": "x"}
    )
    assert first.status_code == 302
    again = superuser_client.post(
        add, {"query": " PDF ", "package": package, "position": 1, "label": "x"}
    )
    assert again.status_code == 200 and "already" in again.content.decode()
    nothing = superuser_client.post(
        add, {"query": "!!! ???", "package": package, "position": 1, "label": "x"}
    )
    assert nothing.status_code == 200 and "no words" in nothing.content.decode()
    zero = superuser_client.post(
        add, {"query": "viewer", "package": package, "position": 0, "label": "x"}
    )
    assert zero.status_code == 200
    assert Promotion.objects.count() == 1
    synonyms = "/admin/search/synonymset/add/"
    one = superuser_client.post(synonyms, {"terms": "PDF, pdf", "enabled": "on"})
    assert one.status_code == 200 and "at least two" in one.content.decode()
    changed = superuser_client.post(synonyms, {"terms": "c++, cplusplus", "enabled": "on"})
    assert changed.status_code == 200 and "c++" in changed.content.decode()
    assert not SynonymSet.objects.filter(terms__contains="cplusplus").exists()


def test_a_search_its_filters_emptied_is_not_a_query_that_found_nothing(client, small):
    """The list of queries that found nothing tells editors which words need a synonym or a
    promotion: a search for words that match, narrowed by a filter to nothing, is not one."""
    analytics.flush()
    QueryStat.objects.all().delete()
    body = client.get("/api/search", {"q": "pdf", "section": "games"}).json()
    assert body["total"] == 0
    client.get("/api/search", {"q": "nosuchthingatall"}, HTTP_USER_AGENT="visitor-c")
    client.get("/", {"q": "nosuchthingatall", "section": "games"}, HTTP_USER_AGENT="visitor-d")
    analytics.flush()
    stats = {s.query: (s.searches, s.zero_results) for s in QueryStat.objects.all()}
    # Filtered searches still count as searches; only the unfiltered one says "nothing".
    assert stats == {"pdf": (1, 0), "nosuchthingatall": (2, 1)}


def test_autocomplete_suggests_only_searches_known_to_find_something(client, small):
    """A filtered search's total says nothing about its words (it is logged without one),
    yet it counted as a search that found something: one visitor's filtered search for any
    text put that text in everyone's autocomplete and in the "what others searched for"
    links of the page that found nothing."""
    analytics.flush()
    QueryStat.objects.all().delete()
    client.get("/", {"q": "reviewprobe qqzx", "section": "games"}, HTTP_USER_AGENT="visitor-e")
    client.get("/api/search", {"q": "pdf viewer"}, HTTP_USER_AGENT="visitor-f")
    client.get("/api/search", {"q": "pdf", "section": "games"}, HTTP_USER_AGENT="visitor-g")
    analytics.flush()
    analytics._popular.reset()
    assert analytics.popular_queries("reviewprobe") == []
    assert analytics.popular_queries("pdf") == ["pdf viewer"]
    # The analytics still count every search, filtered or not.
    stats = {s.query: s.searches for s in QueryStat.objects.all()}
    assert stats == {"reviewprobe qqzx": 1, "pdf viewer": 1, "pdf": 1}


def test_a_pin_for_a_query_searches_read_differently_is_refused(superuser_client, small):
    """A promotion for "C++" was saved as "c", and pinned the package to every search for
    "c"; the synonym form already refused the same words."""
    add = "/admin/search/promotion/add/"
    package = small["zathura"].pk
    refused = superuser_client.post(
        add, {"query": "C++", "package": package, "position": 1, "label": "x"}
    )
    assert refused.status_code == 200
    assert "“c++” as “c”" in refused.content.decode()
    assert not Promotion.objects.exists()
    # Case and spacing are not a different reading.
    saved = superuser_client.post(
        add, {"query": "  PDF   Viewer ", "package": package, "position": 1, "label": "x"}
    )
    assert saved.status_code == 302
    assert list(Promotion.objects.values_list("query", flat=True)) == ["pdf viewer"]


def test_a_curation_field_refused_for_itself_gets_one_message_not_two(superuser_client):
    """Each field error came with a second, wrong one from the model's checks run on the
    emptied value ("… (it has 250). This query has no words to match searches by."); and a
    synonym term had no length limit (a 70,000-character one saved)."""
    package = make_package("pinned-one")
    add = "/admin/search/promotion/add/"

    def errors(url, data, field):
        response = superuser_client.post(url, data)
        assert response.status_code == 200
        return response.context["adminform"].form.errors[field]

    long_query = {"query": "q" * 250, "package": package.pk, "position": 1, "label": "x"}
    assert len(errors(add, long_query, "query")) == 1
    nul_query = {"query": "a\x00b", "package": package.pk, "position": 1, "label": "x"}
    assert len(errors(add, nul_query, "query")) == 1
    synonyms = "/admin/search/synonymset/add/"
    nul_terms = errors(synonyms, {"terms": "zeta\x00, eta", "enabled": "on"}, "terms")
    assert len(nul_terms) == 1 and "Null characters" in nul_terms[0]
    long_term = errors(synonyms, {"terms": "a" * 70_000 + ", b", "enabled": "on"}, "terms")
    assert len(long_term) == 1 and "at most" in long_term[0]
    assert not SynonymSet.objects.filter(terms__contains="zeta").exists()
    assert not Promotion.objects.exists()


@pytest.mark.django_db
def test_a_promotion_is_named_by_its_package_not_its_id():
    """Messages and delete pages said "'gimp' → 63437"."""
    package = make_package("gimp")
    assert str(Promotion(query="gimp", package=package)) == "'gimp' → gimp"
