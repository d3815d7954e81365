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
  filter set share one ``filter`` aggregation (those no filter applies to sit at the top
  level), and their tag facets one ``terms`` aggregation over the ``tags`` field (one bucket
  list instead of eight).
* A browse (no words) that is not ranked is ``match_all``: Elasticsearch then counts its
  facets from the index instead of visiting every package.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from search import meaning, ranking
from search.facets import TAGS_FIELD, FacetKind, TagFacet, tags_include
from search.ranking import bare
from search.results import HL_POST, HL_PRE, SOURCE_FIELDS

TEXT_FIELDS = [
    "name^2",
    "name.nolib^1.5",
    "summary^3",
    "summary.joined^3",
    "description",
    "tag_words^2",
    "tags.text^1.5",
    "maintainer^0.5",
]
# Typos are matched against unstemmed words (a stemmed "emul" is too far from "emualtor").
# Typos are forgiven in names and summaries, not descriptions: a description's vocabulary is
# large, and expanding a word against it cost 1.3 ms of Elasticsearch CPU per typo-tolerant
# request (8.2 -> 6.9 ms, the benchmark's mix) for no gain (dev half, typos nDCG@10 0.840
# with descriptions, 0.849 without). ``name.nolib`` adds nothing ``name`` does not find.
# One typo from 4 letters, two from 8 ("AUTO:4,8"; Elasticsearch's AUTO allows one from 3
# and two from 6): a 3-letter word one letter off is another word ("vim", "aim"), and two
# typos in 6 or 7 letters reach many. Measured on the 119 typo-tolerant requests of the
# benchmark's mix: 8.3 -> 6.3 ms of Elasticsearch CPU each (both changes); judged typos,
# held-out half: nDCG@10 0.797 -> 0.803, success@3 95.8% -> 100%.
FUZZY_FIELDS = ["name^3", "summary.exact^2"]
FUZZY_EXPANSIONS = 25
FUZZINESS = "AUTO:4,8"
FUZZY_PREFIX = 1  # letters a typo never touches
SORT_CLAUSES: dict[str, list[Any]] = {
    "relevance": [{"_score": "desc"}, {"popularity": "desc"}, {"name.raw": "asc"}],
    "name": [{"name.raw": "asc"}],
    "popularity": [{"popularity": "desc"}, {"name.raw": "asc"}],
    "size": [{"installed_size_kb": {"order": "asc", "missing": "_last"}}, {"name.raw": "asc"}],
}
TAGS_AGGREGATION_SIZE = 10_000  # more than the distinct tags of any catalog: every bucket
# "Did you mean" corrects one edit per word. Two edits cost 9x the Elasticsearch time (the
# mix's 119 searches that go to typo tolerance: 466 -> 50 ms of ``took`` in all) and only
# added wrong corrections: 150 popular names misspelt in the first letter and one more, 74
# corrections offered with two edits and 14 with one, none of them right either way; with
# one wrong letter, 138 of 139 right both ways; every judged typo query corrected alike.
DID_YOU_MEAN_OPTIONS = {
    "suggest_mode": "popular",
    "min_word_length": 3,
    "prefix_length": 0,
    "max_edits": 1,
}


def split_query(q: str) -> tuple[str, list[str]]:
    """Separate quoted phrases from the free text (an unbalanced quote is ignored)."""
    phrases = [p.strip() for p in re.findall(r'"([^"]*)"', q) if p.strip()]
    free = re.sub(r'"[^"]*"', " ", q).replace('"', " ")
    return " ".join(free.split()), phrases


def has_free_words(q: str) -> bool:
    """Whether a search for ``q`` has words outside quotes (typo tolerance applies to them)."""
    return bool(q) and bool(split_query(q)[0])


