"""What visitors send, validated before any query is built."""

from __future__ import annotations

import pytest
from django.http import QueryDict

from search.facets import FacetRegistry
from search.params import InvalidSearch, decode_cursor, encode_cursor, facet_value_options, parse

FACETS = FacetRegistry(lambda: ["interface", "use"])


def parsed(query: str, **options):
    return parse(QueryDict(query), FACETS, **options)


def test_a_plain_search():
    params = parsed("q=%20image%20%20viewer&section=graphics&section=web&tag.use=viewing")
    assert params.q == "image viewer"
    assert params.filters == {"section": ("graphics", "web"), "tag.use": ("viewing",)}
    assert (params.sort, params.page, params.page_size, params.cursor) == ("relevance", 1, 20, None)


def test_control_characters_are_dropped_and_duplicates_merged():
    params = parsed("q=vi%00m%E2%80%8B&section=web&section=web&section=")
    assert params.q == "vim"
    assert params.filters == {"section": ("web",)}


@pytest.mark.parametrize(
    ("query", "param", "message"),
    [
        ("q=" + "x" * 201, "q", "too long"),
        ("page=0", "page", "between 1"),
        ("page=abc", "page", "whole number"),
        ("page_size=101", "page_size", "between 1 and 100"),
        ("page=40&page_size=50", "page", "too deep"),
        ("sort=bogus", "sort", "Unknown sort"),
        ("colour=red", "colour", "Unknown filter"),
        ("tag.unknown=x", "tag.unknown", "Unknown filter"),
        ("priority=urgent", "priority", "Unknown value"),
        ("size=gigantic", "size", "Unknown value"),
        ("cursor=WzFd", "cursor", "only available in the JSON API"),
        # A page starting past the window (results 1,001 on).
        ("page=35&page_size=30", "page", "too deep"),
        ("page=21&page_size=50", "page", "too deep"),
        # Only ASCII digits: int() also read a fullwidth 1, "1_0" and " 2 ".
        ("page=%EF%BC%91", "page", "whole number"),
        ("page=1_0", "page", "whole number"),
        ("page_size=%202%20", "page_size", "whole number"),
        # A parameter that takes one value, given twice: the last one used to win silently
        # (and "q=vim&q=emacs" shared its HTTP validator with "q=emacs&q=vim").
        ("q=vim&q=emacs", "q", "given 2 times"),
        ("sort=name&sort=relevance", "sort", "given 2 times"),
        ("page=2&page=3", "page", "given 2 times"),
        # Bytes that are not UTF-8 were replaced by U+FFFD and searched for.
        ("q=vim%ff", "q", "not valid UTF-8"),
        ("section=edit%ffors", "section", "not valid UTF-8"),
    ],
)
def test_bad_input_names_the_parameter_and_says_why(query, param, message):
    with pytest.raises(InvalidSearch, match=message) as raised:
        parsed(query)
    assert raised.value.param == param


def test_too_many_values_of_a_facet():
    with pytest.raises(InvalidSearch, match="Too many values"):
        parsed("&".join(f"section=s{i}" for i in range(21)))


def test_the_cursor_round_trips_and_rejects_anything_else():
    token = encode_cursor([12.5, 3, "vim"])
    assert decode_cursor(token) == (12.5, 3, "vim")
    assert parsed(f"cursor={token}", allow_cursor=True).cursor == (12.5, 3, "vim")
    for bad in ("not-a-cursor", encode_cursor([]), encode_cursor([[1]]), encode_cursor([True])):
        with pytest.raises(InvalidSearch, match="cursor"):
            decode_cursor(bad)


def test_the_cache_key_ignores_paging_sort_and_case():
    one = parsed("q=Vim&page=2&sort=name&section=web")
    two = parsed("q=vim&section=web")
    assert one.cache_key_parts() == two.cache_key_parts()


@pytest.mark.parametrize(
    ("sort", "values"),
    [
        ("popularity", [99999999999999999999999, "a"]),  # past a 64-bit integer
        ("relevance", [float("inf"), 3, "vim"]),  # 1e999 in the JSON
        ("name", [58.03, 3, "xemacs21-bin"]),  # a relevance cursor with another sort
        ("relevance", [1]),  # too short for its sort
        ("popularity", ["vim", 3]),  # the wrong kinds
        ("size", [12, 7]),
    ],
)
def test_a_cursor_must_fit_its_sort(sort, values):
    # These reached Elasticsearch: a 503 ("unavailable", from the client failing to encode
    # the number) or a 400 that blamed the search words.
    token = encode_cursor(values)
    with pytest.raises(InvalidSearch) as refused:
        parsed(f"sort={sort}&cursor={token}", allow_cursor=True)
    assert refused.value.param == "cursor"
    assert "cursor" in str(refused.value)


def test_every_sort_has_a_cursor_shape_of_its_sort_clauses():
    from search.params import CURSOR_KINDS, SORTS
    from search.query import SORT_CLAUSES

    assert set(CURSOR_KINDS) == set(SORTS) == set(SORT_CLAUSES)
    for sort, clauses in SORT_CLAUSES.items():
        assert len(CURSOR_KINDS[sort]) == len(clauses), sort
    for sort, values in [
        ("relevance", [12.5, 3, "vim"]),
        ("name", ["vim"]),
        ("popularity", [836, "libssl3"]),
        ("size", [9223372036854775807, "zzz"]),  # no size: sorted last
    ]:
        assert parsed(f"sort={sort}&cursor={encode_cursor(values)}", allow_cursor=True).cursor


def test_a_filter_value_keeps_its_inner_spaces():
    # The index keeps "Debian  Python Team" (two spaces) as it is: collapsing them made the
    # link of that value filter by another maintainer.
    params = parsed("maintainer=%20Debian%20%20Python%20Team%00%20")
    assert params.filters == {"maintainer": ("Debian  Python Team",)}


def test_tracking_parameters_of_shared_links_are_ignored():
    params = parsed("q=vim&utm_source=news&utm_medium=email&fbclid=abc&gclid=x")
    assert params.q == "vim" and params.filters == {}
    with pytest.raises(InvalidSearch, match="Unknown filter"):
        parsed("q=vim&utm=x")


def test_the_last_page_of_the_window_may_be_partial():
    """With 30 a page, page 34 holds results 991-1,000: it was refused as too deep while
    the page links offered it (results 991-1,000 could not be reached by page number)."""
    params = parsed("page=34&page_size=30")
    assert (params.offset, params.page_hits) == (990, 10)
    assert parsed("page=2&page_size=30").page_hits == 30


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ("limit=1&limit=50", "limit"),
        ("contains=de&contains=ut", "contains"),
        ("limit=%ff", "limit"),
        ("contains=caf%e9", "contains"),
        ("contains=" + "d" * 51, "contains"),
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=%EF%BC%91", "limit"),  # a fullwidth 1
    ],
)
def test_facet_value_options_refuse_what_they_cannot_honour(query, param):
    with pytest.raises(InvalidSearch) as raised:
        facet_value_options(QueryDict(query), 100)
    assert raised.value.param == param


def test_facet_value_options_read_contains_and_limit():
    assert facet_value_options(QueryDict(""), 100) == ("", 20)
    assert facet_value_options(QueryDict("contains=+De%20v&limit=7"), 100) == ("De v", 7)
    assert facet_value_options(QueryDict("contains=" + "d" * 50), 100)[0] == "d" * 50
