"""Full, zero-downtime rebuild of the package index.

1. Create a new timestamped index with bulk-load settings (no refresh, no replicas).
2. Add it to the **write alias**, so every incremental write made during the rebuild goes to
   the old and the new index (``indexing.writer`` writes to every index behind the alias).
3. Stream all rows from PostgreSQL by primary-key ranges (keyset, never OFFSET; a bounded
   queue holds a few batches, so memory stays flat however large the catalog) and bulk-load
   them from two sender threads with external versions, so a concurrent newer write is never
   overwritten by the loader's older copy.
4. Restore refresh and replicas, refresh, and move the **read alias** to the new index and the
   write alias off the old one in one atomic ``update_aliases`` call.
5. Keep the previous index for ``--rollback``; delete older ones.

A Redis lock prevents two rebuilds at once (incremental indexing keeps working meanwhile).
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from django.core.cache import cache
from django.db import connection
from elasticsearch import Elasticsearch, helpers

from indexing.writer import document_actions
from portal.models import Maintainer, Package, Section, Tag
from search import freshness, indices
from search.documents import PackageDocument

logger = logging.getLogger(__name__)

LOCK_KEY = "indexing:rebuild-lock"
LOCK_TTL = 3 * 3600

# The load is a bounded producer/consumer pipeline: this thread reads batches from
# PostgreSQL and turns them into bulk actions while SENDERS threads send earlier batches, so
# reading, preparing and Elasticsearch's indexing overlap. At most QUEUE_DEPTH batches wait
# between them (plus one being built and one in flight per sender): memory stays flat
# whatever the size of the catalog.
SENDERS = 2
QUEUE_DEPTH = 4
# A bulk request of a big batch can take longer than the client's default timeout while
# Elasticsearch merges segments; a retried request would only repeat the same work.
BULK_TIMEOUT = 120
# Packages compared, at the start of every load, between the set-based fast path and
# PackageDocument.prepare(); any difference switches the load to the ORM path.
FAST_PATH_SAMPLE = 50


class RebuildError(RuntimeError):
    """The rebuild failed; the message says why and what to do."""


@dataclass
class RebuildResult:
    index: str
    previous: str | None
    documents: int
    seconds: float
    removed: list[str]


def package_batches(batch_size: int) -> Iterator[list[Package]]:
    """All packages, in primary-key order, one batch of full rows at a time."""
    last = 0
    base = PackageDocument.source_queryset().order_by("pk")
    while True:
        batch = list(base.filter(pk__gt=last)[:batch_size])
        if not batch:
            return
        yield batch
        last = batch[-1].pk


def rebuild(
    *,
    batch_size: int = 1000,
    keep: int = 1,
    on_progress: Callable[[int], None] | None = None,
    dry_run: bool = False,
    merge: bool = True,
    on_step: Callable[[str], None] | None = None,
) -> RebuildResult:
    """Build a new index from PostgreSQL and switch the read alias to it atomically.

    With ``merge`` (the default), the loaded index is force-merged to one segment before it
    goes live: searches over one segment are cheaper, and a catalog changes little between
    rebuilds. ``on_step`` is told about each phase after the load."""
    total = Package.objects.count()
    if dry_run:
        return RebuildResult(indices.new_index_name(), _current(), total, 0.0, [])
    token = str(time.time())
    if not cache.add(LOCK_KEY, token, LOCK_TTL):
        raise RebuildError(
            "another rebuild holds the lock; wait for it to finish "
            f"(or, if it crashed, delete the cache key '{LOCK_KEY}')"
        )
    started = time.monotonic()
    client = indices.client()
    previous = _current()
    name = indices.new_index_name()
    try:
        indices.create_index(name, bulk_load=True)
        # From here on, incremental writes reach the new index too.
        client.indices.update_aliases(
            actions=[{"add": {"index": name, "alias": indices.write_alias()}}]
        )
        done = _load(client, name, batch_size, on_progress)
        live = indices.index_settings()
        client.indices.put_settings(
            index=name,
            settings={
                "number_of_replicas": live["number_of_replicas"],
                "refresh_interval": live["refresh_interval"],
                "gc_deletes": live["gc_deletes"],
            },
        )
        client.indices.refresh(index=name)
        if merge:
            if on_step:
                on_step("merging the new index into one segment")
            client.options(request_timeout=1800).indices.forcemerge(index=name, max_num_segments=1)
        if on_step:
            on_step("waiting for the new index to be allocated, then switching the aliases")
        client.cluster.health(index=name, wait_for_status="yellow", timeout="60s")
        actions = [
            {"add": {"index": name, "alias": indices.read_alias()}},
            {"add": {"index": name, "alias": indices.write_alias()}},
        ]
        for old in indices.indices_behind(indices.read_alias()):
            actions.append({"remove": {"index": old, "alias": indices.read_alias()}})
        for old in indices.indices_behind(indices.write_alias()):
            if old != name:
                actions.append({"remove": {"index": old, "alias": indices.write_alias()}})
        # Cached facet counts belong to the old index: the generation moves on (no search
        # uses the cache while the swap is in flight).
        with freshness.writing():
            client.indices.update_aliases(actions=actions)
            # Incremental writes sent to the new index since its last refresh (its refresh
            # interval is the live one again) must be searchable before the generation moves.
            client.indices.refresh(index=name)
    except Exception:
        # Leave the live index untouched; drop the half-built one.
        with contextlib.suppress(Exception):
            client.indices.delete(index=name)
        raise
    finally:
        if cache.get(LOCK_KEY) == token:
            cache.delete(LOCK_KEY)
    removed = _remove_old(keep=keep, current=name, previous=previous)
    return RebuildResult(name, previous, done, time.monotonic() - started, removed)


def rollback() -> str:
    """Point both aliases back at the newest older index; return its name."""
    current = _current()
    candidates = [i for i in _all_indices() if i != current]
    if not candidates:
        raise RebuildError("no previous index to roll back to")
    target = candidates[-1]
    actions = [
        {"add": {"index": target, "alias": indices.read_alias()}},
        {"add": {"index": target, "alias": indices.write_alias()}},
    ]
    if current:
        actions += [
            {"remove": {"index": current, "alias": indices.read_alias()}},
            {"remove": {"index": current, "alias": indices.write_alias()}},
        ]
    with freshness.writing():
        indices.client().indices.update_aliases(actions=actions)
        indices.client().indices.refresh(index=target)
    return target


def _current() -> str | None:
    behind = indices.indices_behind(indices.read_alias())
    return behind[0] if behind else None


def _all_indices() -> list[str]:
    found = indices.client().indices.get(index=indices.index_pattern(), expand_wildcards="open")
    return sorted(found.keys())


def _remove_old(*, keep: int, current: str, previous: str | None) -> list[str]:
    """Delete indices older than the ``keep`` most recent ones before ``current``."""
    older = [i for i in _all_indices() if i != current]
    doomed = older[: max(0, len(older) - keep)]
    for name in doomed:
        indices.client().indices.delete(index=name)
    return doomed


# -- loading ----------------------------------------------------------------------------


def _load(
    client: Elasticsearch,
    index: str,
    batch_size: int,
    on_progress: Callable[[int], None] | None,
) -> int:
    """Stream every package into ``index``; return how many documents were written."""
    if _fast_path_agrees(batch_size):
        batches: Iterator[list[dict[str, Any]]] = fast_action_batches(index, batch_size)
    else:
        logger.warning(
            "reindex: the fast document path differs from PackageDocument.prepare(); "
            "loading through the ORM instead (slower)"
        )
        batches = (list(document_actions(batch, index)) for batch in package_batches(batch_size))
    senders = _BulkSenders(client.options(request_timeout=BULK_TIMEOUT), batch_size)
    done = 0
    try:
        for actions in batches:
            senders.put(actions)
            done += senders.report(on_progress)
        senders.finish()
    finally:
        senders.stop()
    return done + senders.report(on_progress)


class _BulkSenders:
    """Threads sending batches of bulk actions taken from a bounded queue.

    The first failure (any error but a version conflict) stops the load: it is raised in
    the reading thread at its next ``put`` or at ``finish``.
    """

    def __init__(self, client: Elasticsearch, chunk_size: int) -> None:
        self.client = client
        self.chunk_size = chunk_size
        self.pending: queue.Queue[list[dict[str, Any]] | None] = queue.Queue(QUEUE_DEPTH)
        self.sent: queue.SimpleQueue[int] = queue.SimpleQueue()
        self.error: BaseException | None = None
        self.abort = threading.Event()
        self.threads = [
            threading.Thread(target=self._run, name=f"reindex-bulk-{i}", daemon=True)
            for i in range(SENDERS)
        ]
        for thread in self.threads:
            thread.start()

    def _run(self) -> None:
        while True:
            actions = self.pending.get()
            if actions is None:
                return
            if self.abort.is_set():
                continue  # drain without sending
            try:
                self._send(actions)
                self.sent.put(len(actions))
            except BaseException as exc:
                if self.error is None:
                    self.error = exc
                self.abort.set()

    def _send(self, actions: list[dict[str, Any]]) -> None:
        for ok, item in helpers.streaming_bulk(
            self.client,
            actions,
            chunk_size=self.chunk_size,
            raise_on_error=False,
            max_retries=3,
        ):
            if not ok and next(iter(item.values())).get("status") != 409:
                raise RebuildError(f"bulk load failed: {item}")

    def _raise_failure(self) -> None:
        if self.error is not None:
            raise self.error

    def put(self, actions: list[dict[str, Any]]) -> None:
        while True:
            self._raise_failure()
            try:
                self.pending.put(actions, timeout=0.5)
                return
            except queue.Full:
                continue

    def report(self, on_progress: Callable[[int], None] | None) -> int:
        """Documents sent since the last call (passed to ``on_progress`` in this thread)."""
        total = 0
        while True:
            try:
                count = self.sent.get_nowait()
            except queue.Empty:
                return total
            total += count
            if on_progress:
                on_progress(count)

    def finish(self) -> None:
        """Wait until everything queued is sent; raise the first failure."""
        for _ in self.threads:
            self.pending.put(None)
        for thread in self.threads:
            thread.join()
        self._raise_failure()

    def stop(self) -> None:
        """Stop the threads (after ``finish``, or on a failure: nothing more is sent)."""
        if not any(thread.is_alive() for thread in self.threads):
            return
        self.abort.set()
        for _ in self.threads:
            with contextlib.suppress(queue.Full):
                self.pending.put(None, timeout=BULK_TIMEOUT)
        for thread in self.threads:
            thread.join(timeout=BULK_TIMEOUT)


# The fast document path: one set-based query per batch (keyset by primary key, tags
# aggregated in the same statement, so a document is one consistent snapshot of its row)
# and plain tuples instead of model instances. It must build exactly what
# PackageDocument.prepare() builds; rebuild() checks a sample against it before every load
# (and falls back to the ORM path on any difference), and bench/reindex.py checks more.


def _fast_sql(where: str) -> str:
    package = Package._meta
    through = Package.tags.through._meta
    tag = Tag._meta
    return f"""
        SELECT p.id, p.row_version, p.name, p.version, p.summary, p.description, s.name,
               p.priority, p.architecture, m.name,
               ARRAY(
                   SELECT t.facet || '::' || t.value
                   FROM {through.db_table} pt JOIN {tag.db_table} t ON t.id = pt.tag_id
                   WHERE pt.package_id = p.id
               ),
               p.homepage, p.installed_size_kb, p.download_size_bytes,
               p.reverse_dependency_count
        FROM {package.db_table} p
        JOIN {Section._meta.db_table} s ON s.id = p.section_id
        JOIN {Maintainer._meta.db_table} m ON m.id = p.maintainer_id
        WHERE {where}
        ORDER BY p.id
    """


def _fast_source(row: tuple) -> dict[str, Any]:
    (_, row_version, name, version, summary, description, section, priority, architecture,
     maintainer, tags, homepage, installed, download, popularity) = row  # fmt: skip
    return {
        "name": name,
        "version": version,
        "summary": summary,
        "description": description,
        "section": section,
        "priority": priority,
        "architecture": architecture,
        "maintainer": maintainer,
        "tags": sorted(tags),
        "homepage": homepage,
        "installed_size_kb": installed,
        "download_size_bytes": download,
        "popularity": popularity,
        "row_version": row_version,
    }


def fast_action_batches(index: str, batch_size: int) -> Iterator[list[dict[str, Any]]]:
    """Bulk index actions for all packages, in primary-key order, one batch at a time."""
    sql = _fast_sql("p.id > %s") + " LIMIT %s"
    last = 0
    while True:
        with connection.cursor() as cursor:
            cursor.execute(sql, [last, batch_size])
            rows = cursor.fetchall()
        if not rows:
            return
        yield [
            {
                "_op_type": "index",
                "_index": index,
                "_id": row[0],
                "version": row[1],
                "version_type": "external_gte",
                "_source": _fast_source(row),
            }
            for row in rows
        ]
        last = rows[-1][0]


def fast_sources(ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    """The fast path's document bodies for these packages (id -> _source)."""
    with connection.cursor() as cursor:
        cursor.execute(_fast_sql("p.id = ANY(%s)"), [sorted(set(ids))])
        return {row[0]: _fast_source(row) for row in cursor.fetchall()}