# Words a need is phrased with that say nothing about it: dropped ("i want to edit photos on
# my computer" asks for "edit photos computer").
STOPWORDS = frozenset(
    {
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "can",
        "do",
        "does",
        "for",
        "from",
        "have",
        "how",
        "i",
        "in",
        "into",
        "is",
        "it",
        "its",
        "me",
        "my",
        "of",
        "on",
        "or",
        "so",
        "some",
        "that",
        "the",
        "their",
        "this",
        "to",
        "use",
        "using",
        "want",
        "which",
        "with",
        "without",
        "your",
        "you",
        "our",
        "we",
        "between",
        "best",
        "good",
        "new",
        "free",
        "open",
        "way",
        "something",
        "thing",
        "things",
        "lets",
        "let",
        "make",
        "get",
    }
)  # fmt: skip
# Words that name what kind of thing is wanted without narrowing it: they add to the score
# when a package says them (debtags say "Program") but are never required.
GENERIC = frozenset(
    {
        "software",
        "program",
        "programs",
        "tool",
        "tools",
        "application",
        "applications",
        "app",
        "apps",
        "utility",
        "utilities",
        # "<program> alternative": a program like the named one (octave says "MATLAB
        # compatible", not "alternative").
        "alternative",
        "alternatives",
        "replacement",
        "equivalent",
    }
)  # fmt: skip
EXACT_NAME_BOOST = 10_000.0  # outside the prior and kind factors: nothing outranks it
NAME_TYPO_BOOST = 3_000.0  # a name one typo away, in the typo fallback
# One edit only, from 4 letters (FUZZINESS allowed two from 8): the typo-tolerant request
# got 17-20% cheaper (the mix's 119: 604-658 -> 501-516 ms of ``took``); judged typos, dev
# nDCG@10 0.860 -> 0.872, test 0.801 -> 0.802; 119 popular 8+ letter names with two typos
# still 94 in the top 3 (the words' own typo tolerance finds them).
NAME_TYPO_MIN_LENGTH = 4
NAME_PREFIX_BOOST = 120.0  # a name starting with the query (scaled by the prior and kind)
# Packages editors pinned to a query (search.curation) rank first, in the editors' order,
# above even an exact name: each pin adds PIN_BOOST times its rank from the bottom.
PIN_BOOST = 1_000_000.0


def words_of(text: str) -> tuple[list[str], list[str]]:
    """The significant words of free text, and its generic ones (stop words dropped)."""
    significant, generic = [], []
    for word in text.split():
        bare_word = bare(word)
        if not bare_word or bare_word in STOPWORDS:
            continue
        (generic if bare_word in GENERIC else significant).append(bare_word)
    return significant, generic


# All of one or two words, all but one of three or four, half of five or more. Measured on
# the dev half of the judged queries: requiring all but a quarter ("2<-25%", all of three)
# scored long queries 0.372 nDCG@10, this 0.494 (all 0.644 -> 0.654); "laptop battery
# saver" found one package because few say "saver".
MINIMUM_MATCH = "2<-1 4<-50%"


def required(*, relaxed: bool = False) -> str:
    """How many of ``count`` significant words a package must match (:data:`MINIMUM_MATCH`);
    with ``relaxed`` (the second pass of a search that found nothing), any one."""
    if relaxed:
        return "1"
    return MINIMUM_MATCH


def _words_to_match(text: str) -> str:
    """The words a package must match: the significant ones, or the generic ones when
    there are no others, or when all are stop words ("how to"), the words themselves."""
    significant, generic = words_of(text)
    return " ".join(significant or generic) or " ".join(text.split())


def _words_match(text: str, *, relaxed: bool, boost: float = 1.0) -> dict[str, Any]:
    """The words across fields (cross_fields: a word may be in the name and another in
    the summary), most of them required (:func:`required`)."""
    needed = _words_to_match(text)
    if not needed:
        return {"match_none": {}}
    return {
        "multi_match": {
            "query": needed,
            "fields": TEXT_FIELDS,
            "type": "cross_fields",
            "operator": "or",
            "minimum_should_match": required(relaxed=relaxed),
            **({"boost": boost} if boost != 1.0 else {}),
        }
    }


