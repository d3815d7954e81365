"""Facet kinds: their filter clause, aggregation and reading, and the registry."""

from __future__ import annotations

from search.facets import FIXED, FacetRegistry, TagFacet, case_insensitive_regex, tags_include
from search.results import FacetValue


def test_a_terms_facet_lists_the_top_values_and_every_selected_one():
    section = FIXED["section"]
    assert section.filter_clause(["web", "net"]) == {"terms": {"section": ["web", "net"]}}
    group = {
        "section": {"buckets": [{"key": "libs", "doc_count": 9}, {"key": "web", "doc_count": 3}]},
        "section#selected": {"buckets": [{"key": "games", "doc_count": 0}]},
    }
    assert section.read(group, ["web", "games"]) == [
        FacetValue("libs", "libs", 9, False),
        FacetValue("web", "web", 3, True),
        FacetValue("games", "games", 0, True),  # selected, not among the top: still shown
    ]


def test_a_closed_set_facet_needs_no_second_aggregation_for_its_selected_values():
    # Priority's five values all come back in its top five: a selected one is among them.
    priority = FIXED["priority"]
    assert list(priority.aggregation(["extra"])) == ["values"]
    group = {"priority": {"buckets": [{"key": "optional", "doc_count": 7}]}}
    assert priority.read(group, ["extra"]) == [
        FacetValue("optional", "optional", 7, False),
        FacetValue("extra", "extra", 0, True),
    ]
    assert list(FIXED["section"].aggregation(["web"])) == ["values", "selected"]


def test_a_tag_facet_encodes_its_values_and_reads_only_its_own_tags():
    use = TagFacet.named("use")
    assert use.name == "tag.use" and use.label == "Use"
    assert use.filter_clause(["editing"]) == {"terms": {"tags": ["use::editing"]}}
    assert use.aggregation([]) == {}  # its top values come from the shared tags aggregation
    shared = {
        "tags": {
            "buckets": [
                {"key": "interface::x11", "doc_count": 50},
                {"key": "use::viewing", "doc_count": 4},
                {"key": "use::editing", "doc_count": 4},
            ]
        }
    }
    rows = use.read(shared, [])
    assert [(r.value, r.count) for r in rows] == [("editing", 4), ("viewing", 4)]  # count, key
    assert use.values_include("ed") == r"use::.*[eE][dD].*"
    assert tags_include([use, TagFacet.named("works-with")]) == r"(use|works\-with)::.*"


def test_a_selected_tag_value_is_counted_from_the_shared_tags_aggregation():
    # The shared aggregation returns every bucket of its tag facets, so a selected value's
    # count is already there: a second terms aggregation over ``tags`` for it cost a full
    # pass over the matches (half of a 62 ms filtered browse of a million packages).
    use = TagFacet.named("use")
    assert use.aggregation(["rare"]) == {}
    many = [{"key": f"use::v{i}", "doc_count": 100 - i} for i in range(12)]
    shared = {"tags": {"buckets": [*many, {"key": "use::rare", "doc_count": 2}]}}
    rows = use.read(shared, ["rare", "gone", "v0"])
    assert [(r.value, r.count, r.selected) for r in rows] == [
        *[(f"v{i}", 100 - i, i == 0) for i in range(use.size)],
        ("gone", 0, True),  # selected, matched by nothing: still shown, at 0
        ("rare", 2, True),  # selected, not among the top: its count from the shared buckets
    ]


def test_a_range_facet_shows_non_empty_and_selected_buckets_with_labels():
    size = FIXED["size"]
    # Documents keep their bucket's key: filters and counts use it, not the number.
    assert size.filter_clause(["huge", "tiny"]) == {"terms": {"size_range": ["tiny", "huge"]}}
    assert size.aggregation([]) == {"values": {"terms": {"field": "size_range", "size": 5}}}
    group = {"size": {"buckets": [{"key": "tiny", "doc_count": 5}]}}
    assert size.read(group, ["small"]) == [
        FacetValue("tiny", "under 100 KB", 5, False),
        FacetValue("small", "100 KB – 1 MB", 0, True),
    ]
    assert size.label_of("medium") == "1 – 10 MB"


