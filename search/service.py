"""The search service: the one entry point into search, and the only caller of the engine
for reads.

The pages (``portal.views``), the admin and the JSON API (``search.api``) call this module
with what visitors send (:func:`parse`) and get plain results back (``search.results``).
What a request looks like is decided in ``search.query`` (pure builders), what it is
cached under in ``search.cache``; this module orders the steps:

1. Look the search up in the cache: its summary (counts, total, typo fallback, "did you
   mean") and its page of hits, under the index generation.
2. Without a summary, compute it (once across processes): one request for the page of hits
   with every facet aggregated (for a browse ranked by relevance, two sent together: its
   hits, scored, and its counts, :meth:`Plan.summary_bodies`); typo tolerance only when
   the words match fewer than ``FUZZY_BELOW`` packages before any filter (then the same
   request again with a fuzzy clause, kept if it finds more); a relaxed second pass (any
   one significant word) only when they still match nothing; "did you mean" only for
   fewer than ``FEW_HITS``.
3. With a summary but no page, one request for the page (no aggregations, no counting).
4. Label the editors' promoted packages, which the query ranks first
   (:func:`search.query.pinned_first`).

User text reaches the engine only inside ``match``/``multi_match``/``term`` queries; an
engine's 400 becomes :class:`~search.params.InvalidSearch`, an unreachable engine
:class:`SearchUnavailable`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from textwrap import shorten
from typing import Any, TypeVar

from django.conf import settings
from django.db import DatabaseError
from elasticsearch import (
    ApiError,
    BadRequestError,
    NotFoundError,
    TransportError,
)
from elasticsearch import (
    ConnectionError as ESConnectionError,
)

from search import analytics, cache, curation, freshness, meaning, query, ratelimit, stores
from search.facets import FacetKind, RangeFacet, registry, vocabulary_version
from search.indices import about_the_index, client, indices_behind, read_alias
from search.params import (
    DEFAULT_PAGE_SIZE,
    MAX_RESULT_WINDOW,
    SORTS,
    InvalidSearch,
    SearchParams,
    encode_cursor,
)
from search.params import parse as parse_params
from search.results import (
    Facet,
    FacetValue,
    SearchResult,
    Selected,
    Summary,
    hit_from,
)
from search.stores import Memo

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "MAX_RESULT_WINDOW",
    "SORTS",
    "InvalidSearch",
    "SearchParams",
    "SearchResult",
    "SearchUnavailable",
    "document_state",
    "facet_values",
    "log_search",
    "over_rate_limit",
    "parse",
    "popular_searches",
    "request_scope",
    "search",
    "suggest",
    "validator",
]

T = TypeVar("T")
REQUEST_TIMEOUT = 5
FEW_HITS = 3  # fewer hits than this: offer "did you mean"
FUZZY_BELOW = 5  # fewer exact hits than this: search again with typo tolerance


class SearchUnavailable(RuntimeError):
    """Elasticsearch cannot be reached, or the index is missing."""


def parse(data: Any, *, allow_cursor: bool = False) -> SearchParams:
    """Validated parameters from a QueryDict-like object (raises InvalidSearch)."""
    return parse_params(data, registry(), allow_cursor=allow_cursor)


# -- the engine ---------------------------------------------------------------------------

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


def _guard(call: Callable[[], T]) -> T:
    """Run an engine call, mapping failures to InvalidSearch (400) or SearchUnavailable."""
    try:
        return call()
    except BadRequestError as exc:
        if about_the_index(exc.body):  # a closed index: not the visitor's words
            raise SearchUnavailable(f"the search index cannot be searched ({exc})") from exc
        raise _rejected(exc) from None
    except NotFoundError as exc:
        raise SearchUnavailable(f"the search index is missing ({exc})") from exc
    except (ESConnectionError, TransportError, ApiError) as exc:
        raise SearchUnavailable(str(exc)) from exc


# A search some shards did not answer is asked once more after this many seconds, then
# refused. When a node dies, its shards' other copies take over within moments; a partial
# answer in the meantime has wrong counts and missing hits, and would be cached as whole.
PARTIAL_RETRY_DELAY = 0.1


def _whole(call: Callable[[], Any]) -> Any:
    """An engine call's answer (:func:`_guard`) from every shard: a partial one is asked
    again once, and if still partial, the search is unavailable (503) rather than wrong."""
    for attempt in range(2):
        response = _guard(call)
        failed = query.failed_shards(response)
        if not failed:
            return response
        logger.warning("%s shard(s) did not answer a search (try %d of 2)", failed, attempt + 1)
        if attempt == 0:
            time.sleep(PARTIAL_RETRY_DELAY)
    raise SearchUnavailable(f"{failed} shard(s) of the search index did not answer")


def _rejected(reason: object) -> InvalidSearch:
    logger.warning("search engine rejected a query: %s", reason)
    return InvalidSearch("This search could not be processed; try fewer or simpler words.", "q")


def _run_all(bodies: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One search request (:func:`_run`), or a browse's two (:meth:`Plan.summary_bodies`)
    sent together in one msearch and answered as one (:func:`search.query.merged`)."""
    if len(bodies) == 1:
        return _run(bodies[0])
    searches = query.msearch_searches(bodies)
    responses = _whole(lambda: _es().msearch(index=read_alias(), searches=searches))["responses"]
    for response in responses:
        if "error" in response:
            status, error = response.get("status"), response["error"]
            if status == 400 and not about_the_index(error):
                raise _rejected(error)
            raise SearchUnavailable(f"a search of an msearch failed ({status}): {error}")
    hits, counts = responses
    return query.merged(hits, counts)


