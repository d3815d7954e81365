"""The facets visitors can filter by, and how each maps to the index.

* Plain facets: section, priority, architecture, maintainer, and installed size ranges.
* Tag facets: one per debtags facet (``tag.interface``, ``tag.implemented-in``, ...), read from
  the catalog, all stored in the one ``tags`` keyword field as ``facet::value``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from django.db.models import Count

from portal.models import Architecture, Priority, Tag
from search.stores import Memo

TAG_PREFIX = "tag."
SIDEBAR_TAG_FACETS = 8  # tag facets shown by default (the most used ones, plus any selected)


@dataclass(frozen=True)
class FacetSpec:
    name: str
    label: str
    field: str
    kind: str = "terms"  # "terms", "tag" or "range"
    size: int = 10
    choices: tuple[str, ...] | None = None  # closed set of values, validated
    searchable: bool = False  # long facet: the UI offers a search box over its values
    ranges: tuple[tuple[str, str, int | None, int | None], ...] = ()

    @property
    def tag_facet(self) -> str | None:
        return self.name[len(TAG_PREFIX) :] if self.kind == "tag" else None

    def display(self, value: str) -> str:
        if self.kind == "range":
            return next((label for key, label, _, _ in self.ranges if key == value), value)
        return value

    def filter_clause(self, values: tuple[str, ...]) -> dict[str, Any]:
        """The filter for "any of these values" (OR within a facet)."""
        if self.kind == "range":
            wanted = [r for r in self.ranges if r[0] in values]
            return {
                "bool": {
                    "should": [{"range": {self.field: _bounds(lo, hi)}} for _, _, lo, hi in wanted],
                    "minimum_should_match": 1,
                }
            }
        if self.kind == "tag":
            return {"terms": {self.field: [f"{self.tag_facet}::{v}" for v in values]}}
        return {"terms": {self.field: list(values)}}

    def value_of(self, key: str) -> str:
        """The visitor-facing value of an index term (tags drop their ``facet::``)."""
        if self.kind == "tag":
            return key.split("::", 1)[1]
        return key


def _bounds(lo: int | None, hi: int | None) -> dict[str, int]:
    bounds = {}
    if lo is not None:
        bounds["gte"] = lo
    if hi is not None:
        bounds["lt"] = hi
    return bounds


SIZE_RANGES = (
    ("tiny", "under 100 KB", None, 100),
    ("small", "100 KB – 1 MB", 100, 1024),
    ("medium", "1 – 10 MB", 1024, 10 * 1024),
    ("large", "10 – 100 MB", 10 * 1024, 100 * 1024),
    ("huge", "100 MB and more", 100 * 1024, None),
)

FACETS: dict[str, FacetSpec] = {
    "section": FacetSpec("section", "Section", "section", size=12),
    "priority": FacetSpec(
        "priority", "Priority", "priority", size=5, choices=tuple(Priority.values)
    ),
    "architecture": FacetSpec(
        "architecture", "Architecture", "architecture", size=2, choices=tuple(Architecture.values)
    ),
    "maintainer": FacetSpec("maintainer", "Maintainer", "maintainer.raw", size=8, searchable=True),
    "size": FacetSpec(
        "size",
        "Installed size",
        "installed_size_kb",
        kind="range",
        choices=tuple(r[0] for r in SIZE_RANGES),
        ranges=SIZE_RANGES,
    ),
}

TAG_FACET_TTL = 300.0


def _tag_facets_by_use() -> list[str]:
    rows = (
        Tag.objects.values("facet")
        .annotate(n=Count("packages"))
        .order_by("-n", "facet")
        .values_list("facet", flat=True)
    )
    return list(rows)


_tag_facets = Memo(_tag_facets_by_use, ttl=TAG_FACET_TTL)


def known_tag_facets() -> list[str]:
    """Tag facet names, most used first (from the catalog; kept for a few minutes)."""
    names = _tag_facets.get()
    if not names:  # an empty catalog: ask again next time
        _tag_facets.reset()
    return names


def tag_spec(facet: str) -> FacetSpec:
    return FacetSpec(
        f"{TAG_PREFIX}{facet}",
        facet.replace("-", " ").capitalize(),
        "tags",
        kind="tag",
        size=8,
        searchable=True,
    )


def facet_spec(name: str) -> FacetSpec | None:
    """The spec of a facet parameter name, or None if there is no such facet."""
    if name in FACETS:
        return FACETS[name]
    if name.startswith(TAG_PREFIX) and name[len(TAG_PREFIX) :] in known_tag_facets():
        return tag_spec(name[len(TAG_PREFIX) :])
    return None


def sidebar_facets(selected: dict[str, Any]) -> list[FacetSpec]:
    """The facets to aggregate for a page: the plain ones, the top tag facets, and any
    selected tag facet."""
    tags = known_tag_facets()[:SIDEBAR_TAG_FACETS]
    names = list(FACETS) + [f"{TAG_PREFIX}{t}" for t in tags]
    names += [n for n in selected if n not in names]
    specs = [facet_spec(n) for n in names]
    return [s for s in specs if s is not None]


def case_insensitive_regex(text: str) -> str:
    """A Lucene regular expression matching ``text`` anywhere, ignoring case."""
    parts = []
    for ch in text:
        if ch.isalpha() and ch.lower() != ch.upper():
            parts.append(f"[{ch.lower()}{ch.upper()}]")
        else:
            parts.append(re.sub(r'([.?+*|{}\[\]()"\\#@&<>~])', r"\\\1", ch))
    return ".*" + "".join(parts) + ".*"
