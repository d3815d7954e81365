"""The request bodies search sends, built without any service."""

from __future__ import annotations

import json

from search import query, ranking
from search.facets import FIXED, RangeFacet, TagFacet


def test_quoted_phrases_are_split_from_free_words():
    assert query.split_query('image "pdf viewer" fast') == ("image fast", ["pdf viewer"])
    assert query.split_query('unbalanced "quote') == ("unbalanced quote", [])
    assert query.has_free_words('"only a phrase"') is False
    assert query.has_free_words("words") is True


def test_an_empty_query_matches_everything():
    assert query.text_query("") == {"match_all": {}}


def qualifying(body: dict) -> list[dict]:
    """The alternatives one of which a package must match."""
    return body["bool"]["must"][0]["bool"]["should"]


def test_most_significant_words_are_required_across_fields():
    body = query.text_query("image viewer")
    words = qualifying(body)[0]["multi_match"]
    assert words["query"] == "image viewer" and words["type"] == "cross_fields"
    # Both of two words, all but one of three or four, half of more.
    assert words["minimum_should_match"] == "2<-1 4<-50%"
    # A name starting with the query qualifies too ("libreoffice-wri").
    assert qualifying(body)[1]["constant_score"]["filter"] == {
        "match": {"name.prefix": "image viewer"}
    }


def test_stop_words_are_dropped_and_generic_words_never_required():
    assert query.words_of("I want to edit photos on my computer") == (
        ["edit", "photos", "computer"],
        [],
    )
    assert query.words_of("Statistics software") == (["statistics"], ["software"])
    body = query.text_query("statistics software")
    assert qualifying(body)[0]["multi_match"]["query"] == "statistics"
    generic = [
        b for b in body["bool"]["should"] if b.get("multi_match", {}).get("query") == "software"
    ]
    assert generic and generic[0]["multi_match"]["boost"] < 1  # it only adds


def test_a_relaxed_pass_needs_one_significant_word():
    body = query.text_query("keep files in sync between computers", mode="relaxed")
    assert qualifying(body)[0]["multi_match"]["minimum_should_match"] == "1"


def test_exact_names_are_added_outside_the_popularity_and_kind_factors():
    ranked = query.ranked_query("Vim")
    exact = ranked["bool"]["should"][0]["constant_score"]
    assert exact == {"filter": {"term": {"name.raw": "vim"}}, "boost": query.EXACT_NAME_BOOST}
    scored = ranked["bool"]["must"][0]["function_score"]
    kinds = {f["filter"]["term"]["kind"]: f["weight"] for f in scored["functions"]}
    assert kinds["doc"] < 1 and kinds["dev"] < 1 and "program" not in kinds
    prior = scored["query"]["function_score"]
    assert prior["boost_mode"] == "multiply" and prior["score_mode"] == "sum"
    assert {"weight": 1} in prior["functions"]  # 1 + PRIOR_WEIGHT * prior


def kind_weights(body):
    scored = body["bool"]["must"][0]["function_score"]
    return {
        f["filter"]["term"]["kind"]: f["weight"]
        for f in scored["functions"]
        if "term" in f.get("filter", {})
    }


def test_a_query_asking_for_libraries_or_documentation_does_not_weigh_them_down():
    weights = kind_weights(query.ranked_query("python yaml parser"))
    assert "module" not in weights and "dev" not in weights and "doc" in weights
    # A developer asking for a library wants its -dev package over the runtime one.
    assert weights["library"] < 1
    assert "doc" not in kind_weights(query.ranked_query("git documentation"))
    plain = kind_weights(query.ranked_query("image viewer"))
    assert {"module", "library", "dev", "doc"} <= set(plain)


def ecosystem_weights(body):
    scored = body["bool"]["must"][0]["function_score"]
    return [
        (f["filter"]["bool"], f["weight"])
        for f in scored["functions"]
        if "bool" in f.get("filter", {})
    ]


def test_other_languages_packages_weigh_less_than_the_named_ones():
    ((others, weight),) = ecosystem_weights(query.ranked_query("perl http client"))
    assert others == {
        "filter": [{"exists": {"field": "ecosystem"}}],
        "must_not": [{"term": {"ecosystem": "perl"}}],
    }
    assert weight == ranking.FOREIGN_ECOSYSTEM_WEIGHT
    ((others, weight),) = ecosystem_weights(query.ranked_query("xml parser library"))
    assert others == {"filter": [{"exists": {"field": "ecosystem"}}]}
    assert weight == ranking.ECOSYSTEM_WEIGHT
    assert ecosystem_weights(query.ranked_query("image viewer")) == []


