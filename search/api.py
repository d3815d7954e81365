"""The JSON API: ``/api/search``, ``/api/suggest``, ``/api/facets/<facet>``.

Errors are JSON too: 400 ``{"error": {"message", "param"}}`` for bad input, 404 for a path
that is no endpoint, 405 (with ``Allow``) for a method other than GET or HEAD, 503 when the
search engine is unavailable. Nothing here writes; the shapes of the answers are in
``search.results``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import orjson
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt

from config.http_cache import cacheable
from search import openapi, results, service
from search.params import clean_text, facet_value_options
from search.ratelimit import rate_limited

SUGGEST_MAX = openapi.SUGGEST_MAX


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


SAFE_METHODS = ("GET", "HEAD")


def require_safe(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """GET and HEAD only, with a JSON 405 otherwise. Exempt from CSRF checks: nothing here
    writes, and a POST should hear "method not allowed", not the CSRF failure page."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.method not in SAFE_METHODS:
            response = _error(
                f"{request.method} is not allowed here; the API answers GET (and HEAD).", 405
            )
            response["Allow"] = ", ".join(SAFE_METHODS)
            return response
        return view(request, *args, **kwargs)

    return csrf_exempt(wrapper)


@csrf_exempt
def not_found(request: HttpRequest, path: str = "") -> JsonResponse:
    """Any other path under /api/."""
    return _error(
        f"There is no API endpoint at {request.path}; the endpoints are /api/search, "
        "/api/suggest and /api/facets/<facet>.",
        404,
    )


@require_safe
@rate_limited
@cacheable(service.validator, service.request_scope)
def search(request: HttpRequest) -> JsonResponse:
    try:
        parsed = service.parse(request.GET, allow_cursor=True)
        result = service.search(parsed)
    except service.InvalidSearch as exc:
        return _error(str(exc), 400, exc.param)
    except service.SearchUnavailable:
        return _unavailable()
    service.log_search(request, parsed, result.total)
    return JsonResponse(results.search_json(result))


@require_safe
@rate_limited
@cacheable(service.validator, service.request_scope)
def suggest(request: HttpRequest) -> JsonResponse:
    prefix = clean_text(request.GET.get("q", ""))
    if len(prefix) > SUGGEST_MAX:
        return _error(f"'q' is too long (at most {SUGGEST_MAX} characters).", 400, "q")
    try:
        suggestions = service.suggest(prefix)
    except service.InvalidSearch as exc:
        return _error(str(exc), 400, exc.param)
    except service.SearchUnavailable:
        return _unavailable()
    return JsonResponse(
        {"query": prefix, "queries": suggestions.queries, "suggestions": suggestions.packages}
    )


@require_safe
@rate_limited
@cacheable(service.validator, service.request_scope)
def facet_values(request: HttpRequest, facet: str) -> JsonResponse:
    query = request.GET.copy()
    for paging in ("sort", "page", "page_size", "cursor", "partial"):  # the hits', not the values'
        query.pop(paging, None)
    try:
        contains, limit = facet_value_options(query, service.FACET_VALUES_LIMIT)
        query.pop("contains", None)
        query.pop("limit", None)
        parsed = service.parse(query)
        values = service.facet_values(facet, parsed, contains, limit)
    except service.InvalidSearch as exc:
        return _error(str(exc), 400, exc.param)
    except service.SearchUnavailable:
        return _unavailable()
    return JsonResponse(
        {
            "facet": facet,
            "contains": contains,
            "values": [results.facet_value_json(v) for v in values],
        }
    )


@require_safe
def openapi_document(request: HttpRequest) -> JsonResponse:
    """The API's OpenAPI 3.1 description."""
    return JsonResponse(openapi.schema())


def _type_of(schema: dict[str, Any]) -> str:
    if "enum" in schema:
        return " | ".join(str(v) for v in schema["enum"])
    if schema.get("type") == "array":
        return f"{_type_of(schema['items'])} (repeatable)"
    if schema.get("type") == "object":  # parameters named like a pattern (tag facets)
        return f"{_type_of(schema['additionalProperties'])} (repeatable)"
    return str(schema.get("type", ""))


@require_safe
def docs(request: HttpRequest) -> HttpResponse:
    """The API described for people, from the same document."""
    document = openapi.schema()
    endpoints = []
    for path, operations in document["paths"].items():
        operation = operations["get"]
        endpoints.append(
            {
                "path": path,
                "summary": operation["summary"],
                "description": operation.get("description", ""),
                "parameters": [
                    {**p, "type": _type_of(p["schema"]), "description": p.get("description", "")}
                    for p in operation["parameters"]
                ],
                "responses": [(c, r["description"]) for c, r in operation["responses"].items()],
            }
        )
    context = {
        "info": document["info"],
        "version": document["openapi"],
        "endpoints": endpoints,
    }
    return render(request, "search/api_docs.html", context)
