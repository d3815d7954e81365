"""The search service: the only code that builds Elasticsearch queries.

The HTML views and the JSON API both call :func:`search`, :func:`suggest` and
:func:`facet_values` with validated :class:`~search.params.SearchParams`.

* Relevance: exact name first, then names starting with the query, then the text match over
  name (split into parts), summary, description, tags and maintainer; phrases rank higher,
  quoted phrases are required; popularity (reverse-dependency count) is added as a small
  tie-breaker. Typo tolerance is a fallback: when the exact words find fewer than
  ``FUZZY_BELOW`` hits, the search runs again with a fuzzy clause at a low weight.
* User text is only ever passed to ``multi_match``/``match``/``term`` queries, never parsed as
  Lucene syntax, so no input can make the engine fail to parse it.
* Facets are disjunctive: hits are filtered with ``post_filter`` (AND across facets, OR within
  one), and each facet is aggregated with every filter except its own.
* Facet counts, with the rest of what the query and filters alone determine (total, typo
  fallback, "did you mean"), are cached in Redis (``search.facet_cache``) under a key with the
  concrete index and the index generation; a cached search is one request for its page.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from django.conf import settings
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from elasticsearch import (
    ApiError,
    BadRequestError,
    NotFoundError,
    TransportError,
)
from elasticsearch import (
    ConnectionError as ESConnectionError,
)

from search import curation, facet_cache
from search.facet_cache import Cached
from search.facets import FacetSpec, case_insensitive_regex, facet_spec, sidebar_facets
from search.indices import client, indices_behind, read_alias
from search.params import InvalidSearch, SearchParams, encode_cursor
from search.stores import Memo

logger = logging.getLogger(__name__)

REQUEST_TIMEOUT = 5
HL_PRE, HL_POST = "\ue000", "\ue001"  # sentinels, turned into <mark> after escaping
TEXT_FIELDS = [
    "name^6",
    "name.nolib^3",
    "summary^3",
    "description",
    "tags.text^1.5",
    "maintainer^0.5",
]
FUZZY_FIELDS = ["name^3", "name.nolib^2", "summary^2", "description^0.5"]
SOURCE_FIELDS = [
    "name",
    "version",
    "summary",
    "section",
    "priority",
    "architecture",
    "maintainer",
    "popularity",
    "installed_size_kb",
    "tags",
]
SORT_CLAUSES: dict[str, list[Any]] = {
    "relevance": [{"_score": "desc"}, {"popularity": "desc"}, {"name.raw": "asc"}],
    "name": [{"name.raw": "asc"}],
    "popularity": [{"popularity": "desc"}, {"name.raw": "asc"}],
    "size": [{"installed_size_kb": {"order": "asc", "missing": "_last"}}, {"name.raw": "asc"}],
}
T = TypeVar("T")
FEW_HITS = 3  # fewer hits than this: offer "did you mean"
FUZZY_BELOW = 5  # fewer exact hits than this: search again with typo tolerance


class SearchUnavailable(RuntimeError):
    """Elasticsearch cannot be reached, or the index is missing."""


@dataclass
class Hit:
    id: int
    name: str
    version: str
    summary: str
    section: str
    priority: str
    maintainer: str
    popularity: int
    installed_size_kb: int | None
    tags: list[str]
    score: float | None
    highlight: dict[str, SafeString] = field(default_factory=dict)
    promoted: str | None = None  # the label, when an editor pinned it to this query


@dataclass
class FacetValue:
    value: str
    label: str
    count: int
    selected: bool


@dataclass
class Facet:
    name: str
    label: str
    values: list[FacetValue]
    searchable: bool

    @property
    def selected(self) -> list[FacetValue]:
        return [v for v in self.values if v.selected]


@dataclass
class SearchResult:
    params: SearchParams
    total: int
    hits: list[Hit]
    facets: list[Facet]
    took_ms: int
    facets_cached: bool = False
    hits_cached: bool = False  # the page came from the cache (took_ms is then 0)
    suggestion: str | None = None
    next_cursor: str | None = None

    @property
    def pages(self) -> int:
        from search.params import MAX_RESULT_WINDOW

        shown = min(self.total, MAX_RESULT_WINDOW)
        return max(1, -(-shown // self.params.page_size))


# --------------------------------------------------------------------------- engine calls


# ``options()`` builds a new client object (about half a millisecond): kept per process.
_search_client = Memo(lambda: client().options(request_timeout=REQUEST_TIMEOUT))


def _es() -> Any:
    """The process's client with the search timeout."""
    return _search_client.get()


