"""The JSON API's contract: an OpenAPI 3.1 description, served at ``/api/openapi.json``.

Written by hand, from the same constants the API validates with (sorts, limits, the fixed
facets and their closed value sets), so the description cannot drift from the checks. The
tests validate it with openapi-spec-validator and run Schemathesis against the real API
with it (no 5xx; every answer matches the schema it promises). ``/api/docs`` shows it to
people.
"""

from __future__ import annotations

from typing import Any

from search.facets import FIXED, TAG_PREFIX, RangeFacet
from search.params import (
    DEFAULT_PAGE_SIZE,
    MAX_CONTAINS_LENGTH,
    MAX_PAGE_SIZE,
    MAX_QUERY_LENGTH,
    MAX_RESULT_WINDOW,
    MAX_VALUE_LENGTH,
    MAX_VALUES_PER_FACET,
    SORTS,
)

VERSION = "1.0.0"
SUGGEST_MAX = 100

_NULLABLE_STRING = {"type": ["string", "null"]}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _response(description: str, schema: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(schema)}}}


def _rate_limit_headers() -> dict[str, Any]:
    integer = {"schema": {"type": "integer", "minimum": 0}}
    return {
        "RateLimit-Limit": {"description": "Requests allowed per window.", **integer},
        "RateLimit-Remaining": {"description": "Requests left in this window.", **integer},
        "RateLimit-Reset": {"description": "Seconds until the window ends.", **integer},
    }


def _errors() -> dict[str, Any]:
    too_many = _response("Over the rate limit; wait `Retry-After` seconds.", "Error")
    too_many["headers"] = {
        "Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}},
        **_rate_limit_headers(),
    }
    return {
        "400": _response("A parameter is not acceptable; the message says why.", "Error"),
        "429": too_many,
        "503": _response("The search engine is unavailable; try again shortly.", "Error"),
    }


def _filter_parameters() -> list[dict[str, Any]]:
    params = []
    for name, facet in FIXED.items():
        values = list(facet.choices) if facet.choices else None
        item: dict[str, Any] = {"type": "string", "minLength": 1, "maxLength": MAX_VALUE_LENGTH}
        if values:
            item = {"type": "string", "enum": values}
        kind = "ranges" if isinstance(facet, RangeFacet) else "values"
        params.append(
            {
                "name": name,
                "in": "query",
                "required": False,
                "description": f"{facet.label}: any of these {kind} (repeat the parameter; "
                f"at most {MAX_VALUES_PER_FACET}). Values of different filters must all hold.",
                "schema": {"type": "array", "items": item, "maxItems": MAX_VALUES_PER_FACET},
                "style": "form",
                "explode": True,
            }
        )
    return [*params, _tag_filter_parameter()]


def _tag_filter_parameter() -> dict[str, Any]:
    """The debtags facets, one parameter each (``tag.interface=x11``). Which facets exist
    is the catalog's data, not the API's shape, so they are described by their names'
    pattern: an exploded form object, OpenAPI's way to say "query parameters named like
    this" (Schemathesis sends such parameters too)."""
    return {
        "name": f"{TAG_PREFIX}<facet>",
        "in": "query",
        "required": False,
        "description": f"Debtags facets, `{TAG_PREFIX}<facet>=<value>` (e.g. "
        f"`{TAG_PREFIX}interface=x11`, `{TAG_PREFIX}use=editing`): any of these values "
        f"(repeat the parameter; at most {MAX_VALUES_PER_FACET}). The facets and their "
        "values are those the search answer's `facets` list (`/api/facets/tag.<facet>` "
        "lists every value); an unknown facet is a 400.",
        "schema": {
            "type": "object",
            "propertyNames": {"pattern": f"^{TAG_PREFIX.replace('.', '[.]')}[a-z0-9][a-z0-9-]*$"},
            "additionalProperties": {
                "type": "string",
                "minLength": 1,
                "maxLength": MAX_VALUE_LENGTH,
            },
        },
        "style": "form",
        "explode": True,
    }


def _search_parameters() -> list[dict[str, Any]]:
    return [*_what_parameters(), *_paging_parameters()]


def _what_parameters() -> list[dict[str, Any]]:
    """What a search is: its words and filters (also what a facet's values are counted
    under)."""
    return [
        {
            "name": "q",
            "in": "query",
            "description": 'Words to search for; "quoted phrases" must appear as written. '
            "Empty: browse everything.",
            "schema": {"type": "string", "maxLength": MAX_QUERY_LENGTH},
        },
        *_filter_parameters(),
    ]


