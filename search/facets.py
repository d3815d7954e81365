"""The facets visitors can filter by: one class per kind, each owning its whole rule.

* :class:`TermsFacet`: a keyword field's values (section, priority, architecture,
  maintainer).
* :class:`TagFacet`: one debtags facet (``tag.interface``, ``tag.use`` ...). All tags live in
  the one ``tags`` keyword field as ``facet::value``; this class is the only code that
  writes or reads that encoding on the search side.
* :class:`RangeFacet`: numeric buckets (installed size), kept in each document as a key.

A kind knows its filter clause ("any of these values": OR within a facet), its aggregation,
and how to read the aggregation's response into :class:`~search.results.FacetValue` rows
(selected values stay listed, even at count 0). ``search.query`` assembles the request
(each facet's aggregation under every filter but its own, so counts are disjunctive) and
``search.service`` reads the response through the kinds; nothing else looks inside.

The tag facets come from the catalog (:class:`FacetRegistry`, the most used first); unit
tests give a registry a fixed list instead of the database.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from django.db.models import Count

from portal.models import Tag
from portal.models import TagFacet as TagFacetModel
from portal.validators import TAG_SEPARATOR
from search.results import FacetValue
from search.stores import Memo

TAG_PREFIX = "tag."
TAGS_FIELD = "tags"
SIDEBAR_TAG_FACETS = 8  # tag facets shown by default (the most used ones, plus any selected)
TAG_FACET_TTL = 300.0


@dataclass(frozen=True)
class TermsFacet:
    """Values of a keyword field; ``size`` of them are listed, most frequent first."""

    name: str
    label: str
    field: str
    size: int = 10
    choices: tuple[str, ...] | None = None  # a closed set of values, validated
    searchable: bool = False  # long facet: the UI offers a search box over its values

    # Tag facets of all kinds share one terms aggregation per filter group (search.query).
    shares_tags_aggregation: ClassVar[bool] = False

    def term(self, value: str) -> str:
        """The index term of a visitor-facing value."""
        return value

    def value_of(self, term: str) -> str:
        """The visitor-facing value of an index term."""
        return term

    def label_of(self, value: str) -> str:
        return value

    def filter_clause(self, values: Sequence[str]) -> dict[str, Any]:
        """Any of these values (OR within a facet)."""
        return {"terms": {self.field: [self.term(v) for v in values]}}

    def aggregation(self, selected: Sequence[str]) -> dict[str, Any]:
        """Sub-aggregations counting this facet's values: the top ``size`` ones, and the
        selected ones when they may not be among the top (not for a closed set that comes
        back whole)."""
        aggs: dict[str, Any] = {"values": {"terms": {"field": self.field, "size": self.size}}}
        # A closed set no larger than ``size`` comes back whole: its selected values with it.
        whole = self.choices is not None and len(self.choices) <= self.size
        if selected and not whole:
            aggs["selected"] = self._selected_aggregation(selected)
        return aggs

    def _selected_aggregation(self, selected: Sequence[str]) -> dict[str, Any]:
        terms = [self.term(v) for v in selected]
        return {"terms": {"field": self.field, "include": terms, "size": len(terms)}}

    def buckets(self, group: dict[str, Any]) -> list[dict[str, Any]]:
        """This facet's top buckets in its filter group's response."""
        return group.get(self.name, {}).get("buckets", [])

    def has_more(self, group: dict[str, Any]) -> bool:
        """Whether values were left out of the top ones ("Show more"); a closed set is
        listed whole."""
        return self.choices is None and group.get(self.name, {}).get("sum_other_doc_count", 0) > 0

    def read(self, group: dict[str, Any], selected: Iterable[str]) -> list[FacetValue]:
        """The rows to show, from the response of this facet's filter group."""
        chosen = set(selected)
        rows, seen = [], set()
        for bucket in self.buckets(group):
            value = self.value_of(bucket["key"])
            seen.add(value)
            rows.append(
                FacetValue(value, self.label_of(value), bucket["doc_count"], value in chosen)
            )
        missing = sorted(chosen - seen)
        extra = self.counts_of_selected(group) if missing else {}
        for value in missing:
            rows.append(FacetValue(value, self.label_of(value), extra.get(value, 0), True))
        return rows

    def counts_of_selected(self, group: dict[str, Any]) -> dict[str, int]:
        """Counts of values that may be missing from the top buckets (the selected ones), by
        value; a value not listed counts 0."""
        return {
            self.value_of(b["key"]): b["doc_count"]
            for b in group.get(f"{self.name}#selected", {}).get("buckets", [])
        }

    def values_include(self, contains: str) -> str:
        """The terms aggregation ``include`` for the facet's values containing a text."""
        return case_insensitive_regex(contains) if contains else ".*"

    def offers(self, value: str) -> bool:
        """Whether ``value`` is offered as a filter (a selected one is listed regardless)."""
        return True


