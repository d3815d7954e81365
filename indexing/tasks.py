"""Celery tasks that write to Elasticsearch (only these and management commands write).

* ``process_outbox`` (queue ``indexing``): kicked after every commit that changed packages;
  drains the outbox in coalesced, versioned bulk batches. Engine errors are retried with
  exponential backoff; the rows stay in the outbox meanwhile, so nothing is lost even if the
  retries run out.
* ``sweep_outbox`` (queue ``maintenance``, every few seconds from beat): records the backlog
  and the age of the oldest pending change (and so the worker's heartbeat), and re-sends
  work the broker or a dead worker dropped. A database it cannot read (down, or not
  migrated yet: `make services` starts the worker before `migrate`) is one warning line
  saying what to do, and an error on the status page.
* ``expire_previous_index`` (queue ``maintenance``, from beat): drops the rollback target
  once its retention period (``SEARCH_ROLLBACK_HOURS``) is over.
"""

from __future__ import annotations

import logging
from typing import Any

import redis
from celery import shared_task
from django.db import DatabaseError
from elasticsearch import ApiError, TransportError
from psycopg2 import errorcodes

from indexing import rebuild, status, writer
from search import freshness, stores

logger = logging.getLogger(__name__)

# Failures that leave the outbox rows in place, to be written again later.
RETRIED = (
    ApiError,
    TransportError,
    writer.BulkWriteError,
    DatabaseError,
    ConnectionError,
    freshness.WriteNotRegistered,
    freshness.GenerationNotBumped,
    rebuild.IndexNotReady,
    redis.RedisError,  # the rebuild lease and the freshness registry live in Redis
)
RETRY_GUARD_KEY = "indexing:retry-scheduled"


@shared_task(bind=True, acks_late=True, max_retries=None, ignore_result=True)
def process_outbox(self: Any) -> dict[str, int]:
    """Write pending changes to Elasticsearch (idempotent: safe to run any number of times)."""
    try:
        written, more = writer.process_outbox()
    except RETRIED as exc:
        countdown = min(30, 2 ** min(self.request.retries, 5))
        # One retry chain at a time is enough: the outbox holds the work, not the message.
        try:
            first = bool(
                stores.coordination().set(stores.key(RETRY_GUARD_KEY), 1, nx=True, ex=countdown + 5)
            )
        except redis.RedisError:
            first = False
        if isinstance(exc, rebuild.IndexNotReady):  # the first index is being built: by design
            logger.info("changes wait for the first index (%s)", exc)
        else:
            logger.warning(
                "indexing failed (%s); %s", exc, "retrying" if first else "left to sweeper"
            )
            status.record_error(exc)
        if first:
            raise self.retry(exc=exc, countdown=countdown) from exc
        return {"written": 0, "more": 1}
    except Exception as exc:  # a bug: shown on the status page, the rows stay for later
        logger.exception("indexing failed unexpectedly; the changes stay in the outbox")
        status.record_error(exc)
        raise
    if more:
        kick()
    return {"written": written, "more": int(more)}


@shared_task(acks_late=True, ignore_result=True)
def sweep_outbox() -> dict[str, Any]:
    """Record the backlog; if anything is pending, make sure a worker processes it."""
    try:
        stats = writer.outbox_stats()
    except DatabaseError as exc:  # every 5 s: a line that says what to do, not a traceback
        problem = RuntimeError(_outbox_unreadable(exc))
        logger.warning("%s", problem)
        status.record_error(problem)
        return {}
    try:
        status.record_heartbeat(stats)
    except redis.RedisError as exc:
        logger.warning("cannot record outbox stats: %s", exc)
    if stats["backlog"] > stats["refused"]:  # refused rows wait for their time (writer)
        logger.info(
            "outbox: %s pending, oldest %.1fs old; processing",
            stats["backlog"],
            stats["oldest_age_s"],
        )
        process_outbox.apply_async(queue="indexing")
    return stats


def _outbox_unreadable(exc: DatabaseError) -> str:
    first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if getattr(exc.__cause__, "pgcode", None) == errorcodes.UNDEFINED_TABLE:
        # `make services` starts the worker before `migrate` has made the tables.
        return (
            f"the database has no indexing outbox yet ({first_line}): "
            "run `python manage.py migrate`"
        )
    return (
        f"cannot read the indexing outbox ({first_line}); is PostgreSQL up? "
        "`python -m config.services status` says"
    )


@shared_task(acks_late=True, ignore_result=True)
def expire_previous_index() -> str | None:
    """Drop the rollback target when its retention period is over."""
    return rebuild.expire_previous()


def kick() -> bool:
    """Ask a worker to process the outbox now. Never raises: if the broker is down, the
    change waits in the outbox for the sweeper. Returns whether the message was sent."""
    try:
        process_outbox.apply_async(queue="indexing", retry=False)
        return True
    except Exception as exc:  # any broker failure (kombu raises many kinds)
        logger.warning(
            "could not reach the Celery broker (%s); the change stays in the indexing outbox "
            "and the periodic sweeper will send it",
            exc,
        )
        return False
