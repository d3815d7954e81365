"""What a search returns, and its shapes: hits, facets, the cached summary, the API's JSON.

Everything here is plain data built from Elasticsearch responses (no engine calls, no
Django models), so the page, the JSON API and the cache share one definition.

Highlights are escaped before our own ``<mark>`` tags are put in (the engine marks matches
with private-use sentinels, ``HL_PRE``/``HL_POST``): no catalog or user text can inject
markup.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from portal.links import package_url

if TYPE_CHECKING:  # only for annotations: params imports facets, which imports this module
    from search.params import SearchParams

HL_PRE, HL_POST = "\ue000", "\ue001"
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


@dataclass
class FacetValue:
    value: str
    label: str
    count: int
    selected: bool
    url: str = ""  # the page's link that toggles this value (set by the page view)


@dataclass
class Facet:
    name: str
    label: str
    values: list[FacetValue]
    searchable: bool
    more: bool = False  # more values than listed may exist (/api/facets/<name> lists them)

    @property
    def selected(self) -> list[FacetValue]:
        return [v for v in self.values if v.selected]


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
    # "Why this rank", for staff: (depth, value, what) of the engine's score explanation.
    explanation: list[tuple[int, float, str]] = field(default_factory=list)


@dataclass
class Summary:
    """What a search's query and filters determine, whatever the page and sort: computed
    once per index generation and cached (``search.cache``)."""

    total: int
    mode: str  # "exact", or how the search was widened to find anything: "fuzzy", "relaxed"
    suggestion: str | None  # "did you mean"
    facets: list[Facet]


@dataclass
class Selected:
    """A filter value the search applies, with its labels (the page shows it as a chip)."""

    facet: str
    facet_label: str
    value: str
    label: str


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
    max_window: int = 1000
    selected: list[Selected] = field(default_factory=list)
    # "exact"; "fuzzy" when typos were forgiven; "relaxed" when not every word is matched
    mode: str = "exact"

    @property
    def pages(self) -> int:
        shown = min(self.total, self.max_window)
        return max(1, -(-shown // self.params.page_size))


def safe_highlight(fragment: str) -> SafeString:
    """Escape everything, then turn only our own sentinels into <mark> tags."""
    text = escape(fragment)
    return mark_safe(text.replace(HL_PRE, "<mark>").replace(HL_POST, "</mark>"))


def hit_from(raw: dict[str, Any]) -> Hit:
    """A hit from an Elasticsearch hit (or an mget document)."""
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
        explanation=explanation_lines(raw["_explanation"]) if "_explanation" in raw else [],
    )


EXPLAIN_DEPTH = 5


def explanation_lines(node: dict[str, Any], depth: int = 0) -> list[tuple[int, float, str]]:
    """An engine score explanation as indented lines, the parts that contribute only (a
    zero, or a factor of exactly 1, says nothing), to ``EXPLAIN_DEPTH`` levels."""
    lines = [(depth, float(node.get("value", 0.0)), str(node.get("description", "")))]
    if depth < EXPLAIN_DEPTH:
        for child in node.get("details", []):
            value = float(child.get("value", 0.0))
            if value != 0.0 and not (value == 1.0 and not child.get("details")):
                lines += explanation_lines(child, depth + 1)
    return lines


# -- the JSON API's shapes (plain dicts: dataclasses.asdict() deep-copies, and was a fifth
# -- of a search's CPU)


def facet_value_json(value: FacetValue) -> dict[str, Any]:
    return {
        "value": value.value,
        "label": value.label,
        "count": value.count,
        "selected": value.selected,
    }


def facet_json(facet: Facet) -> dict[str, Any]:
    return {
        "name": facet.name,
        "label": facet.label,
        "searchable": facet.searchable,
        "more": facet.more,
        "values": [facet_value_json(v) for v in facet.values],
    }


def hit_json(hit: Hit) -> dict[str, Any]:
    return {
        "id": hit.id,
        "name": hit.name,
        "version": hit.version,
        "summary": hit.summary,
        "section": hit.section,
        "priority": hit.priority,
        "maintainer": hit.maintainer,
        "reverse_dependencies": hit.popularity,
        "popularity": hit.popularity,  # the old name (deprecated in the OpenAPI document)
        "installed_size_kb": hit.installed_size_kb,
        "tags": hit.tags,
        "score": hit.score,
        "highlight": {k: str(v) for k, v in hit.highlight.items()},
        "url": package_url(hit.name),
        "promoted": hit.promoted,
    }


def search_json(result: SearchResult) -> dict[str, Any]:
    params = result.params
    return {
        "query": params.q,
        "filters": {k: list(v) for k, v in params.filters.items()},
        "sort": params.sort,
        "total": result.total,
        "took_ms": result.took_ms,
        "page": params.page if params.cursor is None else None,
        "page_size": params.page_size,
        "next_cursor": result.next_cursor,
        "did_you_mean": result.suggestion,
        "facets_cached": result.facets_cached,
        "hits_cached": result.hits_cached,
        "hits": [hit_json(h) for h in result.hits],
        "facets": [facet_json(f) for f in result.facets],
    }
