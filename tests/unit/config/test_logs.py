"""How the project's logs read (config.logs)."""

from __future__ import annotations

import io
import logging
import os

from config.logs import RetriesOnOneLine
from tests.conftest import run_python


def test_an_elasticsearch_retry_is_one_line_not_a_traceback():
    """With Elasticsearch down, each retried request logged a whole traceback: a management
    command printed about 110 lines before saying what failed."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(RetriesOnOneLine())
    logger = logging.getLogger("elastic_transport.transport.test")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        try:
            raise ConnectionRefusedError("[Errno 111] Connection refused")
        except ConnectionRefusedError:
            logger.warning("Retrying request after failure (attempt %d of %d)", 1, 3, exc_info=True)
        other = logging.getLogger("portal.test")
        other.addHandler(handler)
        other.propagate = False
        try:
            raise ValueError("a bug")
        except ValueError:
            other.exception("kept whole")
    finally:
        logger.removeHandler(handler)
    lines = out.getvalue().splitlines()
    assert lines[0] == (
        "Retrying request after failure (attempt 1 of 3) "
        "(ConnectionRefusedError: [Errno 111] Connection refused)"
    )
    assert lines[1] == "kept whole" and "Traceback" in lines[2]  # other loggers untouched


def test_a_worker_logs_an_elasticsearch_retry_on_one_line():
    """Celery sets up the worker's logging itself, over Django's: with Elasticsearch down the
    worker's log took a whole traceback per retry (6,245 of them in one test run, 26 MB)."""
    script = """
import logging
from config.celery import app
app.log.setup(loglevel="INFO", logfile=None, redirect_stdouts=False, colorize=False)
try:
    raise ConnectionRefusedError("[Errno 111] Connection refused")
except ConnectionRefusedError:
    logging.getLogger("elastic_transport.node_pool").warning(
        "Node has failed for %d times in a row", 2, exc_info=True
    )
"""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.test_settings"}
    result = run_python("-c", script, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert (
        "Node has failed for 2 times in a row "
        "(ConnectionRefusedError: [Errno 111] Connection refused)"
    ) in result.stderr
