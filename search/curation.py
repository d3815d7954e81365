"""Editor curation applied at query time: synonyms and promoted results.

Both are read from PostgreSQL and cached in each process for ``TTL`` seconds, so an edit in
the admin takes effect within a minute, with no reindex.
"""

from __future__ import annotations

import re
import time
from typing import Any

from search.models import Promotion, SynonymSet, normalise_query

TTL = 30.0
MAX_VARIANTS = 4

_synonyms: tuple[float, dict[str, list[str]]] = (0.0, {})
_promotions: tuple[float, dict[str, list[tuple[int, str]]]] = (0.0, {})


def synonym_map() -> dict[str, list[str]]:
    """term -> the other terms of its set(s), all normalised."""
    global _synonyms
    at, mapping = _synonyms
    if time.monotonic() - at > TTL:
        mapping = {}
        for synonym_set in SynonymSet.objects.filter(enabled=True):
            terms = synonym_set.term_list()
            for term in terms:
                mapping.setdefault(term, [])
                mapping[term] += [t for t in terms if t != term and t not in mapping[term]]
        _synonyms = (time.monotonic(), mapping)
    return mapping


def expansions(text: str) -> list[str]:
    """Variants of ``text`` with a synonym substituted (at most MAX_VARIANTS)."""
    normal = normalise_query(text)
    variants: list[str] = []
    for term, others in synonym_map().items():
        pattern = re.compile(rf"(?<!\w){re.escape(term)}(?!\w)")
        if pattern.search(normal):
            for other in others:
                variant = pattern.sub(other, normal)
                if variant != normal and variant not in variants:
                    variants.append(variant)
    return variants[:MAX_VARIANTS]


def promotions_for(query: str) -> list[tuple[int, str]]:
    """(package id, label) pinned to this query, in position order."""
    global _promotions
    at, mapping = _promotions
    if time.monotonic() - at > TTL:
        mapping = {}
        for promo in Promotion.objects.order_by("query", "position"):
            mapping.setdefault(promo.query, []).append((promo.package_id, promo.label))
        _promotions = (time.monotonic(), mapping)
    return mapping.get(normalise_query(query), [])


def reset() -> None:
    """Forget cached curation (tests, and right after an admin edit in this process)."""
    global _synonyms, _promotions
    _synonyms = (0.0, {})
    _promotions = (0.0, {})


__all__: list[Any] = ["expansions", "promotions_for", "reset", "synonym_map"]
