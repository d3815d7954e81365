"""bench.search.warmup: when Elasticsearch counts as warmed up, how a round is measured,
and what the report says."""

from __future__ import annotations

import itertools

import pytest

from bench.search import warmup
from bench.search.harness import CpuReading, Measurement, Outcome
from bench.search.phases import warms_up
from bench.search.warmup import Round, describe, round_of, settled, stop_reason

# Elasticsearch's CPU per search, round by round, right after a restart (the module's table).
MEASURED = [22.4, 11.5, 9.7, 9.0, 8.3, 7.8, 6.4, 5.9, 5.4, 5.2, 5.1, 5.2, 4.7, 4.8]


def test_not_settled_before_two_windows_of_rounds():
    assert not settled([])
    assert not settled([5.0] * 5)
    assert settled([5.0] * 6)


def test_settles_when_the_last_rounds_are_no_faster_than_those_before():
    # The measured rounds were still getting faster (the best of rounds 12 to 14, 4.7 ms, is
    # 8% below the best of rounds 9 to 11): at no round would the rule have stopped.
    assert not any(settled(MEASURED[:n]) for n in range(len(MEASURED) + 1))
    # Two more rounds no faster than 4.7 ms: settled.
    assert settled([*MEASURED, 4.75, 4.7])
    # A slower round (compilation, a collection) does not hide progress: the best counts.
    assert not settled([10, 9, 8, 9.5, 7, 9])
    assert settled([5.0, 4.9, 5.1, 5.2, 4.8, 5.0])


def test_exactly_the_gain_is_settled_and_more_is_not():
    assert settled([10, 10, 10, 9.5, 9.5, 9.5])  # 5% faster
    assert not settled([10, 10, 10, 9.4, 9.4, 9.4])  # 6%
    assert settled([10, 10, 10, 9.2, 9.2, 9.2], gain=0.1)


def measurement(completed: int, errors: int, es_seconds: float) -> Measurement:
    outcome = Outcome(completed=completed, errors=errors)
    cpu = CpuReading(10.0, {"elasticsearch": es_seconds}, {})
    return Measurement(outcome, 10.0, cpu)


def test_a_round_divides_the_engine_cpu_by_the_requests_answered():
    assert round_of(measurement(1000, 0, 4.0)) == Round(4.0, 1000, 0)
    # Failed requests (often answered fast) do not make the round look cheaper.
    assert round_of(measurement(1000, 200, 4.0)) == Round(5.0, 1000, 200)
    # No CPU at all: the engine's process was not found; nothing answered: no cost either.
    assert round_of(measurement(1000, 0, 0.0)).es_cpu_ms is None
    assert round_of(measurement(10, 10, 1.0)).es_cpu_ms is None


def test_why_it_may_stop():
    assert stop_reason([5.0] * 6, sent=600, minimum=1000) is None
    assert stop_reason([5.0] * 6, sent=1000, minimum=1000) == "settled"
    assert stop_reason([9, 8, 7, 6, 5, 4], sent=1000, minimum=1000) is None
    # When a round could not be measured, the minimum alone decides.
    assert stop_reason([None, None], sent=1000, minimum=1000) == "unmeasured"
    assert stop_reason([None, None], sent=999, minimum=1000) is None


def rounds(*costs: float | None, errors: int = 0):
    """A round function giving ``costs`` one after the other, 100 requests each."""
    given = iter(costs)
    return lambda: Round(next(given), 100, errors)


def test_the_warm_up_runs_until_settled():
    # Two more rounds no faster than 4.7 ms: the best of rounds 14 to 16 equals the best of
    # rounds 11 to 13, and no round after is asked for.
    result = warmup.warm_up(rounds(*MEASURED, 4.75, 4.7, 1.0), seconds=600, minimum=0)
    assert result["rounds_es_cpu_ms"] == [*MEASURED, 4.75, 4.7]
    assert result["stopped"] == "settled"
    assert result["requests"] == 100 * (len(MEASURED) + 2) and result["errors"] == 0


def test_not_settled_before_the_minimum_number_of_requests():
    # Flat from the start (a node warmed by earlier runs), but 1,000 requests are wanted.
    result = warmup.warm_up(rounds(*[5.0] * 12), seconds=600, minimum=1000)
    assert len(result["rounds_es_cpu_ms"]) == 10 and result["stopped"] == "settled"
    assert result["requests"] == 1000


def test_the_limit_ends_the_warm_up_after_at_least_one_round():
    result = warmup.warm_up(rounds(*MEASURED), seconds=0)
    assert result["rounds_es_cpu_ms"] == [MEASURED[0]] and result["stopped"] == "limit"
    # No round starts once the limit has passed: a clock 10 s later at every reading (the
    # start, then after each round) and a 25 s limit: rounds start at 0, 10 and 20 s.
    clock = itertools.count(0, 10).__next__
    result = warmup.warm_up(rounds(*MEASURED), seconds=25, minimum=0, clock=clock)
    assert len(result["rounds_es_cpu_ms"]) == 3 and result["stopped"] == "limit"


def test_a_round_where_everything_failed_stops_the_run():
    with pytest.raises(SystemExit, match="every warm-up request failed"):
        warmup.warm_up(rounds(5.0, errors=100), seconds=600)
    # Some errors are counted and reported, not fatal.
    result = warmup.warm_up(rounds(*[5.0] * 6, errors=3), seconds=600, minimum=0)
    assert result["errors"] == 18 and result["stopped"] == "settled"


def test_the_report_says_how_the_warm_up_ended():
    done = {
        "rounds_es_cpu_ms": [22.4, 4.8],
        "stopped": "settled",
        "requests": 20_900,
        "minimum": 20_000,
        "errors": 0,
        "seconds": 123.0,
    }
    note = describe(done, 180)
    assert "within 5% of the best of the three before, after 20,000 requests" in note
    assert "20,900 requests, 123.0 s, 0 errors" in note and "22.40 to 4.80 ms" in note
    assert "through the web app" in note
    short = describe({**done, "stopped": "limit", "requests": 9_000}, 60)
    assert "limit of 60 s, short of the 20,000 requests wanted" in short
    improving = describe({**done, "stopped": "limit"}, 180)
    assert "limit of 180 s, still more than 5% faster every three rounds" in improving
    blind = describe({**done, "stopped": "unmeasured", "rounds_es_cpu_ms": [None]}, 180)
    assert "its CPU could not be read" in blind and "went from" not in blind


def test_which_runs_warm_up():
    assert warms_up(["cold"], 180) and warms_up(["engine"], 180)
    assert warms_up(["warm_counts", "pg_fts"], 180)
    assert not warms_up(["pg_fts", "pg_ilike"], 180)  # no phase asks Elasticsearch
    assert not warms_up(["cold"], 0)
