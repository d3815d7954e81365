"""Structured logs: one JSON object a line (``DJANGO_LOG_FORMAT=json``, the default with
DEBUG off), for log shippers; and Elasticsearch's retries on one line each."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "process": record.process,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class RetriesOnOneLine(logging.Filter):
    """The Elasticsearch client (``elastic_transport``) logs every retry of a failed request
    as a warning with the whole traceback: with Elasticsearch down, a management command
    printed about 110 lines before its own error said what failed. The exception's own
    words say the same on the warning's line; other loggers keep their tracebacks."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith("elastic_transport") and record.exc_info:
            exc = record.exc_info[1]
            record.msg = f"{record.getMessage()} ({type(exc).__name__}: {exc})"
            record.args = None
            record.exc_info = None
            record.exc_text = None
        return True
