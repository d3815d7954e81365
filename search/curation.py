"""Editor curation applied at query time: synonyms and promoted results.

Both are read from PostgreSQL together, as one snapshot kept in each process for ``TTL``
(30) seconds, so an edit in the admin takes effect within 30 seconds, with no reindex.
:func:`version` identifies the snapshot and is part of every search answer's HTTP validator
(``search.service.validator``): an edit changes answers without an index write, so without
it a revalidating browser or shared cache was told its old answer was current (304) until
the next write. It is a digest of the snapshot itself, never read apart from it: a version
kept on its own clock could label an old answer with a new version, or a new one with the
old.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from search.models import Promotion, SynonymSet, normalise_query
from search.stores import Memo

TTL = 30.0
MAX_VARIANTS = 4


@dataclass(frozen=True)
class Curation:
    """The curation in force in this process."""

    synonyms: dict[str, list[str]]  # term -> the other terms of its set(s), normalised
    patterns: list[tuple[re.Pattern[str], list[str]]]  # a term's pattern -> the others
    promotions: dict[str, list[tuple[int, str]]]  # normalised query -> (package id, label)
    version: str


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
    for promo in Promotion.objects.order_by("query", "position", "id"):
        mapping.setdefault(promo.query, []).append((promo.package_id, promo.label))
    return mapping


def _load() -> Curation:
    synonyms, promotions = _load_synonyms(), _load_promotions()
    patterns = [
        (re.compile(rf"(?<!\w){re.escape(term)}(?!\w)"), others)
        for term, others in synonyms.items()
    ]
    state = json.dumps([synonyms, promotions], sort_keys=True)
    version = hashlib.sha256(state.encode()).hexdigest()[:16]
    return Curation(synonyms, patterns, promotions, version)


_current = Memo(_load, ttl=TTL)


def current() -> Curation:
    return _current.get()


def synonym_map() -> dict[str, list[str]]:
    """term -> the other terms of its set(s), all normalised."""
    return current().synonyms


def expansions(text: str) -> list[str]:
    """Variants of ``text`` with a synonym substituted (at most MAX_VARIANTS)."""
    normal = normalise_query(text)
    variants: list[str] = []
    for pattern, others in current().patterns:
        if pattern.search(normal):
            for other in others:
                variant = pattern.sub(other, normal)
                if variant != normal and variant not in variants:
                    variants.append(variant)
    return variants[:MAX_VARIANTS]


def promotions_for(query: str) -> list[tuple[int, str]]:
    """(package id, label) pinned to this query, in position order."""
    return current().promotions.get(normalise_query(query), [])


def version() -> str:
    """What identifies the curation in force (a digest of the snapshot the searches use)."""
    return current().version


def reset() -> None:
    """Forget cached curation (right after an admin edit in this process)."""
    _current.reset()


__all__: list[Any] = ["current", "expansions", "promotions_for", "reset", "synonym_map", "version"]
