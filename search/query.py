"""Pure builders of Elasticsearch request bodies: plain dicts in, plain dicts out.

Nothing here talks to Elasticsearch, Redis or the database, so every rule of how a search
is asked is unit-tested without services (``tests/unit/search/test_query.py``), and
``search.service`` only decides *which* bodies to send.

* Relevance: exact name first, then names starting with the query, then the text match over
  name (split into parts), summary, description, tags and maintainer; phrases rank higher,
  quoted phrases are required; popularity (reverse-dependency count) is added as a small
  tie-breaker. With ``fuzzy``, a low-weight clause also matches the words with typos.
* User text is only ever passed to ``multi_match``/``match``/``term`` queries, never parsed as
  Lucene syntax, so no input can make the engine fail to parse it.
* Facets are disjunctive: hits are filtered with ``post_filter`` (AND across facets, OR within
  one), and each facet is aggregated with every filter except its own. Facets that share a
  filter set share one ``filter`` aggregation, and their tag facets one ``terms``
  aggregation over the ``tags`` field (one bucket list instead of eight).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from search.facets import TAGS_FIELD, FacetKind, TagFacet, tags_include
from search.results import HL_POST, HL_PRE, SOURCE_FIELDS

TEXT_FIELDS = [
    "name^6",
    "name.nolib^3",
    "summary^3",
    "description",
    "tags.text^1.5",
    "maintainer^0.5",
]
FUZZY_FIELDS = ["name^3", "name.nolib^2", "summary^2", "description^0.5"]
SORT_CLAUSES: dict[str, list[Any]] = {
    "relevance": [{"_score": "desc"}, {"popularity": "desc"}, {"name.raw": "asc"}],
    "name": [{"name.raw": "asc"}],
    "popularity": [{"popularity": "desc"}, {"name.raw": "asc"}],
    "size": [{"installed_size_kb": {"order": "asc", "missing": "_last"}}, {"name.raw": "asc"}],
}
TAGS_AGGREGATION_SIZE = 10_000  # more than the distinct tags of any catalog: every bucket
DID_YOU_MEAN_OPTIONS = {"suggest_mode": "popular", "min_word_length": 3, "prefix_length": 0}


def split_query(q: str) -> tuple[str, list[str]]:
    """Separate quoted phrases from the free text (an unbalanced quote is ignored)."""
    phrases = [p.strip() for p in re.findall(r'"([^"]*)"', q) if p.strip()]
    free = re.sub(r'"[^"]*"', " ", q).replace('"', " ")
    return " ".join(free.split()), phrases


def has_free_words(q: str) -> bool:
    """Whether a search for ``q`` has words outside quotes (typo tolerance applies to them)."""
    return bool(q) and bool(split_query(q)[0])


def _free_text(text: str, boost: float = 1.0, *, fuzzy: bool = False) -> dict[str, Any]:
    """All words, across fields (cross_fields, AND); with ``fuzzy``, also the words with
    typos, at a lower weight."""
    exact: dict[str, Any] = {
        "multi_match": {
            "query": text,
            "fields": TEXT_FIELDS,
            "type": "cross_fields",
            "operator": "and",
            **({"boost": boost} if boost != 1.0 else {}),
        }
    }
    if not fuzzy:
        return exact
    typos = {
        "multi_match": {
            "query": text,
            "fields": FUZZY_FIELDS,
            "type": "best_fields",
            "fuzziness": "AUTO",
            "prefix_length": 1,
            "max_expansions": 25,
            "operator": "and",
            "boost": 0.3 * boost,
        }
    }
    return {"bool": {"should": [exact, typos], "minimum_should_match": 1}}


def text_query(q: str, variants: Sequence[str] = (), *, fuzzy: bool = False) -> dict[str, Any]:
    """The matching and scoring of ``q``; ``variants`` are its synonym expansions."""
    if not q:
        return {"match_all": {}}
    free, phrases = split_query(q)
    whole = " ".join(q.replace('"', " ").split())
    must: list[dict[str, Any]] = []
    if free:
        texts = [free, *variants]
        alternatives = [
            _free_text(t, 1.0 if i == 0 else 0.9, fuzzy=fuzzy) for i, t in enumerate(texts)
        ]
        must.append(
            alternatives[0]
            if len(alternatives) == 1
            else {"bool": {"should": alternatives, "minimum_should_match": 1}}
        )
    for phrase in phrases:
        must.append(
            {
                "multi_match": {
                    "query": phrase,
                    "type": "phrase",
                    "fields": ["name^4", "summary.exact^2", "description.exact"],
                }
            }
        )
    # Constant bonuses keep the order predictable: exact name, then names starting with the
    # query, then text relevance; popularity breaks ties.
    should = [
        {"constant_score": {"filter": {"term": {"name.raw": whole.lower()}}, "boost": 200}},
        {"constant_score": {"filter": {"match": {"name.prefix": whole}}, "boost": 25}},
    ]
    if len(whole.split()) > 1:
        # The words as a phrase, in order, beat the same words scattered.
        should += [
            {"constant_score": {"filter": {"match_phrase": {"name": whole}}, "boost": 50}},
            {
                "constant_score": {
                    "filter": {"match_phrase": {"summary.exact": whole}},
                    "boost": 50,
                }
            },
            {"match_phrase": {"description.exact": {"query": whole, "slop": 1, "boost": 2}}},
        ]
    return {"bool": {"must": must, "should": should}}


def ranked_query(q: str, variants: Sequence[str] = (), *, fuzzy: bool = False) -> dict[str, Any]:
    """The scored query: :func:`text_query` plus popularity as a small additive bonus."""
    return {
        "function_score": {
            "query": text_query(q, variants, fuzzy=fuzzy),
            "functions": [
                {
                    "field_value_factor": {
                        "field": "popularity",
                        "modifier": "log1p",
                        "factor": 1,
                        "missing": 0,
                    },
                    "weight": 1.5,
                }
            ],
            "score_mode": "sum",
            "boost_mode": "sum",
        }
    }


# -- filters and facets ------------------------------------------------------------------


def filter_clauses(
    filters: Mapping[str, Sequence[str]], facets: Mapping[str, FacetKind]
) -> dict[str, dict[str, Any]]:
    """One filter clause per filtered facet (``facets``: the facet of each name)."""
    return {name: facets[name].filter_clause(values) for name, values in filters.items() if values}


def all_of(clauses: Sequence[dict[str, Any]]) -> dict[str, Any]:
    return {"bool": {"filter": list(clauses)}} if clauses else {"match_all": {}}


def filtered(query: dict[str, Any], clauses: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
    """``query`` restricted by every filter (for counts, where no facet is aggregated)."""
    if not clauses:
        return query
    return {"bool": {"must": [query], "filter": list(clauses.values())}}


def facet_aggregations(
    facets: Sequence[FacetKind],
    filters: Mapping[str, Sequence[str]],
    clauses: Mapping[str, dict[str, Any]],
) -> dict[str, Any]:
    """Every facet's counts under every filter but its own.

    Facets that apply the same filters (all the unselected ones apply every filter) share a
    ``filter`` aggregation, ``#group<n>``; inside it each facet's sub-aggregations sit
    under its name (``<name>``, ``<name>#selected``) and the group's tag facets share one
    terms aggregation over ``tags``. :func:`group_of` says where a facet's counts are.
    """
    aggs: dict[str, Any] = {}
    for number, (others, members) in enumerate(_groups(facets, clauses).items()):
        inner: dict[str, Any] = {}
        for facet in members:
            for sub, agg in facet.aggregation(list(filters.get(facet.name, ()))).items():
                inner[facet.name if sub == "values" else f"{facet.name}#{sub}"] = agg
        tag_facets = [f for f in members if isinstance(f, TagFacet)]
        if tag_facets:
            inner[TAGS_FIELD] = {
                "terms": {
                    "field": TAGS_FIELD,
                    "size": TAGS_AGGREGATION_SIZE,
                    "include": tags_include(tag_facets),
                }
            }
        aggs[f"#group{number}"] = {
            "filter": all_of([clauses[n] for n in others]),
            "aggs": inner,
        }
    return aggs


def _groups(
    facets: Sequence[FacetKind], clauses: Mapping[str, dict[str, Any]]
) -> dict[tuple[str, ...], list[FacetKind]]:
    groups: dict[tuple[str, ...], list[FacetKind]] = {}
    for facet in facets:
        groups.setdefault(tuple(n for n in clauses if n != facet.name), []).append(facet)
    return groups


def group_of(facets: Sequence[FacetKind], clauses: Mapping[str, dict[str, Any]]) -> dict[str, str]:
    """The aggregation name under which each facet's counts are (see
    :func:`facet_aggregations`)."""
    return {
        facet.name: f"#group{number}"
        for number, members in enumerate(_groups(facets, clauses).values())
        for facet in members
    }


# -- whole requests ---------------------------------------------------------------------


def highlight(query: dict[str, Any] | None = None) -> dict[str, Any]:
    """Highlighting of names, summaries and a description fragment (``query``: highlight
    what it matches instead of the searched query)."""
    body: dict[str, Any] = {
        "pre_tags": [HL_PRE],
        "post_tags": [HL_POST],
        "require_field_match": False,
        "fields": {
            "name": {"number_of_fragments": 0},
            "summary": {"number_of_fragments": 0},
            "description": {"fragment_size": 180, "number_of_fragments": 1},
        },
    }
    if query is not None:
        body["highlight_query"] = query
    return body


def hits_body(
    query: dict[str, Any],
    clauses: Mapping[str, dict[str, Any]],
    *,
    sort: str,
    size: int,
    offset: int = 0,
    cursor: Sequence[Any] | None = None,
    count: bool,
    highlighted: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The request for one page of hits (``count``: also the exact total).

    Counting every match keeps Elasticsearch from skipping non-competitive documents, so
    when the total is already known (the summary cache) it is not counted again."""
    body: dict[str, Any] = {
        "query": query,
        "sort": SORT_CLAUSES[sort],
        "size": size,
        "track_total_hits": count,
        "_source": SOURCE_FIELDS,
    }
    if clauses:
        body["post_filter"] = all_of(list(clauses.values()))
    if cursor is not None:
        body["search_after"] = list(cursor)
    else:
        body["from"] = offset
    if highlighted is not None:
        body["highlight"] = highlighted
    return body