def test_size_weighs_in_for_needs_of_several_words_not_for_names():
    def size_factors(q):
        prior = query.ranked_query(q)["bool"]["must"][0]["function_score"]["query"]
        functions = prior["function_score"]["functions"]
        return [
            f for f in functions if f.get("field_value_factor", {}).get("field") == "size_score"
        ]

    (size,) = size_factors("image editor")
    assert size["field_value_factor"]["factor"] == ranking.SIZE_WEIGHT
    assert size_factors("backup tool")  # a generic word counts: a need
    assert size_factors("vim") == [] and size_factors("linux-image") == []


def test_a_named_language_is_required():
    body = query.text_query("rust http client")
    (language,) = body["bool"]["filter"]
    assert language["multi_match"]["query"] == "rust"
    assert "tags.text" in language["multi_match"]["fields"]
    spelled = query.text_query("golang web framework")["bool"]["filter"][0]
    assert spelled["multi_match"]["query"] == "go golang"
    # Alone it is what is searched for, not a constraint; relaxed searches drop it.
    assert "filter" not in query.text_query("python")["bool"]
    assert "filter" not in query.text_query("rust http client", mode="relaxed")["bool"]


def test_the_meaning_weighs_the_nearest_packages_and_never_decides_what_matches():
    vector = [0.0625] * 256
    body = query.ranked_query("video conferencing", vector=vector)
    scored = body["bool"]["must"][0]["function_score"]
    (nearest,) = [f for f in scored["functions"] if "knn" in f.get("filter", {})]
    assert nearest["weight"] == query.MEANING_WEIGHT > 1
    assert nearest["filter"]["knn"]["k"] == query.MEANING_NEAREST
    assert nearest["filter"]["knn"]["query_vector"] == vector
    # What matches is the same with or without it.
    inner = scored["query"]["function_score"]["query"]
    assert inner == query.text_query("video conferencing")
    assert "knn" not in str(query.ranked_query("video conferencing"))


def test_the_typo_fallback_forgives_typos_in_unstemmed_words_and_names():
    ranked = query.ranked_query("libreofice", mode="fuzzy")
    typo = ranked["bool"]["should"][1]["constant_score"]
    assert typo["filter"]["fuzzy"]["name.raw"]["value"] == "libreofice"
    inner = ranked["bool"]["must"][0]["function_score"]["query"]["function_score"]["query"]
    fuzzy = qualifying(inner)[-1]["multi_match"]
    # One typo from 4 letters, two from 8; never in the first letter.
    assert fuzzy["fuzziness"] == "AUTO:4,8" and fuzzy["prefix_length"] == 1
    assert "summary.exact^2" in fuzzy["fields"] and "summary^3" not in fuzzy["fields"]
    assert "fuzzy" not in str(query.ranked_query("libreofice"))


def test_the_name_typo_bonus_is_for_a_name_one_typo_away():
    # One edit, however long the name (two reach other names, and cost more to find).
    typo = query.ranked_query("libreofice", mode="fuzzy")["bool"]["should"][1]
    near = typo["constant_score"]["filter"]["fuzzy"]["name.raw"]
    assert near == {"value": "libreofice", "fuzziness": 1, "prefix_length": query.FUZZY_PREFIX}
    assert typo["constant_score"]["boost"] == query.NAME_TYPO_BOOST
    # Not below 4 letters, where one edit is another word ("vim", "aim").
    assert len(query.ranked_query("vmi", mode="fuzzy")["bool"]["should"]) == 1
    assert len(query.ranked_query("vimm", mode="fuzzy")["bool"]["should"]) == 2


def test_synonym_variants_are_alternatives_at_a_lower_weight():
    body = query.text_query("pdf reader", ["pdf viewer"])
    first, second = qualifying(body)[:2]
    assert first["multi_match"]["query"] == "pdf reader" and "boost" not in first["multi_match"]
    assert second["multi_match"]["query"] == "pdf viewer" and second["multi_match"]["boost"] == 0.9