def _run(body: dict[str, Any]) -> dict[str, Any]:
    cache = query.request_cache(body)
    return _whole(lambda: _es().search(index=read_alias(), body=body, request_cache=cache))


def _count(body: dict[str, Any]) -> int:
    return _whole(lambda: _es().count(index=read_alias(), body=body))["count"]


# -- a search -----------------------------------------------------------------------------


@dataclass
class Plan:
    """Everything a search needs, worked out once from its parameters."""

    params: SearchParams
    facets: list[FacetKind]  # the facets to count
    by_name: dict[str, FacetKind]  # every facet of the filters and of ``facets``
    clauses: dict[str, dict[str, Any]]  # filter clause per filtered facet
    variants: list[str]  # the free words' synonym expansions
    meaning_text: str | None = None  # the words whose meaning ranks too (search.meaning)
    pins: dict[int, str] = field(default_factory=dict)  # editors' picks for q: id -> label

    @cached_property
    def vector(self) -> list[float] | None:
        """The query's meaning, embedded only when the engine is asked (a search answered
        from the cache needs none)."""
        return meaning.embed([self.meaning_text])[0] if self.meaning_text else None

    def ranked(self, mode: str = "exact", *, scored: bool = True) -> dict[str, Any]:
        """The query in ``mode``; ``scored=False`` (highlighting and counting), or a sort
        other than relevance, leaves the scoring out where it can (the meaning; a browse
        is ``match_all``)."""
        scored = scored and self.params.sort == "relevance"
        vector = self.vector if scored else None
        return query.ranked_query(
            self.params.q,
            self.variants,
            mode=mode,
            vector=vector,
            scored=scored,
            pins=list(self.pins),
        )

    def summary_name(self) -> str:
        names = [f.name for f in self.facets]
        pins = list(self.pins)  # a promotion changes the results, counts included
        labels = vocabulary_version()  # the facet values' labels are kept with the counts
        return cache.digest(self.params.cache_key_parts(), names, self.variants, pins, labels)

    def page_name(self) -> str:
        params = self.params
        cursor = list(params.cursor) if params.cursor is not None else None
        spec = [params.sort, params.page, params.page_size, cursor]
        return f"{self.summary_name()}:page:{cache.digest(spec)[:16]}"

    @cached_property
    def aggregations(self) -> dict[str, Any]:
        """Every shown facet's counts, and the matches before the filters (``aggs``)."""
        aggs = query.facet_aggregations(self.facets, self.params.filters, self.clauses)
        aggs.update(query.matched_aggregation(self.clauses, list(self.pins)))
        return aggs

    def summary_bodies(self, mode: str) -> list[dict[str, Any]]:
        """What a search the summary cache does not have sends, in ``mode``: its
        :meth:`summary_body`, or for a browse ranked by relevance two requests sent
        together, its page of hits (scored) and its counts (``match_all``, which lets
        Elasticsearch count from the index: :func:`search.query.facet_aggregations`).

        Measured at a million packages (``took``, cache cleared, median of 5): a browse of
        everything 136 ms as one request, 57 + 10 as two; ``section=utils`` 35, 8 + 9;
        ``tag.scope=utility`` 51, 9 + 13."""
        if self.params.q or self.params.sort != "relevance" or not self.aggregations:
            return [self.summary_body(mode)]
        counts = query.counts_body(self.ranked(mode, scored=False), self.clauses)
        counts["aggs"] = self.aggregations
        return [self.hits_body(mode=mode, count=False), counts]

    def summary_body(self, mode: str) -> dict[str, Any]:
        """The request of a search the summary cache does not have, in ``mode``: a page of
        hits, the exact total, the facets' counts and the matches before the filters. In
        "exact" mode it is all a cold search must ask (but a browse ranked by relevance:
        :meth:`summary_bodies`, which ``bench.search``'s ``engine`` phase sends alone, the
        floor of a cold search)."""
        body = self.hits_body(mode=mode, count=True)
        if self.aggregations:
            body["aggs"] = self.aggregations
        return body

    def hits_body(self, *, mode: str, count: bool, explain: bool = False) -> dict[str, Any]:
        params = self.params
        highlighted = None
        if params.q:
            # Highlight the exact words (and phrases) only. For every hit and highlighted
            # field, the unified highlighter builds a Levenshtein automaton for every fuzzy
            # term of the query, which made highlighting most of a search's time.
            highlighted = query.highlight(self.ranked(scored=False) if mode != "exact" else None)
        return query.hits_body(
            self.ranked(mode),
            self.clauses,
            sort=params.sort,
            size=params.page_hits,
            offset=params.offset,
            cursor=params.cursor,
            count=count,
            highlighted=highlighted,
            explain=explain,
        )