def suggest_body(prefix: str, limit: int) -> dict[str, Any]:
    """Package names completing ``prefix``: an exact name first, then names starting with
    it, then names with a part starting with every typed word; popular ones first."""
    return {
        "size": limit,
        "_source": ["name", "summary"],
        "track_total_hits": False,
        "query": {
            "function_score": {
                "query": {
                    "bool": {
                        "should": [
                            {"term": {"name.raw": {"value": prefix.lower(), "boost": 50}}},
                            {"match": {"name.prefix": {"query": prefix, "boost": 5}}},
                            # Every typed word as a prefix of the name or of a part of it.
                            {"match": {"name.part_prefix": {"query": prefix}}},
                        ],
                        "minimum_should_match": 1,
                    }
                },
                "field_value_factor": {"field": "popularity", "modifier": "log1p", "missing": 0},
                "boost_mode": "sum",
            }
        },
        "sort": [{"_score": "desc"}, {"name.raw": "asc"}],
    }


def did_you_mean_body(text: str) -> dict[str, Any]:
    """Term suggestions for every word, from package names and summaries.

    ``prefix_length`` 0: a wrong first letter, which typo tolerance (prefix_length 1) does
    not forgive, is what is left for "did you mean" to correct."""
    return {
        "size": 0,
        "suggest": {
            "text": text.lower(),
            "name": {"term": {"field": "name", **DID_YOU_MEAN_OPTIONS}},
            "words": {"term": {"field": "summary.exact", **DID_YOU_MEAN_OPTIONS}},
        },
    }