def _typos_match(text: str) -> dict[str, Any]:
    """The words with typos forgiven (names and summaries), at a lower weight."""
    needed = _words_to_match(text)
    if not needed:
        return {"match_none": {}}
    return {
        "multi_match": {
            "query": needed,
            "fields": FUZZY_FIELDS,
            "type": "best_fields",
            "fuzziness": FUZZINESS,
            "prefix_length": FUZZY_PREFIX,
            "max_expansions": FUZZY_EXPANSIONS,
            "minimum_should_match": required(),
            "boost": 0.3,
        }
    }


def _phrase(text: str) -> dict[str, Any]:
    return {
        "multi_match": {
            "query": text,
            "type": "phrase",
            "fields": ["name^4", "summary.exact^2", "description.exact"],
        }
    }


def _phrase_words(whole: str) -> str:
    """The words of a query that make its phrase: without a generic word that ends it
    ("backup tool" is a need for backup, and "Backup tool for MariaDB" is no closer to it
    than "backup program"), or that starts it before a stop word ("tool to convert audio
    files"), nor the stop words at either end. A generic word that qualifies the next one
    stays ("software synthesizer", "application launcher")."""
    words = whole.split()
    while words and (bare(words[-1]) in STOPWORDS or bare(words[-1]) in GENERIC):
        words.pop()
    while words and (
        bare(words[0]) in STOPWORDS
        or (bare(words[0]) in GENERIC and len(words) > 1 and bare(words[1]) in STOPWORDS)
    ):
        words.pop(0)
    return " ".join(words)


def _bonuses(free: str, whole: str) -> list[dict[str, Any]]:
    """Scoring only: every word present, names starting with the query, the words as a
    phrase, generic words a package says of itself."""
    significant, generic = words_of(free)
    bonuses: list[dict[str, Any]] = [
        {
            "constant_score": {
                "filter": {"match": {"name.prefix": whole}},
                "boost": NAME_PREFIX_BOOST,
            }
        },
    ]
    if len(significant) > 1:
        bonuses.append(
            {
                "multi_match": {
                    "query": " ".join(significant),
                    "fields": TEXT_FIELDS,
                    "type": "cross_fields",
                    "operator": "and",
                    "boost": 2,
                }
            }
        )
    if generic:
        bonuses.append(
            {
                "multi_match": {
                    "query": " ".join(generic),
                    "fields": ["tag_words", "summary"],
                    "boost": 0.5,
                }
            }
        )
    phrase = _phrase_words(whole)
    if len(phrase.split()) > 1:
        # The words as a phrase, in order, beat the same words scattered.
        bonuses += [
            {"constant_score": {"filter": {"match_phrase": {"name": phrase}}, "boost": 50}},
            {
                "constant_score": {
                    "filter": {"match_phrase": {"summary.exact": phrase}},
                    "boost": 50,
                }
            },
            {"match_phrase": {"description.exact": {"query": phrase, "slop": 1, "boost": 2}}},
        ]
    return bonuses


# Two words people type apart that packages write as one ("boot loader": GRUB's summary
# says "Bootloader"; "web cam", "screen shot", "file manager"): each pair of adjacent
# significant words is also tried joined, as a variant of the words. A joined word no
# package has costs one term lookup per field and matches nothing.
COMPOUND_WEIGHT = 0.9
MAX_COMPOUNDS = 3  # pairs tried (the first ones): a long query's words are rarely one word
# Not the summary's joined words: the query's pair joined meets them where the summary has
# the two words side by side, which the phrase bonus already rewards.
COMPOUND_FIELDS = [f for f in TEXT_FIELDS if f != "summary.joined^3"]


def compounds(free: str) -> list[tuple[str, str]]:
    """For each pair of adjacent alphabetic significant words of ``free`` (at most
    :data:`MAX_COMPOUNDS`): the significant words with the pair joined, and the joined word."""
    significant = words_of(free)[0]
    joined = []
    for i in range(len(significant) - 1):
        first, second = significant[i], significant[i + 1]
        if not (first.isalpha() and second.isalpha()):
            continue
        words = [*significant[:i], first + second, *significant[i + 2 :]]
        joined.append((" ".join(words), first + second))
    return joined[:MAX_COMPOUNDS]