# Placeholder values of the tag data ("role::TODO", "devel::lang:TODO"): not properties of
# a package, never offered as a filter (a selected one stays listed, as any selected value).
PLACEHOLDER_VALUE = re.compile(r"(^|:)TODO$")


@dataclass(frozen=True)
class TagFacet(TermsFacet):
    """One debtags facet, stored in the ``tags`` field as ``facet::value``; ``labels``: the
    vocabulary's words for its values ("x11" -> "X Window System")."""

    labels: Mapping[str, str] = field(default_factory=dict, compare=False, hash=False)
    shares_tags_aggregation: ClassVar[bool] = True

    @classmethod
    def named(
        cls, facet: str, label: str | None = None, labels: Mapping[str, str] | None = None
    ) -> TagFacet:
        return cls(
            name=f"{TAG_PREFIX}{facet}",
            label=label or facet.replace("-", " ").capitalize(),
            field=TAGS_FIELD,
            size=8,
            searchable=True,
            labels=labels or {},
        )

    def label_of(self, value: str) -> str:
        return self.labels.get(value) or value

    @property
    def tag_facet(self) -> str:
        return self.name[len(TAG_PREFIX) :]

    def term(self, value: str) -> str:
        return f"{self.tag_facet}{TAG_SEPARATOR}{value}"

    def value_of(self, term: str) -> str:
        return term.split(TAG_SEPARATOR, 1)[1]

    def aggregation(self, selected: Sequence[str]) -> dict[str, Any]:
        # Its values, selected ones included, come from the group's shared tags aggregation
        # (search.query), which returns every bucket of its tag facets. A terms aggregation
        # of the selected values was a second pass over every match's tags: at a million
        # packages, 32 of a filtered browse's 62 ms (tag.uitoolkit=sdl, sorted by popularity).
        return {}

    def counts_of_selected(self, group: dict[str, Any]) -> dict[str, int]:
        # Placeholders included: one someone selected still shows its count.
        return {
            self.value_of(b["key"]): b["doc_count"]
            for b in tag_buckets(group).get(self.tag_facet, ())
        }

    def _offered(self, group: dict[str, Any]) -> list[dict[str, Any]]:
        """The buckets of the values offered, most frequent first (worked out once per
        group and facet: :meth:`buckets` and :meth:`has_more` both read them)."""
        shared = group.get(TAGS_FIELD)
        if not shared:
            return []
        offered = shared.setdefault("#offered", {})
        mine = offered.get(self.tag_facet)
        if mine is None:
            mine = [
                b
                for b in tag_buckets(group).get(self.tag_facet, ())
                if self.offers(self.value_of(b["key"]))
            ]
            mine.sort(key=lambda b: (-b["doc_count"], b["key"]))
            offered[self.tag_facet] = mine
        return mine

    def offers(self, value: str) -> bool:
        return not PLACEHOLDER_VALUE.search(value)

    def buckets(self, group: dict[str, Any]) -> list[dict[str, Any]]:
        return self._offered(group)[: self.size]

    def has_more(self, group: dict[str, Any]) -> bool:
        # The shared aggregation returns every bucket: more than the size listed is more.
        return len(self._offered(group)) > self.size

    def values_include(self, contains: str) -> str:
        prefix = re.escape(f"{self.tag_facet}{TAG_SEPARATOR}")
        return prefix + super().values_include(contains)