def _paging_parameters() -> list[dict[str, Any]]:
    """How a search's hits are ordered and paged."""
    return [
        {
            "name": "sort",
            "in": "query",
            "schema": {"type": "string", "enum": list(SORTS), "default": "relevance"},
        },
        {
            "name": "page",
            "in": "query",
            "description": "Page number; a page must start within the first "
            f"{MAX_RESULT_WINDOW} results ((page - 1) x page_size < {MAX_RESULT_WINDOW}; the "
            "last one may be partial). Use `cursor` to go further.",
            "schema": {"type": "integer", "minimum": 1, "maximum": MAX_RESULT_WINDOW},
        },
        {
            "name": "page_size",
            "in": "query",
            "schema": {
                "type": "integer",
                "minimum": 1,
                "maximum": MAX_PAGE_SIZE,
                "default": DEFAULT_PAGE_SIZE,
            },
        },
    ]


def _schemas() -> dict[str, Any]:
    return {
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {
                "error": {
                    "type": "object",
                    "required": ["message"],
                    "properties": {
                        "message": {"type": "string"},
                        "param": {"type": "string", "description": "The parameter at fault."},
                    },
                }
            },
        },
        "FacetValue": {
            "type": "object",
            "required": ["value", "label", "count", "selected"],
            "properties": {
                "value": {"type": "string", "description": "What to send as the filter."},
                "label": {"type": "string", "description": "What to show."},
                "count": {"type": "integer", "minimum": 0},
                "selected": {"type": "boolean"},
            },
        },
        "Facet": {
            "type": "object",
            "required": ["name", "label", "searchable", "values"],
            "properties": {
                "name": {"type": "string", "description": "The filter's parameter name."},
                "label": {"type": "string"},
                "searchable": {
                    "type": "boolean",
                    "description": "Long facet: /api/facets/{name}?contains= finds values.",
                },
                "more": {
                    "type": "boolean",
                    "description": "More values than listed may exist: /api/facets/{name}"
                    "?limit= lists them.",
                },
                "values": {"type": "array", "items": _ref("FacetValue")},
            },
        },
        "Hit": {
            "type": "object",
            "required": ["id", "name", "version", "summary", "section", "url", "tags"],
            "properties": {
                "id": {"type": "integer"},
                "name": {"type": "string"},
                "version": {"type": "string"},
                "summary": {"type": "string"},
                "section": {"type": "string"},
                "priority": {"type": "string"},
                "maintainer": {"type": "string"},
                "reverse_dependencies": {
                    "type": "integer",
                    "minimum": 0,
                    "description": "How many packages depend on this one (the `popularity` "
                    "sort orders by it).",
                },
                "popularity": {
                    "type": "integer",
                    "minimum": 0,
                    "deprecated": True,
                    "description": "The same number as `reverse_dependencies` (old name).",
                },
                "installed_size_kb": {"type": ["integer", "null"]},
                "tags": {"type": "array", "items": {"type": "string"}},
                "score": {
                    "type": ["number", "null"],
                    "description": "The relevance score (null when sorting by anything else);"
                    " only comparable within one answer.",
                },
                "highlight": {
                    "type": "object",
                    "description": "HTML fragments (escaped text; matches in <mark>) by "
                    "field: name, summary, description.",
                    "additionalProperties": {"type": "string"},
                },
                "url": {"type": "string", "description": "The package's page."},
                "promoted": {
                    **_NULLABLE_STRING,
                    "description": "The label, when an editor pinned this package to the query.",
                },
            },
        },
        "SearchResult": {
            "type": "object",
            "required": ["query", "filters", "sort", "total", "page_size", "hits", "facets"],
            "properties": {
                "query": {"type": "string"},
                "filters": {
                    "type": "object",
                    "additionalProperties": {"type": "array", "items": {"type": "string"}},
                },
                "sort": {"type": "string", "enum": list(SORTS)},
                "total": {"type": "integer", "minimum": 0},
                "took_ms": {
                    "type": "integer",
                    "minimum": 0,
                    "description": "The engine's time for the hits; 0 when they came from "
                    "the cache.",
                },
                "page": {"type": ["integer", "null"], "description": "Null with a cursor."},
                "page_size": {"type": "integer"},
                "next_cursor": {
                    **_NULLABLE_STRING,
                    "description": "Send as `cursor` for the next page (past the paging "
                    "window too); null on the last page (a full page reached by cursor may be "
                    "followed by an empty one).",
                },
                "did_you_mean": {
                    **_NULLABLE_STRING,
                    "description": "A corrected query that finds more.",
                },
                "facets_cached": {
                    "type": "boolean",
                    "description": "The counts came from the cache (diagnostic).",
                },
                "hits_cached": {
                    "type": "boolean",
                    "description": "The hits came from the cache (diagnostic).",
                },
                "hits": {"type": "array", "items": _ref("Hit")},
                "facets": {"type": "array", "items": _ref("Facet")},
            },
        },
        "Suggestions": {
            "type": "object",
            "required": ["query", "queries", "suggestions"],
            "properties": {
                "query": {"type": "string"},
                "queries": {
                    "type": "array",
                    "items": {"type": "string"},
                    "description": "Searches people made that start with the input, the "
                    "most frequent first.",
                },
                "suggestions": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["name", "summary"],
                        "properties": {"name": {"type": "string"}, "summary": {"type": "string"}},
                    },
                },
            },
        },
        "FacetValues": {
            "type": "object",
            "required": ["facet", "contains", "values"],
            "properties": {
                "facet": {"type": "string"},
                "contains": {"type": "string"},
                "values": {"type": "array", "items": _ref("FacetValue")},
            },
        },
    }


