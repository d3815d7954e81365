"""The JSON API: ``/api/search``, ``/api/suggest``, ``/api/facets/<facet>``.

Errors are JSON too: 400 ``{"error": {"message", "param"}}`` for bad input, 503 when the
search engine is unavailable. Nothing here writes; responses are cacheable for a few seconds.
"""

from __future__ import annotations

from typing import Any

import orjson
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_safe

from search import analytics, service
from search import params as search_params
from search.ratelimit import rate_limited

SUGGEST_MAX = 100


def visitor_key(request: HttpRequest) -> str:
    """An opaque per-visitor key for merging as-you-type fragments (no IP is stored)."""
    import hashlib

    raw = request.META.get("REMOTE_ADDR", "") + request.META.get("HTTP_USER_AGENT", "")[:200]
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


class JsonResponse(HttpResponse):
    """A JSON response encoded with orjson (several times faster than the standard library
    for the search API's nested lists and dicts; the bodies hold only JSON types)."""

    def __init__(self, data: dict[str, Any], status: int = 200) -> None:
        super().__init__(orjson.dumps(data), content_type="application/json", status=status)


def _error(message: str, status: int, param: str | None = None) -> JsonResponse:
    body: dict[str, Any] = {"error": {"message": message}}
    if param:
        body["error"]["param"] = param
    return JsonResponse(body, status=status)


def _unavailable() -> JsonResponse:
    return _error("Search is temporarily unavailable; please try again shortly.", 503)


def _value_json(value: service.FacetValue) -> dict[str, Any]:
    # A plain dict: dataclasses.asdict() deep-copies and was a fifth of a search's CPU.
    return {
        "value": value.value,
        "label": value.label,
        "count": value.count,
        "selected": value.selected,
    }


def _facet_json(facet: service.Facet) -> dict[str, Any]:
    return {
        "name": facet.name,
        "label": facet.label,
        "searchable": facet.searchable,
        "values": [_value_json(v) for v in facet.values],
    }


@require_safe
@rate_limited
def search(request: HttpRequest) -> JsonResponse:
    try:
        parsed = search_params.parse(request.GET, allow_cursor=True)
        result = service.search(parsed)
    except search_params.InvalidSearch as exc:
        return _error(str(exc), 400, exc.param)
    except service.SearchUnavailable:
        return _unavailable()
    if parsed.page == 1 and parsed.cursor is None:
        analytics.log_search(parsed.q, result.total, visitor_key(request))
    return JsonResponse(
        {
            "query": parsed.q,
            "filters": {k: list(v) for k, v in parsed.filters.items()},
            "sort": parsed.sort,
            "total": result.total,
            "took_ms": result.took_ms,
            "page": parsed.page if parsed.cursor is None else None,
            "page_size": parsed.page_size,
            "next_cursor": result.next_cursor,
            "did_you_mean": result.suggestion,
            "facets_cached": result.facets_cached,
            "hits_cached": result.hits_cached,
            "hits": [
                {
                    "id": h.id,
                    "name": h.name,
                    "version": h.version,
                    "summary": h.summary,
                    "section": h.section,
                    "priority": h.priority,
                    "maintainer": h.maintainer,
                    "popularity": h.popularity,
                    "installed_size_kb": h.installed_size_kb,
                    "tags": h.tags,
                    "score": h.score,
                    "highlight": {k: str(v) for k, v in h.highlight.items()},
                    "url": f"/packages/{h.name}/",
                    "promoted": h.promoted,
                }
                for h in result.hits
            ],
            "facets": [_facet_json(f) for f in result.facets],
        }
    )


@require_safe
@rate_limited
def suggest(request: HttpRequest) -> JsonResponse:
    prefix = search_params.clean_text(request.GET.get("q", ""))
    if len(prefix) > SUGGEST_MAX:
        return _error(f"'q' is too long (at most {SUGGEST_MAX} characters).", 400, "q")
    try:
        suggestions = service.suggest(prefix)
    except search_params.InvalidSearch as exc:
        return _error(str(exc), 400, exc.param)
    except service.SearchUnavailable:
        return _unavailable()
    return JsonResponse({"query": prefix, "suggestions": suggestions})


@require_safe
@rate_limited
def facet_values(request: HttpRequest, facet: str) -> JsonResponse:
    query = request.GET.copy()
    contains = search_params.clean_text(query.pop("contains", [""])[0])[:50]
    try:
        parsed = search_params.parse(query)
        values = service.facet_values(facet, parsed, contains)
    except search_params.InvalidSearch as exc:
        return _error(str(exc), 400, exc.param)
    except service.SearchUnavailable:
        return _unavailable()
    return JsonResponse(
        {"facet": facet, "contains": contains, "values": [_value_json(v) for v in values]}
    )
