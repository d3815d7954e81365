"""How the project's logs read (config.logs)."""

from __future__ import annotations

import io
import logging

from config.logs import RetriesOnOneLine


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