def _lookup_live_index() -> str:
    behind = _guard(lambda: indices_behind(read_alias()))
    if not behind:
        raise SearchUnavailable("the search index does not exist yet")
    return behind[0]


_live_index = Memo(_lookup_live_index, ttl=2.0)


def live_index() -> str:
    """The concrete index behind the read alias, for cache keys (looked up at most every
    2 s). Queries themselves always go through the alias; a rebuild bumps the index
    generation when it moves the alias, so a name that lags cannot serve stale counts."""
    return _live_index.get()


def _guard(call: Any) -> Any:
    """Run an engine call, mapping failures to InvalidSearch (400) or SearchUnavailable."""
    try:
        return call()
    except BadRequestError as exc:
        logger.warning("search engine rejected a query: %s", exc)
        raise InvalidSearch(
            "This search could not be processed; try fewer or simpler words.", "q"
        ) from None
    except NotFoundError as exc:
        raise SearchUnavailable(f"the search index is missing ({exc})") from exc
    except (ESConnectionError, TransportError, ApiError) as exc:
        raise SearchUnavailable(str(exc)) from exc


# --------------------------------------------------------------------------- query building


def split_query(q: str) -> tuple[str, list[str]]:
    """Separate quoted phrases from the free text (an unbalanced quote is ignored)."""
    phrases = [p.strip() for p in re.findall(r'"([^"]*)"', q) if p.strip()]
    free = re.sub(r'"[^"]*"', " ", q).replace('"', " ")
    return " ".join(free.split()), phrases


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
    return {
        "bool": {
            "should": [
                exact,
                {
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
                },
            ],
            "minimum_should_match": 1,
        }
    }