def plan(params: SearchParams, *, with_facets: bool = True) -> Plan:
    """What a search needs (its facets, filters, synonyms, pins); the facets and curation
    are read from PostgreSQL (kept per process a while): a failure there is the search
    being unavailable (503), as the engine's would be."""
    try:
        return _plan(params, with_facets=with_facets)
    except DatabaseError as exc:
        raise SearchUnavailable(f"the catalog database failed ({exc})") from exc


def _plan(params: SearchParams, *, with_facets: bool) -> Plan:
    facets = registry()
    shown = facets.sidebar(params.filters) if with_facets else []
    by_name: dict[str, FacetKind] = {f.name: f for f in shown}
    for name in params.filters:
        facet = by_name.get(name) or facets.get(name)
        if facet is not None:
            by_name[name] = facet
    free = query.split_query(params.q)[0]
    # A generic word counts: "backup tool" is a need, whose meaning ranks too.
    significant, generic = query.words_of(free)
    uses_meaning = params.sort == "relevance" and meaning.applies([*significant, *generic])
    return Plan(
        params=params,
        facets=shown,
        by_name=by_name,
        clauses=query.filter_clauses(params.filters, by_name),
        variants=curation.expansions(free) if free else [],
        meaning_text=free if uses_meaning else None,
        pins=dict(curation.promotions_for(params.q)) if params.q else {},
    )


def search(
    params: SearchParams | str, *, with_facets: bool = True, explain: bool = False
) -> SearchResult:
    """Run a search; raises InvalidSearch (bad input) or SearchUnavailable (engine down).

    ``params`` may be plain query text for the common case (``search("vim")``). ``explain``
    (staff only: "why this rank") asks the engine to explain every hit's score, bypassing
    the cache."""
    if isinstance(params, str):
        params = SearchParams(q=params)
    work = plan(params, with_facets=with_facets)
    use_cache = with_facets and bool(work.facets) and not explain
    names = [work.summary_name()] + ([work.page_name()] if settings.SEARCH_PAGE_CACHE else [])
    found = cache.lookup(live_index(), names) if use_cache else cache.Found.unusable()
    page_key = found.key(1) if len(names) > 1 else None
    summary, page = found.value(0), found.value(1) if len(names) > 1 else None
    facets_cached = summary is not None
    fresh: dict[str, Any] | None = None  # a page computed with the summary
    if summary is None:
        computed: dict[str, Any] = {}

        def summarise() -> tuple[Summary, dict[str | None, Any]]:
            response, value = _search_and_summarise(work)
            computed["page"] = _page_of(response)
            return value, {page_key: computed["page"]}  # kept with the summary

        summary, facets_cached = cache.remember(found.key(0), summarise)
        fresh = computed.get("page")  # None: another request's summary was used
    hits_cached = fresh is None and facets_cached and page is not None
    if fresh is not None:
        page = fresh
    if page is None or explain:
        page = _page_of(_run(work.hits_body(mode=summary.mode, count=False, explain=explain)))
        cache.put(page_key, page)
    return _result(work, summary, page, facets_cached=facets_cached, hits_cached=hits_cached)