def corrected_text(text: str, response: dict[str, Any]) -> str | None:
    """The words of ``text`` with the best correction of each, from a
    :func:`did_you_mean_body` response (names weigh more); None if nothing changes."""
    corrections: dict[str, tuple[float, str]] = {}
    for kind, weight in (("name", 1.2), ("words", 1.0)):
        for entry in response.get("suggest", {}).get(kind, []):
            for option in entry.get("options", [])[:1]:
                best = corrections.get(entry["text"])
                score = option["score"] * weight
                if best is None or score > best[0]:
                    corrections[entry["text"]] = (score, option["text"])
    words = text.lower().split()
    corrected = " ".join(corrections.get(w, (0, w))[1] for w in words)
    return corrected if corrected != text.lower() else None


def versions_at_least(pairs: Mapping[int, int]) -> dict[str, Any]:
    """Documents of these ids whose row version is at least the given one."""
    should = [
        {
            "bool": {
                "filter": [
                    {"ids": {"values": [str(pk)]}},
                    {"range": {"row_version": {"gte": version}}},
                ]
            }
        }
        for pk, version in pairs.items()
    ]
    return {"bool": {"should": should, "minimum_should_match": 1}}


def facet_values_body(
    facet: FacetKind,
    query: dict[str, Any],
    clauses: Mapping[str, dict[str, Any]],
    contains: str,
    limit: int,
) -> dict[str, Any]:
    """A facet's values containing a text, counted under the search minus its own filter."""
    others = {n: c for n, c in clauses.items() if n != facet.name}
    include = facet.values_include(contains)
    return {
        "size": 0,
        "query": filtered(query, others),
        "aggs": {"values": {"terms": {"field": facet.field, "size": limit, "include": include}}},
    }
