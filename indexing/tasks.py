"""Celery tasks that write to Elasticsearch (only these and management commands write).

* ``process_outbox`` (queue ``indexing``): kicked after every commit that changed packages;
  drains the outbox in coalesced, versioned bulk batches. Engine errors are retried with
  exponential backoff; the rows stay in the outbox meanwhile, so nothing is lost even if the
  retries run out.
* ``sweep_outbox`` (queue ``maintenance``, every few seconds from beat): records the backlog
  and the age of the oldest pending change, and re-sends work the broker or a dead worker
  dropped.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from celery import shared_task
from django.core.cache import cache
from django.db import DatabaseError
from elasticsearch import ApiError, TransportError

from indexing import writer

logger = logging.getLogger(__name__)

ENGINE_ERRORS = (ApiError, TransportError, writer.BulkWriteError, DatabaseError, ConnectionError)
RETRY_GUARD_KEY = "indexing:retry-scheduled"
STATS_KEY = "indexing:outbox-stats"
HEARTBEAT_KEY = "indexing:worker-heartbeat"  # read by /readyz (config/health.py)


@shared_task(bind=True, acks_late=True, max_retries=None, ignore_result=True)
def process_outbox(self: Any) -> dict[str, int]:
    """Write pending changes to Elasticsearch (idempotent: safe to run any number of times)."""
    try:
        written, more = writer.process_outbox()
    except ENGINE_ERRORS as exc:
        countdown = min(30, 2 ** min(self.request.retries, 5))
        # One retry chain at a time is enough: the outbox holds the work, not the message.
        try:
            first = cache.add(RETRY_GUARD_KEY, 1, timeout=countdown + 5)
        except Exception:
            first = False
        logger.warning("indexing failed (%s); %s", exc, "retrying" if first else "left to sweeper")
        record_error(exc)
        if first:
            raise self.retry(exc=exc, countdown=countdown) from exc
        return {"written": 0, "more": 1}
    if more:
        kick()
    return {"written": written, "more": int(more)}


@shared_task(acks_late=True, ignore_result=True)
def sweep_outbox() -> dict[str, Any]:
    """Record the backlog; if anything is pending, make sure a worker processes it."""
    stats = writer.outbox_stats()
    try:
        cache.set(STATS_KEY, stats, timeout=300)
        cache.set(HEARTBEAT_KEY, time.time(), timeout=None)
    except Exception as exc:
        logger.warning("cannot record outbox stats: %s", exc)
    if stats["backlog"]:
        logger.info(
            "outbox: %s pending, oldest %.1fs old; processing",
            stats["backlog"],
            stats["oldest_age_s"],
        )
        process_outbox.apply_async(queue="indexing")
    return stats


ERRORS_KEY = "indexing:recent-errors"


def record_error(exc: BaseException) -> None:
    """Keep the last 20 indexing errors for the admin's search status page."""
    try:
        errors = cache.get(ERRORS_KEY) or []
        errors.insert(0, {"at": time.time(), "error": f"{type(exc).__name__}: {exc}"[:500]})
        cache.set(ERRORS_KEY, errors[:20], timeout=7 * 24 * 3600)
    except Exception:
        logger.debug("cannot record the indexing error", exc_info=True)


def kick() -> bool:
    """Ask a worker to process the outbox now. Never raises: if the broker is down, the
    change waits in the outbox for the sweeper. Returns whether the message was sent."""
    try:
        process_outbox.apply_async(queue="indexing", retry=False)
        return True
    except Exception as exc:
        logger.warning(
            "could not reach the Celery broker (%s); the change stays in the indexing outbox "
            "and the periodic sweeper will send it",
            exc,
        )
        return False