def test_adjacent_words_are_also_tried_joined():
    # "boot loader" finds GRUB, whose summary says "Bootloader".
    assert query.compounds("boot loader") == [("bootloader", "bootloader")]
    assert query.compounds("a tool to find files by name") == [
        ("findfiles name", "findfiles"),
        ("find filesname", "filesname"),
    ]
    assert query.compounds("gimp") == [] and query.compounds("mp3 player") == []
    scored = qualifying(query.text_query("boot loader"))[2]["multi_match"]
    assert scored["query"] == "bootloader" and scored["boost"] == query.COMPOUND_WEIGHT
    # With more words, a package must match like the words (with the pair joined); only
    # the joined word scores.
    compound = qualifying(query.text_query("boot loader for arm"))[2]["bool"]
    assert compound["filter"][0]["multi_match"]["query"] == "bootloader arm"
    assert compound["must"][0]["multi_match"]["query"] == "bootloader"
    assert "summary.joined^3" in query.TEXT_FIELDS
    assert "summary.joined^3" not in scored["fields"]


def test_the_phrase_bonus_leaves_out_generic_words():
    def phrases(q: str) -> list[str]:
        return [
            json.dumps(b)
            for b in query.text_query(q)["bool"]["should"]
            if "match_phrase" in json.dumps(b)
        ]

    assert phrases("backup tool") == []  # "Backup tool for MariaDB" is not closer
    assert all('"convert audio files"' in p for p in phrases("tool to convert audio files"))
    assert len(phrases("image viewer")) == 3
    # "<program> alternative" wants a program like it, not one that says "alternative".
    assert query.words_of("matlab alternative") == (["matlab"], ["alternative"])


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


def test_facets_no_filter_applies_to_are_counted_at_the_top_level():
    # Elasticsearch counts a top-level terms aggregation of a match_all query filter by
    # filter from the index; under a filter aggregation it visits every match.
    section, size, use = FIXED["section"], FIXED["size"], TagFacet.named("use")
    facets = [section, size, use]
    aggs = query.facet_aggregations(facets, {}, {})
    groups = query.group_of(facets, {})
    assert set(groups.values()) == {query.TOP_LEVEL}
    assert {"section", "size", "tags"} <= set(aggs) and not any(k.startswith("#") for k in aggs)
    assert query.group_response(aggs, groups["section"]) is aggs
    # With one filter, its own facet is the one no filter applies to.
    filters = {"section": ("graphics",)}
    clauses = query.filter_clauses(filters, {"section": section})
    aggs = query.facet_aggregations(facets, filters, clauses)
    groups = query.group_of(facets, clauses)
    assert groups["section"] == query.TOP_LEVEL and "section" in aggs
    assert groups["size"] == groups["tag.use"] != query.TOP_LEVEL
    shared = query.group_response(aggs, groups["size"])
    assert shared["filter"] == {"bool": {"filter": [clauses["section"]]}}
    assert {"size", "tags"} <= set(shared["aggs"]) and "size" not in aggs


def test_a_browse_not_ranked_is_asked_as_match_all():
    # No words: every package matches; only a relevance sort needs the ranking.
    assert query.ranked_query("", scored=False) == {"match_all": {}}
    assert "function_score" in query.ranked_query("")
    # Words are asked the same way scored or not (what matches depends on the clauses).
    assert query.ranked_query("vim", scored=False) == query.ranked_query("vim")


def test_a_browse_answer_is_the_hits_of_one_request_and_the_counts_of_the_other():
    hits = {"took": 9, "hits": {"total": {"value": 0}, "hits": [{"_id": "1"}]}}
    counts = {"took": 3, "hits": {"total": {"value": 7}, "hits": []}, "aggregations": {"a": 1}}
    answer = query.merged(hits, counts)
    assert answer["hits"] == {"total": {"value": 7}, "hits": [{"_id": "1"}]}
    assert (answer["aggregations"], answer["took"]) == ({"a": 1}, 9)
    assert hits["hits"]["total"] == {"value": 0}  # the parts are left as they were


def test_failed_shards_are_counted_in_a_search_and_in_each_of_an_msearch():
    whole = {"_shards": {"total": 2, "successful": 2, "failed": 0}}
    part = {"_shards": {"total": 2, "successful": 1, "failed": 1}}
    assert query.failed_shards(whole) == 0 and query.failed_shards(part) == 1
    assert query.failed_shards({"responses": [whole, part, part]}) == 2
    assert query.failed_shards({"responses": [{"error": {}, "status": 503}]}) == 0
    assert query.failed_shards({"count": 3}) == 0


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


def test_did_you_mean_corrects_one_edit_per_word_even_the_first_letter():
    body = query.did_you_mean_body("Grobnicator tool")
    assert body["suggest"]["text"] == "grobnicator tool"
    for kind in ("name", "words"):
        options = body["suggest"][kind]["term"]
        assert (options["max_edits"], options["prefix_length"]) == (1, 0)


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


