"""Celery tasks that write to Elasticsearch. Only these tasks and management commands write."""

from __future__ import annotations

import logging

from celery import shared_task

from indexing import writer

logger = logging.getLogger(__name__)


@shared_task(acks_late=True)
def index_packages(package_ids: list[int]) -> dict[str, int]:
    """Re-read the packages and write their current state (a missing row is a delete)."""
    return writer.sync_packages(package_ids)