def _page_of(response: dict[str, Any]) -> dict[str, Any]:
    """What the page cache keeps of a response: its hits and how long they took."""
    return {"hits": {"hits": response["hits"]["hits"]}, "took": response.get("took", 0)}


def _result(
    work: Plan, summary: Summary, page: dict[str, Any], *, facets_cached: bool, hits_cached: bool
) -> SearchResult:
    params = work.params
    raw_hits = page["hits"]["hits"]
    first_page = params.page == 1 and params.cursor is None
    result = SearchResult(
        params=params,
        total=summary.total,
        hits=[hit_from(h) for h in raw_hits],
        facets=summary.facets,
        took_ms=0 if hits_cached else page.get("took", 0),
        facets_cached=facets_cached,
        hits_cached=hits_cached,
        suggestion=summary.suggestion if first_page else None,
        max_window=MAX_RESULT_WINDOW,
        selected=_selected(work),
        mode=summary.mode,
    )
    # A page by number knows where it ends: one ending at the last hit gives no cursor. (A
    # page by cursor does not know its offset: a full one may lead to an empty page.)
    last = params.cursor is None and params.offset + len(raw_hits) >= summary.total
    if len(raw_hits) == params.page_hits and raw_hits and "sort" in raw_hits[-1] and not last:
        result.next_cursor = encode_cursor(raw_hits[-1]["sort"])
    if params.sort == "relevance":  # pinned first: labelled (query.pinned_first)
        for hit in result.hits:
            hit.promoted = work.pins.get(hit.id)
    return result


def _selected(work: Plan) -> list[Selected]:
    return [
        Selected(name, facet.label, value, facet.label_of(value))
        for name, values in work.params.filters.items()
        if (facet := work.by_name.get(name)) is not None
        for value in values
    ]


def _search_and_summarise(work: Plan) -> tuple[dict[str, Any], Summary]:
    """Search without the summary cache: the response and its summary."""
    params = work.params

    def run(mode: str) -> tuple[int, int, dict[str, Any]]:
        response = _run_all(work.summary_bodies(mode))
        return *query.totals(response), response

    mode, total, matched, response = _fallbacks(params.q, run)
    suggestion = did_you_mean(work, total) if params.q and matched < FEW_HITS else None
    return response, Summary(
        total=total,
        mode=mode,
        suggestion=suggestion,
        facets=_read_facets(work, response.get("aggregations", {})),
    )


def _read_facets(work: Plan, aggregations: Mapping[str, Any]) -> list[Facet]:
    groups = query.group_of(work.facets, work.clauses)
    shown = []
    for facet in work.facets:
        group = query.group_response(aggregations, groups[facet.name])
        values = facet.read(group, work.params.filters.get(facet.name, ()))
        if values:
            more = facet.has_more(group)
            shown.append(Facet(facet.name, facet.label, values, facet.searchable, more))
    return shown