def fast_path_mismatches(ids: Iterable[int]) -> list[int]:
    """Ids whose fast-path body differs from ``PackageDocument().prepare(package)``.

    A package whose row changed between the two reads (another row version) is skipped.
    Bodies are compared as serialised JSON (keys sorted: ``prepare()`` orders them by the
    document's field set, which varies between processes), so types must match too.
    """
    doc = PackageDocument()
    packages = {p.pk: p for p in PackageDocument.source_queryset().filter(pk__in=list(ids))}
    fast = fast_sources(packages)
    differ = []
    for pk, package in sorted(packages.items()):
        body = fast.get(pk)
        if body is not None and body["row_version"] != package.row_version:
            continue
        expected = doc.prepare(package)
        if body is None or _canonical(body) != _canonical(expected):
            differ.append(pk)
    return differ


def _canonical(body: dict[str, Any]) -> str:
    return json.dumps(body, sort_keys=True)


def _fast_path_agrees(batch_size: int) -> bool:
    """Whether the fast path builds the same documents as the ORM path (a sample)."""
    sample = list(
        Package.objects.order_by("pk").values_list("pk", flat=True)[: min(batch_size, 1000)]
    )[:: max(1, min(batch_size, 1000) // FAST_PATH_SAMPLE)]
    return not fast_path_mismatches(sample)
