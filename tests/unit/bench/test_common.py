"""Small helpers of the benchmarks."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import common


def test_a_path_is_shown_from_the_checkout_or_whole():
    # `bench.search --output /tmp/x` wrote its results, then failed printing where.
    assert common.shown(common.RESULTS / "search.md") == Path("bench/results/search.md")
    assert common.shown(Path("/tmp/sg-w3t4-1.json")) == Path("/tmp/sg-w3t4-1.json")


def test_a_service_not_answering_stops_the_benchmark_with_what_to_do():
    # With Elasticsearch down, bench.relevance died with a 40-line connection traceback.
    def refused():
        raise ConnectionRefusedError("[Errno 111] Connection refused\nmore detail")

    with pytest.raises(SystemExit) as stopped:
        common.require_services({"PostgreSQL": lambda: None, "Elasticsearch": refused})
    message = str(stopped.value)
    assert "Elasticsearch (ConnectionRefusedError: [Errno 111] Connection refused)" in message
    assert "PostgreSQL" not in message and "make services" in message
    common.require_services({"PostgreSQL": lambda: None})  # all answering: no exit
