"""The one package-to-document builder, and the versioned bulk action.

Incremental writes (``indexing.writer``), full rebuilds (``indexing.rebuild``) and content
verification (``indexing.verify``) all build documents here, from one set-based query: the
row, its section, maintainer and tags in one statement, so a document is one consistent
snapshot of its row, with a fixed number of queries however many packages (a 1,000-package
batch is one query, where the ORM with ``prefetch_related`` took three and built model
instances: the rebuild reads 63k rows in about 2 s this way). ``search.documents`` declares
the fields; a test checks that every field built here is declared there and that the bodies
agree with what the ORM sees.

Every write carries an external version (``version_type=external_gte``): the row's
``row_version`` for an index operation, a fresh sequence value taken when the row was
deleted for a delete. Elasticsearch rejects an operation older than what it holds (409), so
a late or replayed write can never take the index back in time.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.db import connection

from search import meaning, ranking
from search.facets import SIZE
from search.indices import about_the_index

# Fields a document gets from its row (the order of the SELECT below). Tags come with their
# labels from Debian's vocabulary, in the tags' order (not the "special" facet's: its labels
# say things about the tagging, "Need an extra tag", not the package).
_SELECT = """
    SELECT p.id, p.row_version, p.name, p.version, p.summary, p.description, s.name,
           p.priority, p.architecture, m.name,
           ARRAY(
               SELECT t.facet || '::' || t.value
               FROM portal_package_tags pt JOIN portal_tag t ON t.id = pt.tag_id
               WHERE pt.package_id = p.id
               ORDER BY (t.facet || '::' || t.value) COLLATE "C"
           ),
           ARRAY(
               SELECT t.label
               FROM portal_package_tags pt JOIN portal_tag t ON t.id = pt.tag_id
               WHERE pt.package_id = p.id AND t.label <> '' AND t.facet <> 'special'
               ORDER BY (t.facet || '::' || t.value) COLLATE "C"
           ),
           p.homepage, p.installed_size_kb, p.download_size_bytes,
           p.reverse_dependency_count, p.reverse_recommends_count, p.source_family_size,
           p.source
    FROM portal_package p
    JOIN portal_section s ON s.id = p.section_id
    JOIN portal_maintainer m ON m.id = p.maintainer_id
"""
_BY_IDS = _SELECT + " WHERE p.id = ANY(%s) ORDER BY p.id"
_AFTER = _SELECT + " WHERE p.id > %s ORDER BY p.id LIMIT %s"

# Written by every write, compared by nothing (verify ignores it): when the document was
# built, shown to editors on the package's admin page.
STAMP_FIELD = "indexed_at"


@dataclass(frozen=True)
class Row:
    """A package as a document: its id, its row version (the document's external version)
    and the document body."""

    id: int
    version: int
    source: dict[str, Any]


def _row(values: tuple, stamp: str) -> Row:
    (pk, row_version, name, version, summary, description, section, priority, architecture,
     maintainer, tags, tag_labels, homepage, installed, download, depends, recommends,
     family, source) = values  # fmt: skip
    kind = ranking.package_kind(name, section, summary, tags)
    return Row(
        pk,
        row_version,
        {
            "name": name,
            "version": version,
            "summary": summary,
            "description": description,
            "section": section,
            "priority": priority,
            "architecture": architecture,
            "maintainer": maintainer,
            "tags": list(tags),
            "tag_words": sorted(set(tag_labels)),
            "homepage": homepage,
            "installed_size_kb": installed,
            SIZE.field: SIZE.key_of(installed),
            "download_size_bytes": download,
            "popularity": depends,
            "prior": ranking.prior(
                depends=depends,
                recommends=recommends,
                family=family,
                tags=tags,
                kind=kind,
                primary=name == source,
                priority=priority,
            ),
            "kind": kind,
            "ecosystem": ranking.ecosystem(name),
            "size_score": ranking.size_score(installed),
            "row_version": row_version,
            STAMP_FIELD: stamp,
        },
    )


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _built(fetched: list[tuple]) -> list[Row]:
    """Rows as documents, their meanings embedded in one call (search.meaning: about
    0.15 ms a package)."""
    stamp = _now()
    rows = [_row(values, stamp) for values in fetched]
    texts = [
        meaning.document_text(
            r.source["name"], r.source["summary"], r.source["description"], r.source["tag_words"]
        )
        for r in rows
    ]
    for row, vector in zip(rows, meaning.embed(texts), strict=True):
        if vector is not None:  # no meaning: the field is left out (never NaN)
            row.source[meaning.FIELD] = vector
    return rows


def rows_for(ids: Iterable[int]) -> list[Row]:
    """The documents of these packages, in id order (ids without a row are left out)."""
    wanted = sorted({int(pk) for pk in ids})
    if not wanted:
        return []
    with connection.cursor() as cursor:
        cursor.execute(_BY_IDS, [wanted])
        return _built(cursor.fetchall())


def batches(batch_size: int) -> Iterator[list[Row]]:
    """Every package's document, in id order, ``batch_size`` at a time (keyset paging: each
    batch is one query however deep into the table, and memory stays flat)."""
    last = 0
    while True:
        with connection.cursor() as cursor:
            cursor.execute(_AFTER, [last, batch_size])
            rows = _built(cursor.fetchall())
        if not rows:
            return
        yield rows
        last = rows[-1].id


def action(index: str, pk: int, version: int, source: dict[str, Any] | None) -> dict[str, Any]:
    """The versioned bulk action writing ``source`` as document ``pk`` (None: deleting it)."""
    op: dict[str, Any] = {
        "_op_type": "index" if source is not None else "delete",
        "_index": index,
        "_id": pk,
        "version": version,
        "version_type": "external_gte",
    }
    if source is not None:
        op["_source"] = source
    return op


def refusal(op: str, detail: dict[str, Any]) -> str | None:
    """Why Elasticsearch refused this one document for what it is (a 400 on writing it,
    which no retry changes), or None: accepted, or failed for another reason (a conflict,
    overload, a missing or closed index). ``op`` and ``detail``: one bulk response item."""
    error = detail.get("error") or {}
    if op not in ("index", "create") or detail.get("status") != 400 or about_the_index(error):
        return None
    return f"{error.get('type')}: {error.get('reason', '')}"[:500]


_NOT_COMPARED = {STAMP_FIELD, meaning.FIELD}


def comparable(source: dict[str, Any]) -> dict[str, Any]:
    """A document body without what differs between two builds of the same row, nor what
    the index does not keep in ``_source`` (the vector, computed from fields that are)."""
    return {k: v for k, v in source.items() if k not in _NOT_COMPARED}
