"""The Celery application (Redis broker). Workers run ``celery -A config worker``.

A worker sets up its logging itself, replacing the root logger's handlers that Django's
``LOGGING`` configured; :func:`_retries_on_one_line` gives Celery's handlers the filter
Django's have (``config.logs.RetriesOnOneLine``). Without it, a worker whose Elasticsearch
was down logged every retry with its whole traceback: 6,245 of them, 26 MB of log, in one
test run.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from celery import Celery
from celery.signals import after_setup_logger, after_setup_task_logger

from config.logs import RetriesOnOneLine

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@after_setup_logger.connect
@after_setup_task_logger.connect
def _retries_on_one_line(logger: logging.Logger, **kwargs: Any) -> None:
    # A handler both loggers share gets the filter twice: the second finds nothing to do.
    for handler in logger.handlers:
        handler.addFilter(RetriesOnOneLine())
