"""Editor curation applied at query time: synonyms and promoted results.

Both are read from PostgreSQL and kept in each process for ``TTL`` (30) seconds, so an edit
in the admin takes effect within 30 seconds, with no reindex. :func:`version` is part of
every search answer's HTTP validator (``search.service.validator``): an edit changes answers
without an index write, so without it a revalidating browser or shared cache was told its
old answer was current (304) until the next write.
"""

from __future__ import annotations

import re
from typing import Any

from django.db.models import Count, Max

from search.models import Promotion, SynonymSet, normalise_query
from search.stores import Memo

TTL = 30.0
MAX_VARIANTS = 4


def _load_synonyms() -> dict[str, list[str]]:
    mapping: dict[str, list[str]] = {}
    for synonym_set in SynonymSet.objects.filter(enabled=True):
        terms = synonym_set.term_list()
        for term in terms:
            mapping.setdefault(term, [])
            mapping[term] += [t for t in terms if t != term and t not in mapping[term]]
    return mapping


def _load_promotions() -> dict[str, list[tuple[int, str]]]:
    mapping: dict[str, list[tuple[int, str]]] = {}
    for promo in Promotion.objects.order_by("query", "position"):
        mapping.setdefault(promo.query, []).append((promo.package_id, promo.label))
    return mapping


_synonyms = Memo(_load_synonyms, ttl=TTL)
_promotions = Memo(_load_promotions, ttl=TTL)


def synonym_map() -> dict[str, list[str]]:
    """term -> the other terms of its set(s), all normalised."""
    return _synonyms.get()


def _load_patterns() -> list[tuple[re.Pattern[str], list[str]]]:
    return [
        (re.compile(rf"(?<!\w){re.escape(term)}(?!\w)"), others)
        for term, others in synonym_map().items()
    ]


_patterns = Memo(_load_patterns, ttl=TTL)


def expansions(text: str) -> list[str]:
    """Variants of ``text`` with a synonym substituted (at most MAX_VARIANTS)."""
    normal = normalise_query(text)
    variants: list[str] = []
    for pattern, others in _patterns.get():
        if pattern.search(normal):
            for other in others:
                variant = pattern.sub(other, normal)
                if variant != normal and variant not in variants:
                    variants.append(variant)
    return variants[:MAX_VARIANTS]


def promotions_for(query: str) -> list[tuple[int, str]]:
    """(package id, label) pinned to this query, in position order."""
    return _promotions.get().get(normalise_query(query), [])


def _load_version() -> str:
    parts = []
    for model in (Promotion, SynonymSet):
        state = model.objects.aggregate(n=Count("id"), at=Max("updated_at"))
        parts.append(f"{state['n']}@{state['at'].timestamp() if state['at'] else 0}")
    return "/".join(parts)


_version = Memo(_load_version, ttl=TTL)


def version() -> str:
    """What identifies the curation in force (how many promotions and synonym sets, and
    when each kind last changed), as up to date as the rest of it (``TTL``)."""
    return _version.get()


def reset() -> None:
    """Forget cached curation (right after an admin edit in this process)."""
    _synonyms.reset()
    _patterns.reset()
    _promotions.reset()
    _version.reset()


__all__: list[Any] = ["expansions", "promotions_for", "reset", "synonym_map", "version"]
