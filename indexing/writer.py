"""Versioned bulk writes of package documents, and the outbox processing loop.

Every write carries an external version (``version_type=external_gte``): the row's
``row_version`` for an index operation, the outbox version (a fresh sequence value taken when
the row was deleted) for a delete. Elasticsearch rejects an operation older than the document
it holds (409), so a late or replayed write can never take the index back in time; such
conflicts are expected and counted, not errors.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.db import connection, transaction
from elasticsearch import helpers

from portal.models import Package
from search import freshness
from search.documents import PackageDocument
from search.indices import client, ensure_index, indices_behind, read_alias, write_alias

logger = logging.getLogger(__name__)

BATCH_SIZE = 1000


class BulkWriteError(RuntimeError):
    """Elasticsearch refused some operations for a reason other than a version conflict."""


@dataclass
class WriteStats:
    indexed: int = 0
    deleted: int = 0
    conflicts: int = 0

    def add(self, other: WriteStats) -> None:
        self.indexed += other.indexed
        self.deleted += other.deleted
        self.conflicts += other.conflicts


def document_actions(
    packages: Iterable[Package], index: str, *, stamp: bool = False
) -> Iterator[dict[str, Any]]:
    """Bulk index actions for full package rows (with section, maintainer, tags loaded).

    ``stamp`` adds ``indexed_at`` (the incremental path does; editors see it in the admin).
    """
    doc = PackageDocument()
    now = datetime.now(UTC).isoformat() if stamp else None
    for package in packages:
        source = doc.prepare(package)
        if now:
            source["indexed_at"] = now
        yield {
            "_op_type": "index",
            "_index": index,
            "_id": package.pk,
            "version": package.row_version,
            "version_type": "external_gte",
            "_source": source,
        }


def _bulk(actions: list[dict[str, Any]], *, refresh: str | bool = False) -> int:
    """Send actions; return the number of version conflicts; raise on any other failure."""
    if not actions:
        return 0
    _, errors = helpers.bulk(
        client(), actions, raise_on_error=False, stats_only=False, refresh=refresh
    )
    conflicts = 0
    failures = []
    for error in errors:
        ((op, detail),) = error.items()
        status = detail.get("status")
        if status == 409:
            conflicts += 1  # a newer version is already there: expected
        elif op == "delete" and status == 404:
            continue  # nothing to delete (a tombstone with our version is kept anyway)
        else:
            failures.append(detail)
    if failures:
        raise BulkWriteError(f"{len(failures)} bulk operations failed; first: {failures[0]}")
    return conflicts


def write_documents(versions: dict[int, int]) -> WriteStats:
    """Write the current state of these packages (id -> delete version) to every index
    behind the write alias; a package whose row is gone is deleted with its given version.

    The live index (behind the read alias) is written with ``refresh=wait_for``, so when this
    returns the change is searchable, and the index generation is bumped then (inside
    ``search.freshness.writing``, so no search combines it with counts cached before it).
    An index being rebuilt (refresh off) is written without waiting. If a rebuild added its
    new index to the write alias while we were writing, we write again to it: the rebuild's
    own load only reads rows after that moment, so either it or we deliver the newest state.
    """
    ids = sorted(versions)
    stats = WriteStats()
    if not ids:
        return stats
    ensure_index()
    packages = list(PackageDocument.source_queryset().filter(pk__in=ids))
    found = {p.pk for p in packages}
    missing = [pk for pk in ids if pk not in found]
    stats.indexed, stats.deleted = len(packages), len(missing)

    def actions_for(index: str) -> list[dict[str, Any]]:
        actions = list(document_actions(packages, index, stamp=True))
        actions += [
            {
                "_op_type": "delete",
                "_index": index,
                "_id": pk,
                "version": versions[pk],
                "version_type": "external_gte",
            }
            for pk in missing
        ]
        return actions

    live = set(indices_behind(read_alias()))
    written: set[str] = set()
    not_waited: set[str] = set()
    # While the write runs (it may become visible at any refresh), searches bypass the
    # facet cache; the generation moves on once it is searchable (search.freshness).
    with freshness.writing():
        for _ in range(3):
            targets = [i for i in indices_behind(write_alias()) if i not in written]
            if not targets:
                break
            for index in targets:
                if index not in live:
                    stats.conflicts += _bulk(actions_for(index))
                    not_waited.add(index)
            for index in targets:
                if index in live:
                    stats.conflicts += _bulk(actions_for(index), refresh="wait_for")
            written |= set(targets)
        # An index that became live meanwhile (a rebuild swapped the alias) must show our
        # writes before the generation moves on.
        late = sorted(not_waited & set(indices_behind(read_alias())))
        if late:
            client().indices.refresh(index=late)
    return stats


def process_outbox(*, batch_size: int = BATCH_SIZE, max_batches: int = 20) -> tuple[int, bool]:
    """Drain up to ``max_batches`` batches of the outbox.

    Each batch is claimed with ``FOR UPDATE SKIP LOCKED`` (parallel workers take disjoint
    rows), coalesced by package (ten edits are one write), written, and deleted in the same
    transaction, so a crash at any point leaves the rows to be processed again.

    Returns (packages written, whether rows remain).
    """
    total = 0
    for _ in range(max_batches):
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(
                    """
                    SELECT id, object_id, version FROM indexing_outbox
                    ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED
                    """,
                    [batch_size],
                )
                rows = cursor.fetchall()
            if not rows:
                return total, False
            versions: dict[int, int] = {}
            for _, object_id, version in rows:
                versions[object_id] = max(version, versions.get(object_id, 0))
            write_documents(versions)
            with connection.cursor() as cursor:
                cursor.execute(
                    "DELETE FROM indexing_outbox WHERE id = ANY(%s)", [[r[0] for r in rows]]
                )
            total += len(versions)
        if len(rows) < batch_size:
            return total, False
    return total, True


def outbox_stats() -> dict[str, Any]:
    """Backlog size and the age in seconds of the oldest pending change."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*), EXTRACT(EPOCH FROM now() - min(created_at)) FROM indexing_outbox"
        )
        backlog, oldest = cursor.fetchone()
    return {"backlog": int(backlog), "oldest_age_s": float(oldest) if oldest is not None else 0.0}


def record_changes(package_ids: Iterable[int]) -> int:
    """Add outbox rows for packages (for writes that bypass the capture triggers, repairs,
    and the admin's "reindex selected"). Ids without a row are recorded as deletions."""
    ids = sorted({int(pk) for pk in package_ids})
    if not ids:
        return 0
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO indexing_outbox (object_id, version, created_at)
            SELECT i.id, COALESCE(p.row_version, nextval('portal_package_row_version_seq')), now()
            FROM unnest(%s::bigint[]) AS i(id)
            LEFT JOIN portal_package p ON p.id = i.id
            """,
            [ids],
        )
    return len(ids)