def _fallbacks(q: str, run: Callable[[str], tuple[int, int, T]]) -> tuple[str, int, int, T]:
    """Run a search in the first mode whose words find enough: ``run("exact")``; when its
    words match fewer than ``FUZZY_BELOW`` packages (before any filter: a filter that
    leaves few is no sign of a typo) and ``q`` has free words, ``run("fuzzy")`` (typos
    forgiven, at a lower weight), kept if it shows more hits (or as many and matches more);
    when the words still match nothing and ``q`` has several significant words,
    ``run("relaxed")`` (any one of them). ``run`` returns (hits shown, packages matched
    before the filters, anything); returns the mode used and what its ``run`` returned.

    Measured on the benchmark's mix (600 searches, 247 filtered): deciding on the hits
    shown sent 207 searches to a second, typo-tolerant request (then 8.3 ms of
    Elasticsearch CPU each, 6.3 since), 88 of them only because a filter left fewer than 5
    hits: 1.69 -> 1.29 Elasticsearch requests per cold search."""
    mode, (shown, matched, outcome) = "exact", run("exact")
    if matched >= FUZZY_BELOW or not query.has_free_words(q):
        return mode, shown, matched, outcome
    fuzzy = run("fuzzy")
    if (fuzzy[0], fuzzy[1]) > (shown, matched):
        mode, (shown, matched, outcome) = "fuzzy", fuzzy
    if matched == 0 and len(query.words_of(query.split_query(q)[0])[0]) > 1:
        relaxed = run("relaxed")
        if (relaxed[0], relaxed[1]) > (shown, matched):
            mode, (shown, matched, outcome) = "relaxed", relaxed
    return mode, shown, matched, outcome


def did_you_mean(work: Plan, total: int) -> str | None:
    """A corrected query that finds more, or None. Only ever suggests a query with hits."""
    free, phrases = query.split_query(work.params.q)
    if not free or phrases:
        return None
    response = _whole(lambda: _es().search(index=read_alias(), body=query.did_you_mean_body(free)))
    corrected = query.corrected_text(free, response)
    if corrected is None:
        return None
    found = _count({"query": query.filtered(query.ranked_query(corrected), work.clauses)})
    return corrected if found > total else None


# -- autocomplete and facet values ---------------------------------------------------------


@dataclass
class Suggestions:
    """Autocomplete: searches people made that start with the input, and packages."""

    queries: list[str]
    packages: list[dict[str, Any]]


def suggest(prefix: str, limit: int = 8, queries: int = 4) -> Suggestions:
    """What completes ``prefix`` (autocomplete): popular searches starting with it (from
    the analytics), and packages (:func:`search.query.suggest_body`), most depended-on first.

    Autocomplete requests repeat a lot (everyone types "f", "fi", "fir"): the answers are
    kept per index generation (as fresh as the facet counts), and Elasticsearch's shard
    request cache answers repeats the cache cannot (a write in progress)."""
    prefix = " ".join(prefix.split())[:100]
    if not prefix:
        return Suggestions([], [])
    found = cache.lookup(live_index(), [cache.digest("suggest", limit, queries, prefix.lower())])
    cached = found.value(0)
    if cached is not None:
        return cached

    # No stampede lock (``cache.remember``): a repeated autocomplete costs Elasticsearch
    # about 1 ms, mostly from its request cache, less than taking and dropping a lock (two
    # Redis round trips of the six a cold answer made).
    body = query.suggest_body(prefix, limit)
    response = _whole(lambda: _es().search(index=read_alias(), body=body, request_cache=True))
    packages = [
        {"name": h["_source"]["name"], "summary": h["_source"].get("summary", "")}
        for h in response["hits"]["hits"]
    ]
    # One more than wanted: the input itself, if people searched it, is not offered.
    typed = prefix.lower()
    candidates = analytics.popular_queries(prefix, queries + 1)
    answer = Suggestions([q for q in candidates if q != typed][:queries], packages)
    cache.put(found.key(0), answer)
    return answer


def popular_searches(limit: int = 6) -> list[str]:
    """What people searched for most lately (and found something): a way forward from a
    search that found nothing."""
    return analytics.popular_queries("", limit)


FACET_VALUES_LIMIT = 100


def facet_values(
    name: str, params: SearchParams, contains: str = "", limit: int = 20
) -> list[FacetValue]:
    """Values of one facet under the current search (minus its own filter), optionally only
    those containing ``contains`` (case-insensitive): the search box of long facets."""
    facet = registry().get(name)
    if facet is None or isinstance(facet, RangeFacet):
        raise InvalidSearch(f"{name!r} is not a facet whose values can be searched.", "facet")
    work = plan(params)
    chosen = params.filters.get(name, ())
    body = query.facet_values_body(
        facet,
        work.ranked(_search_mode(work), scored=False),
        work.clauses,
        contains[:50],
        limit,
        chosen,
    )
    aggregations = _run(body)["aggregations"]
    selected = set(chosen)
    rows = []
    for bucket in aggregations["values"]["buckets"]:
        value = facet.value_of(bucket["key"])
        if not facet.offers(value) and value not in selected:
            continue  # a placeholder, as in the sidebar
        rows.append(
            FacetValue(value, facet.label_of(value), bucket["doc_count"], value in selected)
        )
    # The selected values the list left out, with their counts: the page replaces the
    # facet's checkboxes with this list, and a selected one missing would drop its filter.
    counts = {
        facet.value_of(b["key"]): b["doc_count"]
        for b in aggregations.get("selected", {}).get("buckets", [])
    }
    listed = {row.value for row in rows}
    for value in chosen:
        if value not in listed:
            rows.append(FacetValue(value, facet.label_of(value), counts.get(value, 0), True))
    return rows