def _compound_match(words: str, joined: str, *, relaxed: bool) -> dict[str, Any]:
    """Packages matching the words with a pair joined; only the joined word scores (the
    other words already score in the clause of the words as typed)."""
    scored = {
        "multi_match": {
            "query": joined,
            "fields": COMPOUND_FIELDS,
            "type": "cross_fields",
            "boost": COMPOUND_WEIGHT,
        }
    }
    if words == joined:  # two words: the joined one is all there is to match
        return scored
    return {"bool": {"filter": [_words_match(words, relaxed=relaxed)], "must": [scored]}}


def text_query(
    q: str,
    variants: Sequence[str] = (),
    *,
    mode: str = "exact",
) -> dict[str, Any]:
    """What a package must match for ``q``, and how its words score (no popularity, no
    exact-name bonus: :func:`ranked_query` adds those). ``variants`` are the free words'
    synonym expansions; ``mode`` is "exact", "fuzzy" (words with typos match too, at a
    lower weight) or "relaxed" (any one significant word is enough)."""
    if not q:
        return {"match_all": {}}
    free, phrases = split_query(q)
    whole = " ".join(q.replace('"', " ").split())
    relaxed = mode == "relaxed"
    must: list[dict[str, Any]] = [_phrase(p) for p in phrases]
    if free:
        qualify = [
            _words_match(t, relaxed=relaxed, boost=1.0 if i == 0 else 0.9)
            for i, t in enumerate([free, *variants])
        ]
        # A name starting with the query qualifies too: "libreoffice-wri", "python3-req".
        qualify.append(
            {"constant_score": {"filter": {"match": {"name.prefix": whole}}, "boost": 1}}
        )
        qualify += [_compound_match(w, j, relaxed=relaxed) for w, j in compounds(free)]
        if mode == "fuzzy":
            qualify.append(_typos_match(free))
        must.insert(0, {"bool": {"should": qualify, "minimum_should_match": 1}})
    query: dict[str, Any] = {"bool": {"must": must, "should": _bonuses(free, whole)}}
    spellings = ranking.language(words_of(free)[0])
    if spellings and not relaxed:
        query["bool"]["filter"] = [_language_filter(spellings)]
    return query


def _language_filter(spellings: Sequence[str]) -> dict[str, Any]:
    """Packages that name the language (in their name, text or debtags)."""
    return {
        "multi_match": {
            "query": " ".join(spellings),
            "fields": ["name", "name.nolib", "summary.exact", "description.exact", "tags.text"],
            "operator": "or",
        }
    }


def _factors(q: str) -> list[dict[str, Any]]:
    """Multipliers of a package's text score: its popularity prior (and size, for a query
    of several words), and a weight below 1 for each kind of package the query does not ask
    for, and for other languages' packages (search.ranking)."""
    factors: list[dict[str, Any]] = [
        {"weight": 1},
        {"field_value_factor": {"field": "prior", "factor": ranking.PRIOR_WEIGHT, "missing": 0}},
    ]
    significant, generic = words_of(split_query(q)[0])
    if meaning.applies([*significant, *generic]):  # a need, not a name
        size = {"field": "size_score", "factor": ranking.SIZE_WEIGHT, "missing": 0}
        factors.append({"field_value_factor": size})
    words = q.replace('"', " ").lower().split()
    kinds = [
        {"filter": {"term": {"kind": kind}}, "weight": weight}
        for kind, weight in ranking.kind_weights(ranking.intents(words)).items()
    ]
    by_ecosystem = ranking.ecosystem_weight(words)
    if by_ecosystem is not None:
        spared, weight = by_ecosystem
        others: dict[str, Any] = {"filter": [{"exists": {"field": "ecosystem"}}]}
        if spared is not None:
            others["must_not"] = [{"term": {"ecosystem": spared}}]
        kinds.append({"filter": {"bool": others}, "weight": weight})
    return [factors, kinds]


