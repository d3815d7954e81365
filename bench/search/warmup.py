"""Warm Elasticsearch up before anything is measured.

A freshly started Elasticsearch costs several times what the same searches cost a minute
later: the JIT compiler has not compiled its search code yet, and the global ordinals of
the facet fields, the node query cache and the shard request cache are still empty. Measured
here with a scratch script (not kept: 2 cores, 63k packages, each search's first request
sent straight to Elasticsearch at concurrency 2, rounds of 623 requests, right after a
restart):

| round | 1 | 2 | 3 | 5 | 7 | 9 | 11 | 13 | 14 |
| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |
| ES CPU ms per search | 22.4 | 11.5 | 9.7 | 8.3 | 6.4 | 5.4 | 5.1 | 4.7 | 4.8 |

The cold phase (c=8, 20 s), three runs back to back: right after a restart, p95 194 ms, 77
searches a second and 18.0 ms of Elasticsearch CPU a search (``search-warmup-none.md``);
right after another restart and this warm-up (19 rounds, 20,900 requests, 140 s), 82.9 ms,
155 a second and 5.8 ms (``search-warmup.md``); then again without a warm-up, on the node
the previous run had warmed, 77.6 ms, 167 a second and 5.6 ms (``search-warmup-warm.md``).
(The machine was slower during these three than during the runs of ``search-cold.md``: the
web app spent 4.6 to 5.5 ms of CPU a search against 4.5.) A benchmark started right after
``services up`` (a fresh clone, CI) measured its first phases on a cold node.

So before the first measurement ``bench.search`` runs the cold mix through the web app
(every search and every autocomplete prefix, the index generation moved on before each, so
every code path of a cold search runs: typo tolerance, "did you mean", the counts of a
browse) in rounds, until :func:`stop_reason` says it may stop (the best of three rounds
within 5% of the best of the three before, after ``MIN_REQUESTS`` at least) or no round may
start any more (``--engine-warmup`` seconds). A site serves from a warm node; this measures
that, and the report says how the warm-up went.

What did not work (runs not kept): rounds of each search's first request straight to
Elasticsearch (1,100 requests a round, autocomplete included) settled by the rule after 21
rounds, and the cold phase after them still cost 6.2 ms of Elasticsearch CPU a search (p95
79 ms); those requests never ask for typo tolerance or "did you mean". Through the web app,
the rule alone stopped after 11,000 requests: 5.7 ms (p95 78 ms). Hence the minimum.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from bench import common
from bench.search import harness

WINDOW = 3  # rounds compared with the three before them
GAIN = 0.05  # the best of three less than 5% below the best of the three before: settled
# And not before this many requests: rounds are noisy (a round 15% slower than the one
# before is common) and the cost keeps falling slowly for a while, so the rule alone stopped
# too early. Measured in runs not kept, back to back: stopping by the rule alone after
# 11,000 requests, the cold phase then cost 5.7 ms of Elasticsearch CPU a search (p95 78 ms);
# with this minimum, 5.0 ms (p95 68.1 ms), as on nodes warmed by an hour of earlier runs
# (4.8 to 5.0 ms).
MIN_REQUESTS = 20_000


def settled(costs: Sequence[float], window: int = WINDOW, gain: float = GAIN) -> bool:
    """Whether the best (lowest) CPU per request of the last ``window`` rounds is less than
    ``gain`` below the best of the ``window`` rounds before them. Rounds are compared in
    windows, by their best, because single rounds are noisy."""
    if len(costs) < 2 * window:
        return False
    recent, before = min(costs[-window:]), min(costs[-2 * window : -window])
    return recent >= (1 - gain) * before


@dataclass
class Round:
    """One pass over the warm-up requests: Elasticsearch's CPU per answered request (None:
    not measured), how many requests completed and how many of them failed."""

    es_cpu_ms: float | None
    requests: int
    errors: int


def round_of(measurement: harness.Measurement) -> Round:
    """A round from its measurement: Elasticsearch's CPU divided by the requests answered
    (failed ones, often answered fast, would make a round look cheaper). A round in which
    Elasticsearch used no CPU at all was not measured: its process was not found (a remote
    node), or nothing was answered."""
    outcome, cpu = measurement.outcome, measurement.cpu
    cost = cpu.ms_per_request("elasticsearch", outcome.completed - outcome.errors) if cpu else None
    return Round(cost or None, outcome.completed, outcome.errors)


def stop_reason(costs: Sequence[float | None], sent: int, minimum: int) -> str | None:
    """Why the warm-up may stop after these rounds (None: it goes on, time permitting):
    "settled" (:func:`settled`, after ``minimum`` requests at least), or "unmeasured"
    (a round's CPU could not be read, so only the ``minimum`` counts)."""
    if sent < minimum:
        return None
    if any(cost is None for cost in costs):
        return "unmeasured"
    return "settled" if settled([c for c in costs if c is not None]) else None


def warm_up(
    run_round: Callable[[], Round],
    seconds: float,
    minimum: int = MIN_REQUESTS,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    """``run_round()`` again and again until :func:`stop_reason` gives one, or until
    ``seconds`` have passed ("limit"; checked before each round, so the last round may end
    after it, and there is always one). Returns the rounds' Elasticsearch CPU per request,
    why it stopped, the requests sent, the failed ones and the seconds taken. A round where
    every request failed stops the run: nothing measured after it would mean anything."""
    costs: list[float | None] = []
    sent = errors = 0
    started = clock()
    reason = None
    while reason is None:
        done = run_round()
        if done.requests and done.errors >= done.requests:
            raise SystemExit(
                f"every warm-up request failed ({done.errors} of {done.requests});"
                " see the web app's log, and python -m config.services status"
            )
        costs.append(done.es_cpu_ms)
        sent, errors = sent + done.requests, errors + done.errors
        shown = "not measured" if done.es_cpu_ms is None else f"{done.es_cpu_ms:.2f} ms"
        common.say(
            f"warming Elasticsearch up: round {len(costs)}, {done.requests} requests,"
            f" its CPU per request {shown}"
        )
        reason = stop_reason(costs, sent, minimum)
        if reason is None and clock() - started >= seconds:
            reason = "limit"
    return {
        "rounds_es_cpu_ms": costs,
        "stopped": reason,
        "requests": sent,
        "minimum": minimum,
        "errors": errors,
        "seconds": round(clock() - started, 1),
    }


def describe(result: dict[str, Any], limit: float) -> str:
    """The report's note on the warm-up."""
    costs, minimum = result["rounds_es_cpu_ms"], result["minimum"]
    how = {
        "settled": f"until the best of three rounds was within {GAIN:.0%} of the best of the"
        f" three before, after {minimum:,} requests at least",
        "unmeasured": f"for {minimum:,} requests (its CPU could not be read, so not until it"
        " settled)",
        "limit": f"for the --engine-warmup limit of {limit:g} s, "
        + (
            f"short of the {minimum:,} requests wanted"
            if result["requests"] < minimum
            else f"still more than {GAIN:.0%} faster every three rounds"
        ),
    }[result["stopped"]]
    measured = [c for c in costs if c is not None]
    went = (
        f"; its CPU per request went from {measured[0]:.2f} to {measured[-1]:.2f} ms"
        if measured
        else ""
    )
    return (
        f"Before the first measurement Elasticsearch was warmed up {how}: {len(costs)} rounds"
        " of the cold mix and autocomplete prefixes through the web app"
        f" ({result['requests']:,} requests, {result['seconds']} s, {result['errors']} errors)"
        f"{went} (bench.search.warmup)."
    )


SKIPPED = (
    "Elasticsearch was not warmed up before the measurements (--engine-warmup 0): right after"
    " a restart its first searches cost several times its steady CPU (bench.search.warmup)."
)
