"""The search service: the only code that builds Elasticsearch queries.

Views (HTML) and the JSON API call :func:`search`; both get the same :class:`SearchResult`.
User text is never parsed as Lucene query syntax (``multi_match`` only), so no input can
raise a parse error in the engine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from elasticsearch import ApiError, TransportError
from elasticsearch.dsl import Q, Search

from search.indices import client, read_alias

MAX_QUERY_LENGTH = 200
PAGE_SIZE = 20
MAX_PAGE = 50

FACETS = {"section": "section"}


class SearchUnavailable(RuntimeError):
    """Elasticsearch cannot be reached or the index is missing."""


@dataclass
class Hit:
    id: int
    name: str
    summary: str
    section: str
    score: float | None
    highlight: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class FacetValue:
    value: str
    count: int
    selected: bool


@dataclass
class SearchResult:
    query: str
    total: int
    hits: list[Hit]
    facets: dict[str, list[FacetValue]]
    page: int
    took_ms: int


def search(
    query: str = "", filters: dict[str, list[str]] | None = None, page: int = 1
) -> SearchResult:
    """Full-text search with facet counts. ``filters`` maps facet name to selected values."""
    query = query.strip()[:MAX_QUERY_LENGTH]
    filters = {k: v for k, v in (filters or {}).items() if k in FACETS and v}
    page = max(1, min(page, MAX_PAGE))

    s = Search(using=client(), index=read_alias())
    if query:
        s = s.query(
            Q(
                "multi_match",
                query=query,
                fields=["name^4", "summary^2", "description", "maintainer"],
                type="best_fields",
            )
        )
    else:
        s = s.query(Q("match_all"))
    for facet, values in filters.items():
        s = s.post_filter("terms", **{FACETS[facet]: values})
    for facet, es_field in FACETS.items():
        s.aggs.bucket(facet, "terms", field=es_field, size=20)
    s = s.highlight(
        "summary",
        "description",
        encoder="html",
        pre_tags=["<mark>"],
        post_tags=["</mark>"],
        number_of_fragments=1,
        fragment_size=160,
    )
    s = s.source(["name", "summary", "section"])
    start = (page - 1) * PAGE_SIZE
    s = s[start : start + PAGE_SIZE]
    try:
        response = s.execute()
    except (ApiError, TransportError) as exc:
        raise SearchUnavailable(str(exc)) from exc

    hits = [
        Hit(
            id=int(h.meta.id),
            name=h.name,
            summary=getattr(h, "summary", ""),
            section=getattr(h, "section", ""),
            score=h.meta.score,
            highlight=_highlight(h),
        )
        for h in response
    ]
    facets = {
        facet: [
            FacetValue(b.key, b.doc_count, b.key in filters.get(facet, []))
            for b in getattr(response.aggregations, facet).buckets
        ]
        for facet in FACETS
    }
    return SearchResult(
        query=query,
        total=response.hits.total.value,
        hits=hits,
        facets=facets,
        page=page,
        took_ms=response.took,
    )


def _highlight(hit: Any) -> dict[str, list[str]]:
    meta_highlight = getattr(hit.meta, "highlight", None)
    if not meta_highlight:
        return {}
    return {k: list(v) for k, v in meta_highlight.to_dict().items()}