_VALIDATOR_HEADERS = {
    "ETag": {
        "description": 'The answer\'s weak validator (`W/"..."`; anonymous requests; none '
        "while an index write is in progress): send it back as `If-None-Match`.",
        "schema": {"type": "string"},
    },
    "Cache-Control": {"schema": {"type": "string"}},
}


def _ok(description: str, schema: str) -> dict[str, Any]:
    answer = _response(description, schema)
    answer["headers"] = {**_rate_limit_headers(), **_VALIDATOR_HEADERS}
    return answer


def _not_modified() -> dict[str, Any]:
    return {
        "description": "The answer whose `ETag` was sent as `If-None-Match` is still current "
        "(the index has not changed since): no body.",
        "headers": _VALIDATOR_HEADERS,
    }


def schema() -> dict[str, Any]:
    """The OpenAPI 3.1 document."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Debian package search API",
            "version": VERSION,
            "description": "Read-only search over the catalog: the same results, facets "
            "and suggestions as the site. Every endpoint answers GET (and HEAD); other "
            "methods get 405, unknown paths under /api/ a JSON 404. Searches carry "
            "RateLimit-* headers while the rate limit is on. Anonymous answers carry an "
            "`ETag`: send it as `If-None-Match` and an unchanged answer is a 304.",
            "license": {"name": "MIT", "identifier": "MIT"},
        },
        "paths": {
            "/api/search": {
                "get": {
                    "operationId": "search",
                    "summary": "Search packages",
                    "description": "Relevance-ranked hits with highlights, the total and "
                    "facet counts (each facet counted under every filter but its own). "
                    "Tag facets are filtered as `tag.<facet>` (e.g. `tag.interface=x11`).",
                    "parameters": [
                        *_search_parameters(),
                        {
                            "name": "cursor",
                            "in": "query",
                            "description": "`next_cursor` of the previous answer.",
                            "schema": {"type": "string", "maxLength": 500},
                        },
                    ],
                    "responses": {
                        "200": _ok("A page of results.", "SearchResult"),
                        "304": _not_modified(),
                        **_errors(),
                    },
                }
            },
            "/api/suggest": {
                "get": {
                    "operationId": "suggest",
                    "summary": "Complete what is being typed: searches and packages",
                    "parameters": [
                        {
                            "name": "q",
                            "in": "query",
                            "description": "What has been typed.",
                            "schema": {"type": "string", "maxLength": SUGGEST_MAX},
                        }
                    ],
                    "responses": {
                        "200": _ok("Up to 8 packages.", "Suggestions"),
                        "304": _not_modified(),
                        **_errors(),
                    },
                }
            },
            "/api/facets/{facet}": {
                "get": {
                    "operationId": "facetValues",
                    "summary": "Values of one facet under a search",
                    "description": "For long facets: the values containing `contains`, "
                    "counted under the search's other filters, and the selected ones. The "
                    "hits' sort and paging parameters are ignored.",
                    "parameters": [
                        {
                            "name": "facet",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string", "minLength": 1, "maxLength": 100},
                        },
                        {
                            "name": "contains",
                            "in": "query",
                            "schema": {"type": "string", "maxLength": MAX_CONTAINS_LENGTH},
                        },
                        {
                            "name": "limit",
                            "in": "query",
                            "description": "How many values, most frequent first.",
                            "schema": {"type": "integer", "minimum": 1, "maximum": 100},
                        },
                        *_what_parameters(),
                    ],
                    "responses": {
                        "200": _ok("Matching values.", "FacetValues"),
                        "304": _not_modified(),
                        **_errors(),
                    },
                }
            },
        },
        "components": {"schemas": _schemas()},
    }