def test_facet_values_body_drops_the_facets_own_filter():
    interface = TagFacet.named("interface")
    clauses = {"tag.interface": {"terms": {"tags": ["interface::x11"]}}, "x": {"term": {"y": 1}}}
    body = query.facet_values_body(interface, {"match_all": {}}, clauses, "X1", 20)
    assert body["query"]["bool"]["filter"] == [{"term": {"y": 1}}]
    assert body["aggs"]["values"]["terms"]["include"] == "interface::.*[xX]1.*"


def test_counts_before_and_after_the_filters():
    clauses = {"section": {"terms": {"section": ["misc"]}}}
    body = query.counts_body({"match_all": {}}, clauses)
    # The filters go in the post_filter (the total), the matches before them in an
    # aggregation; the same reader serves a page of hits with that aggregation.
    assert body["size"] == 0 and body["track_total_hits"] is True
    assert body["post_filter"] == {"bool": {"filter": [clauses["section"]]}}
    assert body["aggs"] == query.matched_aggregation(clauses) != {}
    response = {"hits": {"total": {"value": 2}}, "aggregations": {query.MATCHED: {"doc_count": 9}}}
    assert query.totals(response) == (2, 9)
    # Without filters there is nothing to add: both counts are the total.
    assert query.matched_aggregation({}) == {}
    assert "aggs" not in query.counts_body({"match_all": {}}, {})
    assert query.totals({"hits": {"total": {"value": 4}}}) == (4, 4)


def test_fallbacks_decide_on_the_words_not_on_the_filters():
    from search.service import _fallbacks

    asked = []

    def run(results):
        def answer(mode):
            asked.append(mode)
            return (*results[mode], mode)

        return answer

    # Filters leave 1 of the 30 packages the words match: no typo pass.
    assert _fallbacks("vim", run({"exact": (1, 30)})) == ("exact", 1, 30, "exact")
    assert asked == ["exact"]
    # The words match 2: the typo pass, kept as it shows more.
    got = _fallbacks("vimm", run({"exact": (0, 2), "fuzzy": (5, 40)}))
    assert got == ("fuzzy", 5, 40, "fuzzy")
    # As many shown, more matched (in other sections, which the facets then show): kept.
    assert _fallbacks("vimm", run({"exact": (1, 1), "fuzzy": (1, 12)}))[0] == "fuzzy"
    # Nothing matched by several words, even with typos: any one of them.
    asked.clear()
    results = {"exact": (0, 0), "fuzzy": (0, 0), "relaxed": (3, 3)}
    assert _fallbacks("qqq zzz", run(results))[0] == "relaxed"
    assert asked == ["exact", "fuzzy", "relaxed"]
    # A quoted phrase alone has no words to forgive.
    assert _fallbacks('"a b"', run({"exact": (0, 0)}))[0] == "exact"


def test_a_search_of_stop_words_alone_searches_for_them():
    # "how to" dropped every word and asked for nothing (match_none): no results, ever.
    body = query.text_query("how to")
    assert qualifying(body)[0]["multi_match"]["query"] == "how to"
    assert qualifying(query.text_query("how to edit"))[0]["multi_match"]["query"] == "edit"


def test_did_you_mean_never_corrects_a_stop_word():
    # "the a of" became "Did you mean th a of?".
    response = {
        "suggest": {
            "words": [
                {"text": "the", "options": [{"text": "th", "score": 0.9}]},
                {"text": "how", "options": [{"text": "show", "score": 0.9}]},
                {"text": "edtior", "options": [{"text": "editor", "score": 0.8}]},
            ]
        }
    }
    assert query.corrected_text("the a of", response) is None
    assert query.corrected_text("how the edtior", response) == "how the editor"


def test_pinned_packages_match_and_rank_first_in_the_editors_order():
    ranked = query.ranked_query("document viewer")
    assert query.pinned_first(ranked, []) is ranked
    pinned = query.pinned_first(ranked, [7, 3])
    should = pinned["bool"]["should"]
    assert pinned["bool"]["minimum_should_match"] == 1  # the words, or a pin
    assert should[0] is ranked
    boosts = [(c["constant_score"]["filter"], c["constant_score"]["boost"]) for c in should[1:]]
    assert boosts == [
        ({"ids": {"values": ["7"]}}, 2 * query.PIN_BOOST),
        ({"ids": {"values": ["3"]}}, query.PIN_BOOST),
    ]
    assert query.PIN_BOOST > 10 * query.EXACT_NAME_BOOST
    assert query.ranked_query("document viewer", pins=[7, 3]) == pinned