# The packages nearest a query's meaning weigh more: the 100 nearest, by half. Measured on
# the dev half (nDCG@10, all kinds): 0.668 without; 100 nearest x1.3 0.672, x1.5 0.675, x1.7
# 0.677; 50 nearest x1.5 0.672, 200 nearest 0.673; two tiers (10 and 100 nearest) 0.671 to
# 0.676 for twice the kNN searches.
MEANING_NEAREST = 100
MEANING_WEIGHT = 1.5


def _nearest(vector: Sequence[float], k: int) -> dict[str, Any]:
    """The ``k`` packages nearest ``vector`` (approximate kNN, Elasticsearch's HNSW graph).

    Only ever a weight, never a way in: letting the 10 nearest match as well (to fill
    searches whose words find little) lost more than it gained on the dev half (typos
    0.841 -> 0.752 nDCG@10: the filled searches no longer fell back to typo tolerance)."""
    return {
        "knn": {
            "field": meaning.FIELD,
            "query_vector": list(vector),
            "k": k,
            "num_candidates": max(2 * k, 100),
        }
    }


def _meaning_factor(vector: Sequence[float]) -> dict[str, Any]:
    """A weight for the packages nearest the query's meaning (one graph search, no script)."""
    return {"filter": _nearest(vector, MEANING_NEAREST), "weight": MEANING_WEIGHT}


def ranked_query(
    q: str,
    variants: Sequence[str] = (),
    *,
    mode: str = "exact",
    vector: Sequence[float] | None = None,
    scored: bool = True,
    pins: Sequence[int] = (),
) -> dict[str, Any]:
    """The scored query: :func:`text_query` times ``1 + PRIOR_WEIGHT * prior`` (plus
    ``SIZE_WEIGHT * size_score`` for several words) times the kind and language weights
    (times the meaning factor, given the query's ``vector``), plus constant bonuses
    that nothing outweighs: the exact name (and, in the typo fallback, a name one typo
    away). ``scored=False`` (a sort by a field, counting): only what matches matters, so a
    browse (no ``q``) is ``match_all``, which lets Elasticsearch count facets from the index
    (:func:`facet_aggregations`). ``pins``: packages editors pinned to ``q``
    (:func:`pinned_first`)."""
    if not q and not scored:
        return {"match_all": {}}
    prior_factor, kind_factors = _factors(q)
    if vector is not None:
        kind_factors.append(_meaning_factor(vector))
    weighted: dict[str, Any] = {
        "function_score": {
            "query": text_query(q, variants, mode=mode),
            "functions": prior_factor,
            "score_mode": "sum",
            "boost_mode": "multiply",
        }
    }
    if kind_factors:
        weighted = {
            "function_score": {
                "query": weighted,
                "functions": kind_factors,
                "score_mode": "multiply",
                "boost_mode": "multiply",
            }
        }
    if not q:
        return weighted
    whole = " ".join(q.replace('"', " ").split()).lower()
    bonuses: list[dict[str, Any]] = [
        {"constant_score": {"filter": {"term": {"name.raw": whole}}, "boost": EXACT_NAME_BOOST}}
    ]
    if mode == "fuzzy" and " " not in whole and len(whole) >= NAME_TYPO_MIN_LENGTH:
        near = {"value": whole, "fuzziness": 1, "prefix_length": FUZZY_PREFIX}
        typo = {"fuzzy": {"name.raw": near}}
        bonuses.append({"constant_score": {"filter": typo, "boost": NAME_TYPO_BOOST}})
    return pinned_first({"bool": {"must": [weighted], "should": bonuses}}, pins)


