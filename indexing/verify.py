"""Compare an index with PostgreSQL, by version and by content, and repair drift.

Versions alone miss a wrong document that carries the right version (a change no trigger
captured, a document edited by hand): so besides every row's version, a sample of documents
(all of them with ``sample=None``) is compared field by field with what the one document
builder (``indexing.documents``) makes of the row now.

A document can also be *ahead* of its row: a higher version than the row's (PostgreSQL
restored from a backup takes the row-version sequence back; a document written by hand).
Every later edit of that row then loses to it as a version conflict, which the writer
expects and counts. Verify reports it as drift, and repair first moves the sequence past
the highest version in the index (only then, and only forward), so the rows it touches are
written over it.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db import connection, transaction
from elasticsearch import helpers

from indexing import documents
from indexing.writer import record_changes
from search.indices import client, read_alias, write_alias

MGET_CHUNK = 500
Progress = Callable[[int, int], None]  # (documents compared so far, of how many)


@dataclass
class DriftReport:
    index: str = ""
    rows: int = 0
    documents: int = 0
    missing: list[int] = field(default_factory=list)  # row without a document
    extra: list[int] = field(default_factory=list)  # document without a row
    stale: list[int] = field(default_factory=list)  # document older than the row
    ahead: list[int] = field(default_factory=list)  # document newer than the row (module doc)
    highest_version: int = 0  # the highest document version seen
    differ: dict[int, list[str]] = field(default_factory=dict)  # same version, other content
    compared: int = 0  # documents compared field by field
    pending: int = 0  # drifted ids that are already waiting in the outbox

    @property
    def drift(self) -> list[int]:
        return self.missing + self.extra + self.stale + self.ahead + sorted(self.differ)

    @property
    def clean(self) -> bool:
        return not self.drift


def document_versions(index: str) -> dict[int, int]:
    """Every document's id and version (one scroll, ids and versions only)."""
    versions: dict[int, int] = {}
    for hit in helpers.scan(
        client(),
        index=index,
        query={"query": {"match_all": {}}},
        _source=False,
        version=True,
        size=5000,
    ):
        versions[int(hit["_id"])] = int(hit["_version"])
    return versions


def _highest_written() -> int:
    """The highest row version any index behind the write alias holds (the rollback target
    too: an edit that loses to it there would be lost after a rollback)."""
    response = client().search(
        index=write_alias(), size=0, aggs={"top": {"max": {"field": "row_version"}}}
    )
    return int(response["aggregations"]["top"]["value"] or 0)


def _differences(expected: dict[str, Any], actual: dict[str, Any]) -> list[str]:
    want, have = documents.comparable(expected), documents.comparable(actual)
    return sorted(k for k in set(want) | set(have) if want.get(k) != have.get(k))


def compare_content(
    index: str, ids: list[int], on_progress: Progress | None = None
) -> dict[int, list[str]]:
    """Ids whose document differs from its row at the same version, with the fields that
    differ. A row that changed meanwhile (another version) is left to the version check.
    ``on_progress(compared, of)`` after each chunk."""
    differ: dict[int, list[str]] = {}
    for start in range(0, len(ids), MGET_CHUNK):
        chunk = ids[start : start + MGET_CHUNK]
        rows = {row.id: row for row in documents.rows_for(chunk)}
        found = client().mget(index=index, ids=[str(pk) for pk in chunk])["docs"]
        for doc in found:
            row = rows.get(int(doc["_id"]))
            if row is None or not doc.get("found") or int(doc["_version"]) != row.version:
                continue
            fields = _differences(row.source, doc["_source"])
            if fields:
                differ[row.id] = fields
        if on_progress is not None:
            on_progress(start + len(chunk), len(ids))
    return differ


def verify(
    index: str | None = None, *, sample: int | None = 1000, on_progress: Progress | None = None
) -> DriftReport:
    """Compare every row's (id, row_version) with the documents of ``index`` (default: the
    live index), and the content of ``sample`` documents (None: all of them; 83 s for the
    catalog, so ``on_progress(compared, of)`` is told as it goes)."""
    index = index or read_alias()
    client().indices.refresh(index=index)
    docs = document_versions(index)
    report = DriftReport(
        index=index,
        documents=len(docs),
        highest_version=max(max(docs.values(), default=0), _highest_written()),
    )
    same_version: list[int] = []
    with connection.cursor() as cursor:
        cursor.execute("SELECT id, row_version FROM portal_package ORDER BY id")
        while chunk := cursor.fetchmany(10_000):
            for pk, version in chunk:
                report.rows += 1
                have = docs.pop(pk, None)
                if have is None:
                    report.missing.append(pk)
                elif have < version:
                    report.stale.append(pk)
                elif have > version:
                    report.ahead.append(pk)
                else:
                    same_version.append(pk)
    report.extra = sorted(docs)
    if sample is not None and len(same_version) > sample:
        same_version = sorted(random.sample(same_version, sample))
    report.compared = len(same_version)
    differ = compare_content(index, same_version, on_progress)
    if differ:  # a write in flight may explain it: look once more
        report.differ = compare_content(index, sorted(differ))
    if report.drift:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(DISTINCT object_id) FROM indexing_outbox WHERE object_id = ANY(%s)",
                [report.drift],
            )
            report.pending = cursor.fetchone()[0]
    return report


def _move_versions_past(version: int) -> None:
    """Move the row-version sequence past ``version``, forward only. ``setval`` is not
    transactional: values other sessions took between reading the sequence and setting it
    would be handed out again. Every ``nextval`` of it comes from writes of packages (their
    triggers), so those are held off for the moment it takes."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("LOCK TABLE portal_package IN EXCLUSIVE MODE")
        cursor.execute("SELECT last_value FROM portal_package_row_version_seq")
        if cursor.fetchone()[0] < version:
            cursor.execute("SELECT setval('portal_package_row_version_seq', %s)", [version])


def repair(report: DriftReport) -> int:
    """Queue every drifted package for reindexing; return how many.

    Missing, stale, ahead and differing rows are touched, which gives them a fresh row
    version and records them in the outbox; extra documents are recorded as versioned
    deletes. The row-version sequence is first moved past the highest version in the index
    (it only ever moves forward), so every fresh version is above any document's, a
    tombstone or a stray version included.
    """
    touch = report.missing + report.stale + report.ahead + sorted(report.differ)
    if report.ahead:
        _move_versions_past(report.highest_version)
    if touch:
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE portal_package SET updated_at = now() WHERE id = ANY(%s)", [touch]
            )
    return len(touch) + record_changes(report.extra)
