"""Incremental writes of package documents, and the outbox processing loop.

Documents are built by ``indexing.documents`` (the one builder) and written with external
versions, so a late or replayed write can never take the index back in time; version
conflicts (409) are expected and counted, not errors.

A document Elasticsearch refuses for itself alone (a 400: a value its mapping cannot take)
would fail every retry the same way. Rolling its whole batch back made that batch first in
line again at every try, so nothing behind it was ever indexed (one package named "..." did
it: an empty text, a NaN vector). Its outbox rows are set aside instead: kept with the
reason, counted on the status page as refused, recorded among the recent errors, and claimed
again after ``REFUSED_RETRY``; the rest of the batch is written and its rows deleted.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.db import connection, transaction
from elasticsearch import helpers

from indexing import documents
from indexing.rebuild import ensure_index
from search import freshness
from search.indices import alias_state, client

logger = logging.getLogger(__name__)

BATCH_SIZE = 1000
REFUSED_RETRY = timedelta(minutes=10)


class BulkWriteError(RuntimeError):
    """Elasticsearch refused some operations for a reason other than a version conflict."""


@dataclass
class WriteStats:
    indexed: int = 0
    deleted: int = 0
    conflicts: int = 0
    refused: dict[int, str] = field(default_factory=dict)  # package id -> Elasticsearch's reason


@dataclass
class _Outcome:
    conflicts: int = 0
    missing_index: bool = False  # the index was deleted while we wrote (a rebuild's cleanup)
    refused: dict[int, str] = field(default_factory=dict)


def _bulk(actions: list[dict[str, Any]], *, refresh: str | bool = False) -> _Outcome:
    """Send actions; count version conflicts and collect refused documents; raise on any
    other failure."""
    outcome = _Outcome()
    if not actions:
        return outcome
    _, errors = helpers.bulk(
        client(), actions, raise_on_error=False, stats_only=False, refresh=refresh
    )
    failures = []
    for error in errors:
        ((op, detail),) = error.items()
        status = detail.get("status")
        kind = (detail.get("error") or {}).get("type")
        if status == 409:
            outcome.conflicts += 1  # a newer version is already there: expected
        elif op == "delete" and status == 404 and kind != "index_not_found_exception":
            continue  # nothing to delete (a tombstone with our version is kept anyway)
        elif kind == "index_not_found_exception":
            outcome.missing_index = True
        elif (reason := documents.refusal(op, detail)) is not None:
            outcome.refused[int(detail["_id"])] = reason
        else:
            failures.append(detail)
    if failures:
        raise BulkWriteError(f"{len(failures)} bulk operations failed; first: {failures[0]}")
    return outcome


def write_documents(versions: dict[int, int]) -> WriteStats:
    """Write the current state of these packages (id -> delete version) to every index
    behind the write alias; a package whose row is gone is deleted with its given version.

    The live index (behind the read alias) is written with ``refresh=wait_for``, so when this
    returns the change is searchable, and the index generation is bumped then (inside
    ``search.freshness.writing``, so no search combines it with counts cached before it).
    Other indices (being built, or kept for rollback) are written without waiting. If a
    rebuild added its new index to the write alias while we were writing, we write again to
    it: the rebuild's own load only reads rows after that moment, so either it or we deliver
    the newest state. An index deleted while we wrote (it left the write alias) is skipped;
    with automatic index creation off for the prefix, the write cannot recreate it.
    """
    ids = sorted(versions)
    stats = WriteStats()
    if not ids:
        return stats
    state = ensure_index()
    rows = documents.rows_for(ids)
    found = {row.id for row in rows}
    missing = [pk for pk in ids if pk not in found]
    stats.indexed, stats.deleted = len(rows), len(missing)

    def actions_for(index: str) -> list[dict[str, Any]]:
        return [documents.action(index, r.id, r.version, r.source) for r in rows] + [
            documents.action(index, pk, versions[pk], None) for pk in missing
        ]

    written: set[str] = set()
    not_waited: set[str] = set()
    # While the write runs (it may become visible at any refresh), searches bypass the
    # cache; the generation moves on once it is searchable (search.freshness).
    with freshness.writing():
        for _ in range(3):
            live = set(state.read)
            targets = [i for i in state.write if i not in written]
            if not targets:
                break
            ordered = [i for i in targets if i not in live] + [i for i in targets if i in live]
            for index in ordered:
                outcome = _bulk(actions_for(index), refresh="wait_for" if index in live else False)
                stats.conflicts += outcome.conflicts
                if index in live:
                    stats.refused.update(outcome.refused)
                elif outcome.refused:  # another schema (a rollback target): it lacks them
                    logger.warning(
                        "%s refused %d document(s), which it will lack: %s",
                        index,
                        len(outcome.refused),
                        next(iter(outcome.refused.values())),
                    )
                if index not in live:
                    not_waited.add(index)
                if outcome.missing_index and index in alias_state().write:
                    raise BulkWriteError(f"index {index} is behind the write alias but missing")
            written |= set(targets)
            state = alias_state()
        # An index that became live meanwhile (a rebuild swapped the alias) must show our
        # writes before the generation moves on.
        late = sorted(not_waited & set(state.read))
        if late:
            client().indices.refresh(index=late)
    return stats


def process_outbox(*, batch_size: int = BATCH_SIZE, max_batches: int = 20) -> tuple[int, bool]:
    """Drain up to ``max_batches`` batches of the outbox.

    Each batch is claimed with ``FOR UPDATE SKIP LOCKED`` (parallel workers take disjoint
    rows), coalesced by package (ten edits are one write), written, and deleted in the same
    transaction, so a crash at any point leaves the rows to be processed again. The rows of
    a document Elasticsearch refused are set aside until ``REFUSED_RETRY`` has passed
    (module docstring), not deleted.

    Returns (packages written, whether rows remain).
    """
    total = 0
    for _ in range(max_batches):
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(
                    """
                    SELECT id, object_id, version FROM indexing_outbox
                    WHERE retry_after IS NULL OR retry_after <= now()
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
            refused = write_documents(versions).refused
            done = [r[0] for r in rows if r[1] not in refused]
            written = {pk: v for pk, v in versions.items() if pk not in refused}
            with connection.cursor() as cursor:
                cursor.execute("DELETE FROM indexing_outbox WHERE id = ANY(%s)", [done])
                _drop_set_aside(cursor, written)
                for object_id, reason in refused.items():
                    cursor.execute(
                        """
                        UPDATE indexing_outbox SET retry_after = now() + %s, refusal = %s
                        WHERE id = ANY(%s) AND object_id = %s
                        """,
                        [REFUSED_RETRY, reason, [r[0] for r in rows], object_id],
                    )
            if refused:
                _report_refused(refused)
            total += len(versions) - len(refused)
        if len(rows) < batch_size:
            return total, False
    return total, True


