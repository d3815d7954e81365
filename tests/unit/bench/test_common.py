"""Small helpers of the benchmarks."""

from __future__ import annotations

from pathlib import Path

from bench import common


def test_a_path_is_shown_from_the_checkout_or_whole():
    # `bench.search --output /tmp/x` wrote its results, then failed printing where.
    assert common.shown(common.RESULTS / "search.md") == Path("bench/results/search.md")
    assert common.shown(Path("/tmp/sg-w3t4-1.json")) == Path("/tmp/sg-w3t4-1.json")