def _search_mode(work: Plan) -> str:
    """The mode :func:`search` with these parameters ends up in (from the summary cache
    when it has the search, else by counting as the search would)."""
    if not query.has_free_words(work.params.q):
        return "exact"
    summary = cache.lookup(live_index(), [work.summary_name()]).value(0)
    if summary is not None:
        return summary.mode

    def count(mode: str) -> tuple[int, int, None]:
        body = query.counts_body(work.ranked(mode, scored=False), work.clauses, list(work.pins))
        return *query.totals(_run(body)), None

    return _fallbacks(work.params.q, count)[0]


# -- HTTP validators -------------------------------------------------------------------------

# Part of every search answer's validator: bump when what a page or API answer shows changes
# for the same results (a template, a JSON field), so shared caches do not keep old shapes.
ANSWER_VERSION = 1


# Around a web request's validator and search: one generation snapshot for both.
request_scope = freshness.one_snapshot


def validator(request: Any, *args: Any, **kwargs: Any) -> str | None:
    """The ETag of a search answer (page, fragment or API) for ``request``: the live index,
    its generation and the request's path and parameters, normalised. None when none can
    be given: an index write is in progress (what it wrote may already be visible) or the
    index or Redis cannot be reached. An edit, once searchable, moves the generation on,
    and with it every validator; so does the editors' curation (``curation.version``)."""
    if cache.breaker.open:  # Redis failed lately: no validator, as the search is uncached
        return None
    started = time.monotonic()
    try:
        generation = freshness.snapshot()
        index = live_index()
        curated = curation.version()  # an editor's promotion or synonym changes answers too
        labels = vocabulary_version()  # and a tag's label (the facets show it)
    except stores.REDIS_ERRORS as exc:
        cache.breaker.trip(exc, waited=time.monotonic() - started)
        return None
    except (SearchUnavailable, DatabaseError):
        return None
    if generation is None:
        return None
    parameters = sorted((k, sorted(v)) for k, v in request.GET.lists())
    return cache.digest(
        "answer", ANSWER_VERSION, index, generation, curated, labels, request.path, parameters
    )


# -- analytics and editors ------------------------------------------------------------------


def over_rate_limit(request: Any) -> tuple[int, str] | None:
    """Count a search of this client; (seconds to wait, message) once it is over the limit."""
    retry = ratelimit.retry_after(request)
    return None if retry is None else (retry, ratelimit.message(request, retry))


def log_search(request: Any, params: SearchParams, total: int) -> None:
    """Record a visitor's first page of results for the analytics (never raises). A
    filtered search's total says nothing about its words (``firefox-esr`` in the games
    section finds nothing, as it should): it is logged as a search, without a total, so
    "Queries that found nothing" lists only words that found nothing."""
    if params.page == 1 and params.cursor is None:
        found = None if params.filters else total
        analytics.log_search(params.q, found, analytics.visitor_key(request))


@dataclass
class DocumentState:
    exists: bool
    version: int | None
    indexed_at: str | None
    source: dict[str, Any] | None
    error: str | None = None


def document_state(pk: int) -> DocumentState:
    """A package's document as the index holds it now (a real-time GET), for editors."""
    try:
        doc = client().options(request_timeout=2).get(index=read_alias(), id=pk)
    except NotFoundError:
        return DocumentState(False, None, None, None)
    except (ApiError, TransportError) as exc:
        return DocumentState(False, None, None, None, error=shorten(str(exc), 200))
    source = doc.get("_source", {})
    return DocumentState(True, doc.get("_version"), source.get("indexed_at"), source)