def pinned_first(query: dict[str, Any], pins: Sequence[int]) -> dict[str, Any]:
    """``query``, with the packages ``pins`` matching too and ranking first, in this order
    (what Elasticsearch's ``pinned`` query does; it is not in the integ-test distribution).
    Pinned packages are then results like any other: filtered, counted and paged with them,
    listed once. Without pins, ``query`` unchanged."""
    if not pins:
        return query
    firsts = [
        {"constant_score": {"filter": {"ids": {"values": [str(pk)]}}, "boost": PIN_BOOST * rank}}
        for rank, pk in zip(range(len(pins), 0, -1), pins, strict=True)
    ]
    return {"bool": {"should": [query, *firsts], "minimum_should_match": 1}}


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
    terms aggregation over ``tags``. The facets no filter applies to (all of them without
    filters; the selected one with a single filter) sit at the top level instead
    (:data:`TOP_LEVEL`): with a ``match_all`` query (a browse, :func:`ranked_query`),
    Elasticsearch counts top-level terms aggregations filter by filter, from the index,
    instead of visiting every package. :func:`group_of` says where a facet's counts are,
    :func:`group_response` finds them in a response.

    Measured at a million packages, the mix's 23 browses (filtered, sorted by popularity or
    size): 1,072 -> 672 ms of ``took`` in all, counts, totals and hits identical; a browse
    of everything by popularity 89 -> 13 ms. With words, no difference (63k and 1M).
    """
    aggs: dict[str, Any] = {}
    for number, (others, members) in enumerate(_groups(facets, clauses).items()):
        inner: dict[str, Any] = aggs if not others else {}
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
        if others:
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


# The group of the facets no filter applies to: its aggregations are the request's own.
TOP_LEVEL = ""


def group_of(facets: Sequence[FacetKind], clauses: Mapping[str, dict[str, Any]]) -> dict[str, str]:
    """The aggregation name under which each facet's counts are (see
    :func:`facet_aggregations`), :data:`TOP_LEVEL` for the top level."""
    return {
        facet.name: f"#group{number}" if others else TOP_LEVEL
        for number, (others, members) in enumerate(_groups(facets, clauses).items())
        for facet in members
    }


def group_response(aggregations: Mapping[str, Any], group: str) -> Any:
    """A group's part of a response's ``aggregations`` (:func:`group_of`)."""
    return aggregations if group == TOP_LEVEL else aggregations.get(group, {})


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
    explain: bool = False,
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
    if explain:
        body["explain"] = True
    return body


# The aggregation counting what the words match before any filter: typo tolerance and "did
# you mean" depend on that count, not on what the filters leave (search.service).
MATCHED = "#matched"


def matched_aggregation(
    clauses: Mapping[str, dict[str, Any]], pins: Sequence[int] = ()
) -> dict[str, Any]:
    """With filters, an aggregation counting the query's matches before them (a body's
    ``post_filter`` leaves them out of its total); without, nothing (the total is that).
    With ``pins`` (:func:`pinned_first`), the matches of the words alone, pins aside: what
    the typo and "any one word" passes are decided on (a pin on a search that finds
    nothing, the usual case, must not stop them)."""
    if pins:
        unpinned = {"bool": {"must_not": [{"ids": {"values": [str(pk) for pk in pins]}}]}}
        return {MATCHED: {"filter": unpinned}}
    return {MATCHED: {"filter": {"match_all": {}}}} if clauses else {}


def counts_body(
    query: dict[str, Any], clauses: Mapping[str, dict[str, Any]], pins: Sequence[int] = ()
) -> dict[str, Any]:
    """The request for :func:`totals` alone: no hits, no facets."""
    body: dict[str, Any] = {"size": 0, "track_total_hits": True, "query": query}
    if clauses:
        body["post_filter"] = all_of(list(clauses.values()))
    if clauses or pins:
        body["aggs"] = matched_aggregation(clauses, pins)
    return body


def request_cache(body: Mapping[str, Any]) -> bool:
    """Whether Elasticsearch's shard request cache may keep the answer to ``body`` until the
    index next changes (the query phase is then skipped; fetching and highlighting still
    run): not for requests with aggregations, which the summary cache already holds."""
    return "aggs" not in body


def msearch_searches(bodies: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The ``searches`` of one msearch sending ``bodies``: each after its header."""
    return [part for body in bodies for part in ({"request_cache": request_cache(body)}, body)]


