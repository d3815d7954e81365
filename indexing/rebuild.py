"""Full, zero-downtime rebuild of the package index.

1. Create a new timestamped index with bulk-load settings (no refresh, no replicas).
2. Add it to the **write alias**, so every incremental write made during the rebuild goes to
   the old and the new index (``indexing.writer`` writes to every index behind the alias).
3. Stream all rows from PostgreSQL by primary-key ranges (keyset, never OFFSET; one batch in
   memory at a time) and bulk-load them with external versions, so a concurrent newer write is
   never overwritten by the loader's older copy.
4. Restore refresh and replicas, refresh, and move the **read alias** to the new index and the
   write alias off the old one in one atomic ``update_aliases`` call.
5. Keep the previous index for ``--rollback``; delete older ones.

A Redis lock prevents two rebuilds at once (incremental indexing keeps working meanwhile).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from django.core.cache import cache
from elasticsearch import helpers

from indexing.writer import document_actions
from portal.models import Package
from search import indices
from search.documents import PackageDocument

logger = logging.getLogger(__name__)

LOCK_KEY = "indexing:rebuild-lock"
LOCK_TTL = 3 * 3600


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
) -> RebuildResult:
    """Build a new index from PostgreSQL and switch the read alias to it atomically."""
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
        done = 0
        for batch in package_batches(batch_size):
            for ok, item in helpers.streaming_bulk(
                client,
                document_actions(batch, name),
                chunk_size=batch_size,
                raise_on_error=False,
                max_retries=3,
            ):
                if not ok and next(iter(item.values())).get("status") != 409:
                    raise RebuildError(f"bulk load failed: {item}")
            done += len(batch)
            if on_progress:
                on_progress(len(batch))
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
        client.indices.update_aliases(actions=actions)
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
    indices.client().indices.update_aliases(actions=actions)
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
