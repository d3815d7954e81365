"""Periodic search maintenance (queue ``maintenance``)."""

from __future__ import annotations

from celery import shared_task

from search import analytics


@shared_task(ignore_result=True, time_limit=60, soft_time_limit=50)
def flush_query_log() -> int:
    """Move logged searches from Redis into the daily query statistics."""
    return analytics.flush()