def text_query(q: str, *, fuzzy: bool = False) -> dict[str, Any]:
    if not q:
        return {"match_all": {}}
    free, phrases = split_query(q)
    whole = " ".join(q.replace('"', " ").split())
    must: list[dict[str, Any]] = []
    if free:
        variants = [free, *curation.expansions(free)]
        alternatives = [
            _free_text(v, 1.0 if i == 0 else 0.9, fuzzy=fuzzy) for i, v in enumerate(variants)
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


def ranked_query(q: str, *, fuzzy: bool = False) -> dict[str, Any]:
    """The scored query: :func:`text_query` plus popularity as a small additive bonus."""
    return {
        "function_score": {
            "query": text_query(q, fuzzy=fuzzy),
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


def filter_clauses(params: SearchParams) -> dict[str, dict[str, Any]]:
    clauses = {}
    for name, values in params.filters.items():
        spec = facet_spec(name)
        if spec is not None and values:
            clauses[name] = spec.filter_clause(values)
    return clauses


def _bool_filter(clauses: list[dict[str, Any]]) -> dict[str, Any]:
    return {"bool": {"filter": clauses}} if clauses else {"match_all": {}}


def facet_aggregations(
    specs: list[FacetSpec], params: SearchParams, clauses: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    aggs: dict[str, Any] = {}
    for spec in specs:
        others = [c for n, c in clauses.items() if n != spec.name]
        selected = list(params.filters.get(spec.name, ()))
        if spec.kind == "range":
            inner: dict[str, Any] = {
                "values": {
                    "range": {
                        "field": spec.field,
                        "keyed": True,
                        "ranges": [
                            {
                                "key": key,
                                **({"from": lo} if lo is not None else {}),
                                **({"to": hi} if hi is not None else {}),
                            }
                            for key, _, lo, hi in spec.ranges
                        ],
                    }
                }
            }
        else:
            terms: dict[str, Any] = {"field": spec.field, "size": spec.size}
            if spec.kind == "tag":
                terms["include"] = re.escape(spec.tag_facet or "") + "::.*"
            inner = {"values": {"terms": terms}}
            if selected:
                keys = (
                    [f"{spec.tag_facet}::{v}" for v in selected] if spec.kind == "tag" else selected
                )
                inner["selected"] = {
                    "terms": {"field": spec.field, "include": keys, "size": len(keys)}
                }
        aggs[spec.name] = {"filter": _bool_filter(others), "aggs": inner}
    return aggs


TAGS_FIELD_SIZE = 10_000  # more than the distinct tags of any catalog: every bucket comes back


def _grouped_facet_aggregations(
    specs: list[FacetSpec], params: SearchParams, clauses: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """The same counts as :func:`facet_aggregations`, computed with less work.

    Facets that apply the same filters (all the unselected ones, which apply every filter)
    share one ``filter`` aggregation, and their tag facets share one ``terms`` aggregation
    over the ``tags`` field that returns every bucket of those facets, split per facet by
    :func:`_ungroup_facet_aggregations` (which also cuts each to the facet's size, in the
    terms aggregation's order: count, then key). Read the response only through it.
    """
    groups: dict[tuple[str, ...], list[FacetSpec]] = {}
    for spec in specs:
        groups.setdefault(tuple(n for n in clauses if n != spec.name), []).append(spec)
    aggs: dict[str, Any] = {}
    for number, (others, members) in enumerate(groups.items()):
        single = facet_aggregations(members, params, clauses)
        inner: dict[str, Any] = {}
        tag_facets = []
        for spec in members:
            for sub, agg in single[spec.name]["aggs"].items():
                if spec.kind == "tag" and sub == "values":
                    tag_facets.append(spec.tag_facet or "")
                else:
                    inner[f"{spec.name}#{sub}"] = agg
        if tag_facets:
            inner["#tags"] = {
                "terms": {
                    "field": "tags",
                    "size": TAGS_FIELD_SIZE,
                    "include": "(" + "|".join(re.escape(t) for t in tag_facets) + ")::.*",
                }
            }
        aggs[f"#group{number}"] = {
            "filter": _bool_filter([clauses[n] for n in others]),
            "aggs": inner,
        }
    return aggs


def _ungroup_facet_aggregations(
    specs: list[FacetSpec], aggregations: dict[str, Any]
) -> dict[str, Any]:
    """The response of :func:`_grouped_facet_aggregations` in the shape of
    :func:`facet_aggregations`' (what :func:`read_facets` and the facet cache hold)."""
    by_name: dict[str, dict[str, Any]] = {}
    tag_buckets: dict[str, list[dict[str, Any]]] = {}
    for group in aggregations.values():
        for sub, agg in group.items():
            if not isinstance(agg, dict):
                continue
            if sub == "#tags":
                for bucket in agg.get("buckets", []):
                    facet = bucket["key"].split("::", 1)[0]
                    tag_buckets.setdefault(facet, []).append(bucket)
            elif "#" in sub:
                name, part = sub.rsplit("#", 1)
                by_name.setdefault(name, {})[part] = agg
    for spec in specs:
        if spec.kind == "tag":
            buckets = sorted(
                tag_buckets.get(spec.tag_facet or "", []),
                key=lambda b: (-b["doc_count"], b["key"]),
            )
            by_name.setdefault(spec.name, {})["values"] = {"buckets": buckets[: spec.size]}
    return by_name


def read_facets(
    specs: list[FacetSpec], params: SearchParams, aggregations: dict[str, Any]
) -> list[Facet]:
    facets = []
    for spec in specs:
        agg = aggregations.get(spec.name, {})
        selected = set(params.filters.get(spec.name, ()))
        values: list[FacetValue] = []
        if spec.kind == "range":
            buckets = agg.get("values", {}).get("buckets", {})
            for key, label, _, _ in spec.ranges:
                count = buckets.get(key, {}).get("doc_count", 0)
                if count or key in selected:
                    values.append(FacetValue(key, label, count, key in selected))
        else:
            seen = set()
            for bucket in agg.get("values", {}).get("buckets", []):
                value = spec.value_of(bucket["key"])
                seen.add(value)
                values.append(FacetValue(value, value, bucket["doc_count"], value in selected))
            extra = {
                spec.value_of(b["key"]): b["doc_count"]
                for b in agg.get("selected", {}).get("buckets", [])
            }
            for value in sorted(selected - seen):
                values.append(FacetValue(value, value, extra.get(value, 0), True))
        if values:
            facets.append(Facet(spec.name, spec.label, values, spec.searchable))
    return facets


def safe_highlight(fragment: str) -> SafeString:
    """Escape everything, then turn only our own sentinels into <mark> tags."""
    text = escape(fragment)
    return mark_safe(text.replace(HL_PRE, "<mark>").replace(HL_POST, "</mark>"))


def _hit(raw: dict[str, Any]) -> Hit:
    src = raw.get("_source", {})
    highlight = {
        name: safe_highlight(" … ".join(fragments))
        for name, fragments in raw.get("highlight", {}).items()
    }
    return Hit(
        id=int(raw["_id"]),
        name=src.get("name", ""),
        version=src.get("version", ""),
        summary=src.get("summary", ""),
        section=src.get("section", ""),
        priority=src.get("priority", ""),
        maintainer=src.get("maintainer", ""),
        popularity=src.get("popularity") or 0,
        installed_size_kb=src.get("installed_size_kb"),
        tags=src.get("tags") or [],
        score=raw.get("_score"),
        highlight=highlight,
    )


# --------------------------------------------------------------------------- public API


def _hits_body(
    params: SearchParams, clauses: dict[str, dict[str, Any]], *, fuzzy: bool, count: bool
) -> dict[str, Any]:
    """The request for one page of hits (``count``: also the exact total)."""
    body: dict[str, Any] = {
        "query": ranked_query(params.q, fuzzy=fuzzy),
        "sort": SORT_CLAUSES[params.sort],
        "size": params.page_size,
        # Counting every match keeps Elasticsearch from skipping non-competitive documents;
        # when the total is already known (the summary cache), it is not counted again.
        "track_total_hits": count,
        "_source": SOURCE_FIELDS,
    }
    if clauses:
        body["post_filter"] = _bool_filter(list(clauses.values()))
    if params.cursor is not None:
        body["search_after"] = list(params.cursor)
    else:
        body["from"] = params.offset
    if params.q:
        body["highlight"] = {
            "pre_tags": [HL_PRE],
            "post_tags": [HL_POST],
            "require_field_match": False,
            "fields": {
                "name": {"number_of_fragments": 0},
                "summary": {"number_of_fragments": 0},
                "description": {"fragment_size": 180, "number_of_fragments": 1},
            },
        }
        if fuzzy:
            # Highlight the exact words (and phrases) only. For every hit and highlighted
            # field, the unified highlighter builds a Levenshtein automaton for every fuzzy
            # term of the query, which made highlighting most of a search's time; a word
            # found only through a typo correction is not marked. Ranking, totals and
            # facets use the fuzzy query.
            body["highlight"]["highlight_query"] = ranked_query(params.q)
    return body


def cached(params: SearchParams, specs: list[FacetSpec], page: str | None = None) -> Cached:
    """What the cache holds for this search (see :func:`search.facet_cache.lookup`)."""
    free = split_query(params.q)[0]
    variants = curation.expansions(free) if free else []
    return facet_cache.lookup(live_index(), params, [s.name for s in specs], variants, page)


def _page_spec(params: SearchParams) -> str:
    """What, besides the query and filters, decides which hits a page holds."""
    cursor = list(params.cursor) if params.cursor is not None else None
    return json.dumps([params.sort, params.page, params.page_size, cursor], ensure_ascii=True)


def _typo_tolerant(q: str) -> bool:
    """Whether a search for ``q`` may be retried with typo tolerance (it has free words)."""
    return bool(q) and bool(split_query(q)[0])


def _typo_fallback(q: str, run: Callable[[bool], tuple[int, T]]) -> tuple[bool, int, T]:
    """Typo tolerance as a fallback: ``run(False)`` (exact words), and only when that finds
    fewer than ``FUZZY_BELOW`` hits and ``q`` has free words, ``run(True)``, kept if it finds
    more. ``run`` returns (hits found, anything); returns (fuzzy used, hits, that thing)."""
    total, outcome = run(False)
    if total < FUZZY_BELOW and _typo_tolerant(q):
        fuzzy_total, fuzzy_outcome = run(True)
        if fuzzy_total > total:
            return True, fuzzy_total, fuzzy_outcome
    return False, total, outcome


def _run(index: str, body: dict[str, Any]) -> dict[str, Any]:
    # Without aggregations, a request is served from Elasticsearch's shard request cache until
    # the index next changes (the query phase is skipped; fetching and highlighting still
    # run). Requests with aggregations are left out: the summary cache already holds them.
    request_cache = "aggs" not in body
    return _guard(lambda: _es().search(index=index, body=body, request_cache=request_cache))


def search(params: SearchParams | str, *, with_facets: bool = True) -> SearchResult:
    """Run a search; raises InvalidSearch (bad input) or SearchUnavailable (engine down).

    ``params`` may be plain query text for the common case (``search("vim")``).

    What a search's query and filters determine, whatever the page and sort (the facet
    counts, the total, whether typo tolerance was needed, the "did you mean" suggestion), is
    computed once per index generation and kept in the summary cache (``search.facet_cache``).
    With it, a search is one Elasticsearch request for one page of hits; and the page itself
    is kept under the summary's key (``SEARCH_PAGE_CACHE``), so a repeated search is answered
    from Redis alone, exactly as fresh as its counts.

    Typo tolerance is a fallback: the words are matched exactly first, and only when that
    finds fewer than ``FUZZY_BELOW`` hits does the search run again with a fuzzy clause (the
    exact matches still rank first). Most searches never pay for building fuzzy automata, and
    a typo can never push exact matches down.
    """
    if isinstance(params, str):
        params = SearchParams(q=params)
    index = read_alias()
    clauses = filter_clauses(params)
    specs = sidebar_facets(dict(params.filters)) if with_facets else []

    found = Cached()
    page = _page_spec(params) if settings.SEARCH_PAGE_CACHE else None
    lock = False
    if specs:
        found = cached(params, specs, page)
        if found.key is not None and found.summary is None:
            lock = facet_cache.lock(found.key)
            if not lock:
                found.summary = facet_cache.wait_for(found.key)
    key, summary = found.key, found.summary
    hits_cached = found.page is not None and summary is not None
    try:
        if hits_cached:
            response = found.page
        elif summary is not None:
            response = _run(index, _hits_body(params, clauses, fuzzy=summary["fuzzy"], count=False))
        else:
            response, summary = _search_and_summarise(params, index, clauses, specs)
            if key and lock:
                facet_cache.put(key, summary)
        if key and page is not None and not hits_cached:
            facet_cache.put(
                facet_cache.page_key(key, page),
                {"hits": {"hits": response["hits"]["hits"]}, "took": response.get("took", 0)},
            )
    finally:
        if key and lock:
            facet_cache.unlock(key)

    raw_hits = response["hits"]["hits"]
    first_page = params.page == 1 and params.cursor is None
    result = SearchResult(
        params=params,
        total=summary["total"],
        hits=[_hit(h) for h in raw_hits],
        facets=read_facets(specs, params, summary["aggs"]),
        took_ms=0 if hits_cached else response.get("took", 0),
        facets_cached=found.summary is not None,
        hits_cached=hits_cached,
        suggestion=summary["suggestion"] if first_page else None,
    )
    if len(raw_hits) == params.page_size and raw_hits and "sort" in raw_hits[-1]:
        result.next_cursor = encode_cursor(raw_hits[-1]["sort"])
    if params.q and first_page and params.sort == "relevance":
        promoted = promoted_hits(params.q, index)
        if promoted:
            pinned = {h.id for h in promoted}
            result.hits = promoted + [h for h in result.hits if h.id not in pinned]
    return result


def _search_and_summarise(
    params: SearchParams,
    index: str,
    clauses: dict[str, dict[str, Any]],
    specs: list[FacetSpec],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Search without the summary cache: the response and the summary to cache."""
    aggs = _grouped_facet_aggregations(specs, params, clauses) if specs else None

    def run(fuzzy: bool) -> tuple[int, dict[str, Any]]:
        body = _hits_body(params, clauses, fuzzy=fuzzy, count=True)
        if aggs:
            body["aggs"] = aggs
        response = _run(index, body)
        return response["hits"]["total"]["value"], response

    fuzzy, total, response = _typo_fallback(params.q, run)
    suggestion = None
    if params.q and total < FEW_HITS:
        suggestion = did_you_mean(params, index, clauses, total)
    summary = {
        "aggs": _ungroup_facet_aggregations(specs, response.get("aggregations", {})),
        "total": total,
        "fuzzy": fuzzy,
        "suggestion": suggestion,
    }
    return response, summary


def promoted_hits(q: str, index: str) -> list[Hit]:
    """Packages editors pinned to this query, in their order, labelled."""
    pinned = curation.promotions_for(q)
    if not pinned:
        return []
    docs = _guard(
        lambda: _es().mget(index=index, ids=[str(pk) for pk, _ in pinned], source=SOURCE_FIELDS)
    )
    labels = dict(pinned)
    hits = []
    for doc in docs["docs"]:
        if doc.get("found"):
            hit = _hit(doc)
            hit.promoted = labels[hit.id]
            hits.append(hit)
    return hits


DID_YOU_MEAN_OPTIONS = {"suggest_mode": "popular", "min_word_length": 3, "prefix_length": 0}


def did_you_mean(
    params: SearchParams, index: str, clauses: dict[str, Any], total: int
) -> str | None:
    """A corrected query that finds more, or None. Only ever suggests a query that has hits."""
    free, phrases = split_query(params.q)
    if not free or phrases:
        return None
    body = {
        "size": 0,
        "suggest": {
            "text": free.lower(),
            # prefix_length 0: a wrong first letter, which typo tolerance (prefix_length 1)
            # does not forgive, is what is left for "did you mean" to correct.
            "name": {"term": {"field": "name", **DID_YOU_MEAN_OPTIONS}},
            "words": {"term": {"field": "summary.exact", **DID_YOU_MEAN_OPTIONS}},
        },
    }
    response = _guard(lambda: _es().search(index=index, body=body))
    corrections: dict[str, tuple[float, str]] = {}
    for kind in ("name", "words"):
        for entry in response.get("suggest", {}).get(kind, []):
            for option in entry.get("options", [])[:1]:
                best = corrections.get(entry["text"])
                score = option["score"] * (1.2 if kind == "name" else 1.0)
                if best is None or score > best[0]:
                    corrections[entry["text"]] = (score, option["text"])
    if not corrections:
        return None
    words = free.lower().split()
    corrected = " ".join(corrections.get(w, (0, w))[1] for w in words)
    if corrected == free.lower():
        return None
    check = {
        "query": {"bool": {"must": [ranked_query(corrected)], "filter": list(clauses.values())}}
    }
    found = _guard(lambda: _es().count(index=index, body=check))["count"]
    return corrected if found > total else None


def suggest(prefix: str, limit: int = 8) -> list[dict[str, Any]]:
    """Package names completing ``prefix`` (autocomplete), most depended-on first."""
    prefix = " ".join(prefix.split())[:100]
    if not prefix:
        return []
    # Autocomplete requests repeat a lot (everyone types "f", "fi", "fir"): the answers are
    # kept per index generation in Redis (as fresh as the facet counts), and Elasticsearch's
    # shard request cache answers repeats the Redis cache cannot (a write in progress).
    key, suggestions = facet_cache.lookup_value(live_index(), f"suggest:{limit}:{prefix.lower()}")
    if suggestions is not None:
        return suggestions
    index = read_alias()
    body = {
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
    response = _guard(lambda: _es().search(index=index, body=body, request_cache=True))
    suggestions = [
        {"name": h["_source"]["name"], "summary": h["_source"].get("summary", "")}
        for h in response["hits"]["hits"]
    ]
    if key is not None:
        facet_cache.put(key, suggestions)
    return suggestions


def facet_values(
    name: str, params: SearchParams, contains: str = "", limit: int = 20
) -> list[FacetValue]:
    """Values of one facet under the current search (minus its own filter), optionally only
    those containing ``contains`` (case-insensitive): the search box of long facets."""
    spec = facet_spec(name)
    if spec is None or spec.kind == "range":
        raise InvalidSearch(f"{name!r} is not a facet whose values can be searched.", "facet")
    index = read_alias()
    clauses = filter_clauses(params)
    others = [c for n, c in clauses.items() if n != name]
    fuzzy = _search_is_fuzzy(params, index, clauses)
    prefix = f"{re.escape(spec.tag_facet or '')}::" if spec.kind == "tag" else ""
    include = prefix + (case_insensitive_regex(contains[:50]) if contains else ".*")
    body = {
        "size": 0,
        "query": {"bool": {"must": [ranked_query(params.q, fuzzy=fuzzy)], "filter": others}},
        "aggs": {"values": {"terms": {"field": spec.field, "size": limit, "include": include}}},
    }
    response = _guard(lambda: _es().search(index=index, body=body))
    selected = set(params.filters.get(name, ()))
    return [
        FacetValue(
            spec.value_of(b["key"]),
            spec.value_of(b["key"]),
            b["doc_count"],
            spec.value_of(b["key"]) in selected,
        )
        for b in response["aggregations"]["values"]["buckets"]
    ]


def _search_is_fuzzy(params: SearchParams, index: str, clauses: dict[str, dict[str, Any]]) -> bool:
    """Whether :func:`search` with these parameters falls back to typo tolerance (from the
    summary cache when it has the search, else by counting as the search would)."""
    if not _typo_tolerant(params.q):
        return False
    specs = sidebar_facets(dict(params.filters))
    summary = cached(params, specs).summary
    if summary is not None:
        return bool(summary["fuzzy"])

    def count(fuzzy: bool) -> tuple[int, None]:
        query = {
            "bool": {
                "must": [ranked_query(params.q, fuzzy=fuzzy)],
                "filter": list(clauses.values()),
            }
        }
        return _guard(lambda: _es().count(index=index, body={"query": query}))["count"], None

    return _typo_fallback(params.q, count)[0]