def tag_buckets(group: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """The buckets of a filter group's shared tags aggregation, by tag facet. Worked out
    once per group (kept in the group's response under ``#by-facet``): every tag facet
    scanning all ~600 buckets for its own was 0.3 ms of a search's Python time. Each
    facet's offered values are kept too (``#offered``, :meth:`TagFacet._offered`), and
    the selected values' counts are only looked up when one is missing from the top:
    reading a search's facets took 0.33-0.35 ms before, 0.10-0.24 after."""
    shared = group.get(TAGS_FIELD)
    if not shared:
        return {}
    by_facet = shared.get("#by-facet")
    if by_facet is None:
        by_facet = {}
        for bucket in shared.get("buckets", []):
            facet = bucket["key"].partition(TAG_SEPARATOR)[0]
            by_facet.setdefault(facet, []).append(bucket)
        shared["#by-facet"] = by_facet
    return by_facet


def tags_include(facets: Iterable[TagFacet]) -> str:
    """The ``include`` of one terms aggregation over ``tags`` covering these tag facets."""
    names = "|".join(re.escape(f.tag_facet) for f in facets)
    return f"({names}){re.escape(TAG_SEPARATOR)}.*"


@dataclass(frozen=True)
class RangeFacet:
    """Numeric buckets: (key, label, from, to) each, ``to`` exclusive.

    Each document stores the key of its number's bucket in the keyword ``field`` (the
    document builder calls :meth:`key_of`), and filters and counts use that keyword. A
    ``range`` aggregation over the number decoded every match's value: at a million
    packages it was 1.2 of a search's 14 ms of Elasticsearch CPU (the benchmark's mix), and
    32 ms of a 146 ms browse matching 995,000 packages, where a terms aggregation over a
    keyword of five values costs about 8."""

    name: str
    label: str
    field: str
    ranges: tuple[tuple[str, str, int | None, int | None], ...]
    searchable: bool = False
    shares_tags_aggregation: ClassVar[bool] = False

    @property
    def choices(self) -> tuple[str, ...]:
        return tuple(key for key, _, _, _ in self.ranges)

    def label_of(self, value: str) -> str:
        return next((label for key, label, _, _ in self.ranges if key == value), value)

    def key_of(self, number: int | None) -> str | None:
        """The key of the bucket holding ``number`` (None: in none, or no number)."""
        if number is None:
            return None
        for key, _, lo, hi in self.ranges:
            if (lo is None or number >= lo) and (hi is None or number < hi):
                return key
        return None

    def filter_clause(self, values: Sequence[str]) -> dict[str, Any]:
        return {"terms": {self.field: [key for key in self.choices if key in values]}}

    def aggregation(self, selected: Sequence[str]) -> dict[str, Any]:
        return {"values": {"terms": {"field": self.field, "size": len(self.ranges)}}}

    def has_more(self, group: dict[str, Any]) -> bool:
        return False  # every bucket is listed

    def read(self, group: dict[str, Any], selected: Iterable[str]) -> list[FacetValue]:
        chosen = set(selected)
        buckets = group.get(self.name, {}).get("buckets", [])
        counts = {b["key"]: b["doc_count"] for b in buckets}
        rows = []
        for key, label, _, _ in self.ranges:
            count = counts.get(key, 0)
            if count or key in chosen:
                rows.append(FacetValue(key, label, count, key in chosen))
        return rows


FacetKind = TermsFacet | RangeFacet


def case_insensitive_regex(text: str) -> str:
    """A Lucene regular expression matching ``text`` anywhere, ignoring case."""
    parts = []
    for ch in text:
        # Only one-letter cases: "İ".lower() is two characters, "ß".upper() is "SS".
        cases = dict.fromkeys(c for c in (ch.lower(), ch.upper(), ch) if len(c) == 1)
        if ch.isalpha() and len(cases) > 1:
            parts.append(f"[{''.join(cases)}]")
        else:
            parts.append(re.sub(r'([.?+*|{}\[\]()"\\#@&<>~])', r"\\\1", ch))
    return ".*" + "".join(parts) + ".*"


SIZE_RANGES = (
    ("tiny", "under 100 KB", None, 100),
    ("small", "100 KB – 1 MB", 100, 1024),
    ("medium", "1 – 10 MB", 1024, 10 * 1024),
    ("large", "10 – 100 MB", 10 * 1024, 100 * 1024),
    ("huge", "100 MB and more", 100 * 1024, None),
)
PRIORITIES = ("required", "important", "standard", "optional", "extra")
ARCHITECTURES = ("amd64", "all")

# The bucket of each document's installed_size_kb (indexing.documents).
SIZE = RangeFacet("size", "Installed size", "size_range", SIZE_RANGES)

FIXED: dict[str, FacetKind] = {
    "section": TermsFacet("section", "Section", "section", size=12, searchable=True),
    "priority": TermsFacet("priority", "Priority", "priority", size=5, choices=PRIORITIES),
    "architecture": TermsFacet(
        "architecture", "Architecture", "architecture", size=2, choices=ARCHITECTURES
    ),
    "maintainer": TermsFacet("maintainer", "Maintainer", "maintainer.raw", size=8, searchable=True),
    "size": SIZE,
}


class FacetRegistry:
    """Every facet: the fixed ones and a tag facet per debtags facet of the catalog."""

    def __init__(
        self,
        tag_facets: Callable[[], list[str]],
        vocabulary: Callable[[], Vocabulary] | None = None,
    ) -> None:
        self._tag_facets = tag_facets
        self._vocabulary = vocabulary

    def tag_facets(self) -> list[str]:
        """Debtags facet names, the most used first."""
        return self._tag_facets()

    def get(self, name: str) -> FacetKind | None:
        """The facet of a parameter name, or None if there is no such facet."""
        if name in FIXED:
            return FIXED[name]
        facet = name[len(TAG_PREFIX) :]
        if name.startswith(TAG_PREFIX) and facet in self.tag_facets():
            if self._vocabulary is None:
                return TagFacet.named(facet)
            words = self._vocabulary()
            return TagFacet.named(facet, words.facets.get(facet), words.values.get(facet))
        return None

    def sidebar(self, selected: Iterable[str]) -> list[FacetKind]:
        """The facets to count for a page: the fixed ones, the most used tag facets, and
        any selected facet."""
        names = list(FIXED) + [f"{TAG_PREFIX}{t}" for t in self.tag_facets()[:SIDEBAR_TAG_FACETS]]
        names += [n for n in selected if n not in names]
        return [f for f in (self.get(n) for n in names) if f is not None]

    def describe(self) -> str:
        """For error messages: what filters there are."""
        examples = ", ".join(f"{TAG_PREFIX}{t}" for t in self.tag_facets()[:5])
        return f"{', '.join(FIXED)}, and tag facets such as {examples}"


def _catalog_tag_facets() -> list[str]:
    rows = (
        Tag.objects.values("facet")
        .annotate(n=Count("packages"))
        .order_by("-n", "facet")
        .values_list("facet", flat=True)
    )
    return list(rows)


_tag_facet_names = Memo(_catalog_tag_facets, ttl=TAG_FACET_TTL)


@dataclass(frozen=True)
class Vocabulary:
    """Human words for tag facets ("use" -> "Purpose") and their values, by facet."""

    facets: Mapping[str, str]
    values: Mapping[str, Mapping[str, str]]
    version: str = ""  # a digest of the words: part of cache keys and validators


def _catalog_vocabulary() -> Vocabulary:
    values: dict[str, dict[str, str]] = {}
    for facet, value, label in Tag.objects.exclude(label="").values_list("facet", "value", "label"):
        values.setdefault(facet, {})[value] = label
    facets = dict(TagFacetModel.objects.values_list("name", "label"))
    words = json.dumps([facets, values], sort_keys=True)
    return Vocabulary(facets, values, hashlib.sha256(words.encode()).hexdigest()[:16])


_vocabulary = Memo(_catalog_vocabulary, ttl=TAG_FACET_TTL)


def forget_vocabulary() -> None:
    """Read the tag facets and labels again at their next use (after an edit in the admin:
    this process shows it at once, the others within ``TAG_FACET_TTL``)."""
    _vocabulary.reset()
    _tag_facet_names.reset()


def vocabulary_version() -> str:
    """Which labels this process shows (kept ``TAG_FACET_TTL``): cached counts carry their
    labels, so they are keyed by it, or a process that has not reloaded them yet would
    cache an edited label's old words for every process (and for a validator that looks
    fresh, since the edit moved the generation on)."""
    return _vocabulary.get().version


def _known_tag_facets() -> list[str]:
    found = _tag_facet_names.get()
    if not found:  # an empty catalog: ask again next time
        _tag_facet_names.reset()
    return found


CATALOG = FacetRegistry(_known_tag_facets, _vocabulary.get)


def registry() -> FacetRegistry:
    """The registry of the catalog (tag facets read from the database, kept 5 minutes)."""
    return CATALOG
