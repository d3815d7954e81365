"""The request bodies search sends, built without any service."""

from __future__ import annotations

from search import query
from search.facets import FIXED, RangeFacet, TagFacet


def test_quoted_phrases_are_split_from_free_words():
    assert query.split_query('image "pdf viewer" fast') == ("image fast", ["pdf viewer"])
    assert query.split_query('unbalanced "quote') == ("unbalanced quote", [])
    assert query.has_free_words('"only a phrase"') is False
    assert query.has_free_words("words") is True


def test_an_empty_query_matches_everything():
    assert query.text_query("") == {"match_all": {}}


def test_every_word_is_required_across_fields_and_exact_names_rank_first():
    body = query.text_query("image viewer")
    (match,) = body["bool"]["must"]
    assert match["multi_match"]["operator"] == "and"
    assert match["multi_match"]["type"] == "cross_fields"
    boosts = [c["constant_score"]["boost"] for c in body["bool"]["should"] if "constant_score" in c]
    exact = body["bool"]["should"][0]["constant_score"]
    assert exact == {"filter": {"term": {"name.raw": "image viewer"}}, "boost": 200}
    assert max(boosts) == 200  # nothing outweighs the exact name


def test_synonym_variants_are_alternatives_at_a_lower_weight():
    body = query.text_query("pdf reader", ["pdf viewer"])
    (either,) = body["bool"]["must"]
    first, second = either["bool"]["should"]
    assert first["multi_match"]["query"] == "pdf reader" and "boost" not in first["multi_match"]
    assert second["multi_match"]["query"] == "pdf viewer" and second["multi_match"]["boost"] == 0.9


def test_typo_tolerance_adds_a_low_weight_fuzzy_clause():
    (clause,) = query.text_query("firefx", fuzzy=True)["bool"]["must"]
    exact, typos = clause["bool"]["should"]
    assert "fuzziness" not in exact["multi_match"]
    assert typos["multi_match"]["fuzziness"] == "AUTO"
    assert typos["multi_match"]["prefix_length"] == 1
    assert typos["multi_match"]["boost"] < 1


def test_quoted_phrases_are_required():
    must = query.text_query('"web browser"')["bool"]["must"]
    assert must == [
        {
            "multi_match": {
                "query": "web browser",
                "type": "phrase",
                "fields": ["name^4", "summary.exact^2", "description.exact"],
            }
        }
    ]


def test_facet_counts_are_disjunctive_and_share_aggregations():
    section = FIXED["section"]
    size = FIXED["size"]
    interface, use = TagFacet.named("interface"), TagFacet.named("use")
    filters = {"section": ("graphics",), "tag.interface": ("x11",)}
    facets = {"section": section, "size": size, "tag.interface": interface, "tag.use": use}
    clauses = query.filter_clauses(filters, facets)
    aggs = query.facet_aggregations(list(facets.values()), filters, clauses)
    groups = query.group_of(list(facets.values()), clauses)
    # Each facet is counted under every filter but its own.
    section_group = aggs[groups["section"]]
    assert section_group["filter"] == {"bool": {"filter": [clauses["tag.interface"]]}}
    assert "section" in section_group["aggs"] and "section#selected" in section_group["aggs"]
    # The unselected facets apply every filter and share one group, and their tag facets
    # one terms aggregation over tags.
    assert groups["size"] == groups["tag.use"] != groups["section"]
    shared = aggs[groups["tag.use"]]
    assert shared["filter"]["bool"]["filter"] == [clauses["section"], clauses["tag.interface"]]
    assert shared["aggs"]["tags"]["terms"]["include"] == r"(use)::.*"
    assert isinstance(size, RangeFacet) and "size" in shared["aggs"]


def test_hits_body_filters_pages_and_skips_counting_when_asked():
    clauses = {"section": {"terms": {"section": ["web"]}}}
    body = query.hits_body({"match_all": {}}, clauses, sort="name", size=20, offset=40, count=False)
    assert body["post_filter"] == {"bool": {"filter": [clauses["section"]]}}
    assert (body["from"], body["size"], body["track_total_hits"]) == (40, 20, False)
    assert body["sort"] == [{"name.raw": "asc"}]
    after = query.hits_body({"match_all": {}}, {}, sort="name", size=5, cursor=["vim"], count=True)
    assert after["search_after"] == ["vim"] and "from" not in after and "post_filter" not in after


def test_filtered_adds_every_filter_to_a_query():
    assert query.filtered({"match_all": {}}, {}) == {"match_all": {}}
    clauses = {"a": {"term": {"x": 1}}}
    assert query.filtered({"match_all": {}}, clauses) == {
        "bool": {"must": [{"match_all": {}}], "filter": [{"term": {"x": 1}}]}
    }


def test_did_you_mean_takes_the_best_correction_of_each_word():
    response = {
        "suggest": {
            "name": [{"text": "grobnicator", "options": [{"text": "frobnicator", "score": 0.8}]}],
            "words": [
                {"text": "grobnicator", "options": [{"text": "gobnicator", "score": 0.9}]},
                {"text": "tool", "options": []},
            ],
        }
    }
    # Names weigh 1.2: 0.96 beats the summary word's 0.9.
    assert query.corrected_text("Grobnicator tool", response) == "frobnicator tool"
    assert query.corrected_text("tool", {"suggest": {}}) is None


def test_suggest_body_completes_names_and_their_parts():
    body = query.suggest_body("Firefox es", 8)
    should = body["query"]["function_score"]["query"]["bool"]["should"]
    assert should[0] == {"term": {"name.raw": {"value": "firefox es", "boost": 50}}}
    assert {"match": {"name.part_prefix": {"query": "Firefox es"}}} in should
    assert body["size"] == 8 and body["track_total_hits"] is False


def test_versions_at_least_asks_for_each_id_at_its_version():
    body = query.versions_at_least({7: 10})
    (clause,) = body["bool"]["should"]
    assert clause["bool"]["filter"] == [
        {"ids": {"values": ["7"]}},
        {"range": {"row_version": {"gte": 10}}},
    ]


def test_facet_values_body_drops_the_facets_own_filter():
    interface = TagFacet.named("interface")
    clauses = {"tag.interface": {"terms": {"tags": ["interface::x11"]}}, "x": {"term": {"y": 1}}}
    body = query.facet_values_body(interface, {"match_all": {}}, clauses, "X1", 20)
    assert body["query"]["bool"]["filter"] == [{"term": {"y": 1}}]
    assert body["aggs"]["values"]["terms"]["include"] == "interface::.*[xX]1.*"
