"""Debian's debtags vocabulary: a human label and description for every tag and facet.

The vocabulary ships with the project (``portal/data/debtags-vocabulary``, from Debian's
``debtags`` package, GPL-2; see the ``.copyright`` file beside it): 32 facets and 642 tags,
each with a one-line label (``use::editing`` is "Editing", ``works-with::image`` "Image")
and a longer description. It is applied at every catalog import (and by ``manage.py
import_vocabulary``, which also takes a newer file, e.g. ``/usr/share/debtags/vocabulary``):

* search matches the labels as words (``tag_words`` in the index), so "image editing"
  finds a package tagged ``use::editing`` and ``works-with::image``;
* the pages show labels instead of ``facet::value`` codes.

A label that changes is an UPDATE of the tag row, which the indexing triggers turn into a
reindex of every package showing it; applying an unchanged vocabulary changes nothing.
Tags the vocabulary does not know (the catalog has five ``privacy::`` tags it lacks) get a
label made from their value.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from django.db import transaction

from portal.models import Tag, TagFacet
from portal.validators import TAG_SEPARATOR

DEFAULT_PATH = Path(__file__).resolve().parent / "data" / "debtags-vocabulary"


@dataclass(frozen=True)
class Entry:
    name: str  # "use" (a facet) or "use::editing" (a tag)
    label: str
    description: str

    @property
    def is_facet(self) -> bool:
        return TAG_SEPARATOR not in self.name


def _stanzas(lines: Iterable[str]) -> Iterator[dict[str, str]]:
    """RFC 822-style stanzas: ``Field: value`` lines, continuation lines starting with a
    space (`` .`` is an empty line), a blank line between stanzas."""
    fields: dict[str, str] = {}
    current = None
    for raw in lines:
        line = raw.rstrip("\n")
        if not line.strip():
            if fields:
                yield fields
            fields, current = {}, None
        elif line[0] in " \t" and current is not None:
            text = line.strip()
            fields[current] += "\n" + ("" if text == "." else text)
        elif ":" in line:
            current, _, value = line.partition(":")
            fields[current] = value.strip()
    if fields:
        yield fields


def parse(lines: Iterable[str]) -> list[Entry]:
    """The facets and tags of a vocabulary file's lines."""
    entries = []
    for stanza in _stanzas(lines):
        name = stanza.get("Tag") or stanza.get("Facet")
        if not name:
            continue
        label, _, rest = stanza.get("Description", "").partition("\n")
        entries.append(Entry(name.strip(), label.strip() or name, " ".join(rest.split())))
    return entries


def load(path: Path = DEFAULT_PATH) -> list[Entry]:
    with path.open(encoding="utf-8") as handle:
        return parse(handle)


def fallback_label(value: str) -> str:
    """A label for a tag the vocabulary does not know: its value in words."""
    return value.replace("-", " ").replace(":", " ").capitalize()


@dataclass
class Applied:
    facets: int = 0  # facet rows created or changed
    tags: int = 0  # tag rows whose label or description changed


def apply(entries: Iterable[Entry]) -> Applied:
    """Make facet and tag labels match the vocabulary; only rows that differ are written."""
    known = {e.name: e for e in entries}
    applied = Applied()
    with transaction.atomic():
        facets = {f.name: f for f in TagFacet.objects.all()}
        new, edited = [], []
        for entry in (e for e in known.values() if e.is_facet):
            facet = facets.get(entry.name)
            if facet is None:
                new.append(
                    TagFacet(name=entry.name, label=entry.label, description=entry.description)
                )
            elif (facet.label, facet.description) != (entry.label, entry.description):
                facet.label, facet.description = entry.label, entry.description
                edited.append(facet)
        TagFacet.objects.bulk_create(new)
        TagFacet.objects.bulk_update(edited, ["label", "description"])
        applied.facets = len(new) + len(edited)
        changed = []
        for tag in Tag.objects.all():
            entry = known.get(f"{tag.facet}::{tag.value}")
            label = entry.label if entry else fallback_label(tag.value)
            description = entry.description if entry else ""
            if (tag.label, tag.description) != (label, description):
                tag.label, tag.description = label, description
                changed.append(tag)
        # One UPDATE per changed tag (bulk_update): the capture trigger reindexes the
        # packages showing it.
        Tag.objects.bulk_update(changed, ["label", "description"], batch_size=500)
        applied.tags = len(changed)
    return applied
