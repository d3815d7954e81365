"""bench.search.warmup: when Elasticsearch counts as warmed up, and what the report says."""

from __future__ import annotations

import pytest

from bench.search import warmup
from bench.search.warmup import Round, describe, settled

# Elasticsearch's CPU per search, round by round, right after a restart (the module's table).
MEASURED = [22.4, 11.5, 9.7, 9.0, 8.3, 7.8, 6.4, 5.9, 5.4, 5.2, 5.1, 5.2, 4.7, 4.8]


def test_not_settled_before_two_windows_of_rounds():
    assert not settled([])
    assert not settled([5.0] * 5)
    assert settled([5.0] * 6)


def test_settles_when_the_last_rounds_are_no_faster_than_those_before():
    # The measured rounds were still getting faster (the best of rounds 12 to 14, 4.7 ms, is
    # 8% below the best of rounds 9 to 11): at no round would the warm-up have stopped.
    assert not any(settled(MEASURED[:n]) for n in range(len(MEASURED) + 1))
    # Two more rounds no faster than 4.7 ms: settled.
    assert settled([*MEASURED, 4.75, 4.7])
    # A wave of compilation can make one round slower; the best of each window counts.
    assert not settled([10, 9, 8, 9.5, 7, 9])
    assert settled([5.0, 4.9, 5.1, 5.2, 4.8, 5.0])


def test_the_gain_that_counts_as_faster_is_a_parameter():
    costs = [10, 10, 10, 9.2, 9.2, 9.2]  # 8% faster
    assert not settled(costs)
    assert settled(costs, gain=0.1)


def test_the_report_says_how_the_warm_up_ended():
    done = {
        "rounds_es_cpu_ms": [22.4, 4.8],
        "settled": True,
        "requests": 1246,
        "errors": 0,
        "seconds": 41.2,
    }
    note = describe(done, 180)
    assert "until a round was no faster" in note
    assert "1,246 requests" in note and "41.2 s" in note and "22.40 to 4.80 ms" in note
    assert "through the web app" in note
    cut = {**done, "settled": False}
    assert "limit of 180 s, still getting faster" in describe(cut, 180)
    skipped = {**done, "rounds_es_cpu_ms": []}
    assert describe(skipped, 0) == "Elasticsearch was not warmed up (--engine-warmup 0)."


def rounds(*costs: float, errors: int = 0):
    """A round function giving ``costs`` one after the other, 100 requests each."""
    given = iter(costs)
    return lambda: Round(next(given), 100, errors)


def test_the_warm_up_runs_until_settled():
    # Two more rounds no faster than 4.7 ms: the best of rounds 14 to 16 equals the best of
    # rounds 11 to 13, and no round after is asked for.
    result = warmup.warm_up(rounds(*MEASURED, 4.75, 4.7, 1.0), seconds=600, minimum=0)
    assert result["rounds_es_cpu_ms"] == [*MEASURED, 4.75, 4.7]
    assert result["settled"] is True
    assert result["requests"] == 100 * (len(MEASURED) + 2) and result["errors"] == 0


def test_not_settled_before_the_minimum_number_of_requests():
    # Flat from the start (a node warmed by earlier runs), but 1,000 requests are wanted.
    result = warmup.warm_up(rounds(*[5.0] * 12), seconds=600, minimum=1000)
    assert len(result["rounds_es_cpu_ms"]) == 10 and result["settled"] is True
    assert result["requests"] == 1000


def test_the_limit_ends_the_warm_up_after_at_least_one_round():
    result = warmup.warm_up(rounds(*MEASURED), seconds=0)
    assert result["rounds_es_cpu_ms"] == [MEASURED[0]] and result["settled"] is False


def test_a_round_where_everything_failed_stops_the_run():
    with pytest.raises(SystemExit, match="every warm-up request failed"):
        warmup.warm_up(rounds(5.0, errors=100), seconds=600)
    # Some errors are counted and reported, not fatal.
    result = warmup.warm_up(rounds(*[5.0] * 6, errors=3), seconds=600, minimum=0)
    assert result["errors"] == 18 and result["settled"] is True