def merged(hits: Mapping[str, Any], counts: Mapping[str, Any]) -> dict[str, Any]:
    """One response from the two of a browse ranked by relevance (its page of hits, scored,
    and its counts, :func:`counts_body` with the aggregations): the first's hits with the
    second's total and aggregations; ``took`` is the longer (they run side by side)."""
    return {
        **hits,
        "hits": {**hits["hits"], "total": counts["hits"]["total"]},
        "aggregations": counts.get("aggregations", {}),
        "took": max(hits.get("took", 0), counts.get("took", 0)),
    }


def failed_shards(response: Mapping[str, Any]) -> int:
    """How many shards did not answer a search (``_shards.failed``), or the searches of an
    msearch (``responses``; a search that failed whole has an ``error`` instead)."""
    parts = response.get("responses", [response])
    return sum(int(part.get("_shards", {}).get("failed", 0)) for part in parts)


def totals(response: Mapping[str, Any]) -> tuple[int, int]:
    """(hits after the filters, matches before them) from the response to a body of
    :func:`hits_body` plus :func:`matched_aggregation`, or of :func:`counts_body`."""
    shown = response["hits"]["total"]["value"]
    matched = response.get("aggregations", {}).get(MATCHED, {}).get("doc_count", shown)
    return shown, matched


def _every_word_typed(prefix: str) -> list[dict[str, Any]]:
    """For input of several words ("pdf vie"): every finished word in the name's parts or
    the summary, and the last one, still being typed, as the start of a name part or of a
    summary word. (Without this, any one word was enough: "pdf vie" listed Perl modules
    with a part starting "vie".)"""
    *done, last = prefix.split()
    clauses: list[dict[str, Any]] = [
        {"multi_match": {"query": word, "fields": ["name.part_prefix", "summary"]}} for word in done
    ]
    clauses.append(
        {
            "bool": {
                "should": [
                    {"match": {"name.part_prefix": {"query": last}}},
                    {"match_bool_prefix": {"summary": {"query": last, "max_expansions": 20}}},
                ],
                "minimum_should_match": 1,
            }
        }
    )
    return clauses


def suggest_body(prefix: str, limit: int) -> dict[str, Any]:
    """Package names completing ``prefix``: an exact name first, then names starting with
    it, then names with a part starting with the typed word, or for several words, packages
    matching every one of them (:func:`_every_word_typed`); popular ones first."""
    matched: dict[str, Any] = {
        "bool": {
            "should": [
                {"term": {"name.raw": {"value": prefix.lower(), "boost": 50}}},
                {"match": {"name.prefix": {"query": prefix, "boost": 5}}},
                # The typed word as a prefix of the name or of a part of it.
                {"match": {"name.part_prefix": {"query": prefix}}},
            ],
            "minimum_should_match": 1,
        }
    }
    if len(prefix.split()) > 1:
        # Every word must match; the clauses above only rank (a name starting so first).
        matched["bool"]["filter"] = _every_word_typed(prefix)
        matched["bool"]["minimum_should_match"] = 0
    return {
        "size": limit,
        "_source": ["name", "summary"],
        "track_total_hits": False,
        "query": {
            "function_score": {
                "query": matched,
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
    # A stop word is not a misspelling ("the" is not a typo of "th", nor "how" of "show").
    corrected = " ".join(w if w in STOPWORDS else corrections.get(w, (0, w))[1] for w in words)
    return corrected if corrected != text.lower() else None


def facet_values_body(
    facet: FacetKind,
    query: dict[str, Any],
    clauses: Mapping[str, dict[str, Any]],
    contains: str,
    limit: int,
    selected: Sequence[str] = (),
) -> dict[str, Any]:
    """A facet's values containing a text, counted under the search minus its own filter;
    and the ``selected`` ones, always listed (as in the sidebar), whatever they contain."""
    others = {n: c for n, c in clauses.items() if n != facet.name}
    include = facet.values_include(contains)
    aggs = {"values": {"terms": {"field": facet.field, "size": limit, "include": include}}}
    if selected:
        terms = [facet.term(v) for v in selected]
        aggs["selected"] = {"terms": {"field": facet.field, "include": terms, "size": len(terms)}}
    return {"size": 0, "query": filtered(query, others), "aggs": aggs}