def test_a_range_facet_puts_a_number_in_the_bucket_that_starts_at_or_below_it():
    size = FIXED["size"]
    assert [size.key_of(n) for n in (0, 99, 100, 1023, 1024, 100 * 1024, 10**9)] == [
        "tiny", "tiny", "small", "small", "medium", "huge", "huge"
    ]  # fmt: skip
    assert size.key_of(None) is None


def test_the_registry_knows_fixed_and_catalog_tag_facets():
    facets = FacetRegistry(lambda: ["interface", "use", "role"])
    assert facets.get("tag.use") == TagFacet.named("use")
    assert facets.get("tag.unknown") is None and facets.get("colour") is None
    sidebar = [f.name for f in facets.sidebar(["tag.role"])]
    assert sidebar[: len(FIXED)] == list(FIXED)
    assert sidebar[len(FIXED) :] == ["tag.interface", "tag.use", "tag.role"]
    assert "tag facets such as tag.interface" in facets.describe()


def test_case_insensitive_regex_escapes_what_lucene_would_read():
    assert case_insensitive_regex("a.b") == r".*[aA]\.[bB].*"
    assert case_insensitive_regex("c++") == r".*[cC]\+\+.*"


def test_tag_facets_speak_the_vocabulary_and_hide_placeholders():
    from search.facets import Vocabulary

    words = Vocabulary(
        facets={"interface": "User Interface"},
        values={"interface": {"x11": "X Window System"}},
    )
    registry = FacetRegistry(lambda: ["interface"], lambda: words)
    interface = registry.get("tag.interface")
    assert interface.label == "User Interface"
    shared = {
        "tags": {
            "buckets": [
                {"key": "interface::x11", "doc_count": 50},
                {"key": "interface::TODO", "doc_count": 40},
                {"key": "interface::shell", "doc_count": 3},
            ]
        }
    }
    assert interface.read(shared, []) == [
        FacetValue("x11", "X Window System", 50, False),
        FacetValue("shell", "shell", 3, False),  # no words for it: the value itself
    ]
    # A placeholder someone selected (an old link) stays listed, as any selected value.
    assert interface.read(shared, ["TODO"])[-1] == FacetValue("TODO", "TODO", 40, True)


def test_a_facet_has_more_values_when_the_engine_left_some_out_selected_or_not():
    # The sidebar counted the unselected rows it lists against the facet's size, so a
    # selected value among the top ones hid "Show more" (section=libs: 58 sections, "more"
    # false).
    section = FIXED["section"]
    top = [{"key": f"s{i}", "doc_count": 100 - i} for i in range(section.size)]
    cut = {"section": {"buckets": top, "sum_other_doc_count": 40}}
    assert section.has_more(cut)
    assert not section.has_more({"section": {"buckets": top, "sum_other_doc_count": 0}})
    assert not FIXED["priority"].has_more({"priority": {"buckets": [], "sum_other_doc_count": 3}})
    assert not FIXED["size"].has_more({"size": {"buckets": []}})
    use = TagFacet.named("use")
    many = [{"key": f"use::v{i}", "doc_count": 100 - i} for i in range(use.size)]
    placeholder = {"key": "use::TODO", "doc_count": 1}
    assert not use.has_more({"tags": {"buckets": [*many, placeholder]}})  # never offered
    assert use.has_more({"tags": {"buckets": [*many, {"key": "use::rare", "doc_count": 1}]}})


def test_case_insensitive_regex_never_splits_a_letter_whose_case_is_two_letters():
    # "İ".lower() is "i" and a combining dot, "ß".upper() is "SS", "ﬀ".upper() is "FF":
    # put in a character class, each letter of them matched alone ("İ" found every "i").
    assert case_insensitive_regex("İ") == ".*İ.*"
    assert case_insensitive_regex("ß") == ".*ß.*"
    assert case_insensitive_regex("ﬀ") == ".*ﬀ.*"
    assert case_insensitive_regex("Éa") == ".*[éÉ][aA].*"