def _drop_set_aside(cursor: Any, written: dict[int, int]) -> None:
    """Drop rows set aside for packages now written at a version at least theirs (the
    editor fixed the package): nothing is left to try again. Rows another worker holds are
    left for it."""
    if not written:
        return
    cursor.execute(
        """
        DELETE FROM indexing_outbox WHERE id IN (
            SELECT o.id FROM indexing_outbox o
            JOIN unnest(%s::bigint[], %s::bigint[]) AS w(object_id, version)
              ON o.object_id = w.object_id AND o.version <= w.version
            WHERE o.retry_after IS NOT NULL
            FOR UPDATE OF o SKIP LOCKED
        )
        """,
        [list(written), list(written.values())],
    )


def _report_refused(refused: dict[int, str]) -> None:
    """Log the refused documents and keep them among the status page's recent errors."""
    from indexing import status  # status reads this module's outbox_stats

    first, reason = next(iter(sorted(refused.items())))
    error = BulkWriteError(
        f"Elasticsearch refused {len(refused)} document(s), set aside and tried again in "
        f"{REFUSED_RETRY.total_seconds() / 60:.0f} minutes (fix the package, or the document "
        f"builder, then `manage.py search_status --repair`): package {first}: {reason}"
    )
    logger.error("%s", error)
    status.record_error(error)


def outbox_stats() -> dict[str, Any]:
    """Backlog size (``refused``: rows set aside after Elasticsearch refused their document,
    waiting to be tried again) and the age in seconds of the oldest change waiting to be
    written (set-aside rows are not a lag: they are counted as refused)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT count(*),
                   EXTRACT(EPOCH FROM now() - min(created_at) FILTER (
                       WHERE retry_after IS NULL OR retry_after <= now())),
                   count(*) FILTER (WHERE retry_after > now())
            FROM indexing_outbox
            """
        )
        backlog, oldest, refused = cursor.fetchone()
    return {
        "backlog": int(backlog),
        "refused": int(refused),
        "oldest_age_s": float(oldest) if oldest is not None else 0.0,
    }


def set_aside(limit: int = 5) -> list[dict[str, Any]]:
    """The first ``limit`` changes set aside (Elasticsearch refused their documents): the
    package, its name when it still exists, and why."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT o.object_id, p.name, o.refusal
            FROM indexing_outbox o LEFT JOIN portal_package p ON p.id = o.object_id
            WHERE o.retry_after > now()
            ORDER BY o.object_id
            LIMIT %s
            """,
            [limit],
        )
        return [
            {"package": pk, "name": name, "reason": reason}
            for pk, name, reason in cursor.fetchall()
        ]


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
