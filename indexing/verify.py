"""Compare the index with PostgreSQL, id by id and version by version, and repair drift."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import connection
from elasticsearch import helpers

from indexing.writer import record_changes
from search.indices import client, read_alias


@dataclass
class DriftReport:
    rows: int = 0
    documents: int = 0
    missing: list[int] = field(default_factory=list)  # row without a document
    extra: list[int] = field(default_factory=list)  # document without a row
    stale: list[int] = field(default_factory=list)  # document older than the row
    pending: int = 0  # drifted ids that are already waiting in the outbox

    @property
    def drift(self) -> list[int]:
        return self.missing + self.extra + self.stale

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


def verify(index: str | None = None) -> DriftReport:
    """Compare every row's (id, row_version) with the documents of the live index."""
    index = index or read_alias()
    client().indices.refresh(index=index)
    docs = document_versions(index)
    report = DriftReport(documents=len(docs))
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
    report.extra = sorted(docs)
    if report.drift:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(DISTINCT object_id) FROM indexing_outbox WHERE object_id = ANY(%s)",
                [report.drift],
            )
            report.pending = cursor.fetchone()[0]
    return report


def repair(report: DriftReport) -> int:
    """Queue every drifted package for reindexing; return how many.

    Missing and stale rows are touched, which gives them a fresh row version (higher than
    any tombstone or stray version a manual change may have left in the index) and records
    them in the outbox; extra documents are recorded as versioned deletes.
    """
    touch = report.missing + report.stale
    if touch:
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE portal_package SET updated_at = now() WHERE id = ANY(%s)", [touch]
            )
    return len(touch) + record_changes(report.extra)
