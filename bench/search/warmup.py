"""Warm Elasticsearch's JVM up before anything is measured.

A freshly started Elasticsearch runs its search code interpreted until the JIT compiler has
seen enough of it, so the first searches cost several times what the same searches cost a
minute later. Measured here (2 cores, 63k packages, each search's first request sent
straight to Elasticsearch at concurrency 2, rounds of 623 requests, right after a restart):

| round | 1 | 2 | 3 | 5 | 7 | 9 | 11 | 13 | 14 |
| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |
| ES CPU ms per search | 22.4 | 11.5 | 9.7 | 8.3 | 6.4 | 5.4 | 5.1 | 4.7 | 4.8 |

The cold phase (c=8, 20 s) run right after a restart measured p95 161 ms, 90 searches a
second and 15.4 ms of Elasticsearch CPU a search (``search-warmup-none.md``); on a node
warmed by earlier runs, 66 ms, 191 a second and 4.9 ms. A benchmark started right after
``services up`` (a fresh clone, CI) measured its first phases on a cold JVM.

So before the first measurement ``bench.search`` runs the cold mix through the web app
(every search and every autocomplete prefix, the index generation moved on before each, so
every code path of a cold search runs: typo tolerance, "did you mean", the counts of a
browse) in rounds, until a round is no longer faster than the rounds before it
(:func:`settled`) and at least ``MIN_REQUESTS`` were sent, or until ``--engine-warmup``
seconds have passed. A site serves from a warm JVM; this measures that, and the report says
how long it took to get there.

What did not work: rounds of each search's first request straight to Elasticsearch settled
by the rule after 21 rounds (23,100 requests), and the cold phase after them still cost 6.2
ms of Elasticsearch CPU a search (p95 79 ms); those requests never ask for typo tolerance or
"did you mean". Through the web app, the rule alone stopped after 11,000 requests: 5.7 ms
(p95 78 ms). Hence the minimum.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from bench import common

WINDOW = 3  # rounds compared with the three before them
GAIN = 0.05  # less than 5% faster than those: settled
# And not before this many requests: the JIT compiles by invocation counts, and rounds are
# noisy (a round 15% slower than the one before is common). Stopping by the rule alone after
# 11,000 requests, the cold phase cost 5.7 ms of Elasticsearch CPU a search (p95 78 ms); after
# 21,000, 4.9 ms (p95 66 ms), what a node warmed by earlier runs costs.
MIN_REQUESTS = 20_000


def settled(costs: Sequence[float], window: int = WINDOW, gain: float = GAIN) -> bool:
    """Whether the last ``window`` rounds' best CPU per request is less than ``gain``
    better than the best of the ``window`` rounds before them. The JIT compiles in waves
    (a round can be slower than the one before while the next wave compiles), so rounds are
    compared in windows, by their best."""
    if len(costs) < 2 * window:
        return False
    recent, before = min(costs[-window:]), min(costs[-2 * window : -window])
    return recent >= (1 - gain) * before


@dataclass
class Round:
    """One pass over the warm-up requests: Elasticsearch's CPU per request, how many
    requests completed and how many of them failed."""

    es_cpu_ms: float
    requests: int
    errors: int


def warm_up(
    run_round: Callable[[], Round], seconds: float, minimum: int = MIN_REQUESTS
) -> dict[str, Any]:
    """``run_round()`` again and again until :func:`settled` after at least ``minimum``
    requests, or until ``seconds`` have passed (at least once). Returns the rounds'
    Elasticsearch CPU per request, whether it settled, the requests sent, the failed ones
    and the seconds taken. A round where every request failed stops the run: nothing
    measured after it would mean anything."""
    costs: list[float] = []
    sent = errors = 0
    started = time.monotonic()
    while not (settled(costs) and sent >= minimum) and (
        not costs or time.monotonic() - started < seconds
    ):
        done = run_round()
        if done.requests and done.errors >= done.requests:
            raise SystemExit(
                f"every warm-up request failed ({done.errors} of {done.requests});"
                " see the web app's log, and python -m config.services status"
            )
        costs.append(done.es_cpu_ms)
        sent, errors = sent + done.requests, errors + done.errors
        common.say(
            f"warming Elasticsearch up: round {len(costs)}, {done.requests} requests,"
            f" {done.es_cpu_ms:.2f} ms of its CPU per request"
        )
    return {
        "rounds_es_cpu_ms": costs,
        "settled": settled(costs) and sent >= minimum,
        "requests": sent,
        "errors": errors,
        "seconds": round(time.monotonic() - started, 1),
    }


def describe(result: dict[str, Any], limit: float) -> str:
    """The report's note on the warm-up."""
    costs = result["rounds_es_cpu_ms"]
    if not costs:
        return "Elasticsearch was not warmed up (--engine-warmup 0)."
    how = (
        f"until a round was no faster than the rounds before it (and {MIN_REQUESTS:,}"
        " requests at least)"
        if result["settled"]
        else f"for the --engine-warmup limit of {limit:g} s, still getting faster"
    )
    return (
        f"Before the first measurement Elasticsearch was warmed up {how}: {len(costs)} rounds"
        f" of the cold mix and autocomplete prefixes through the web app"
        f" ({result['requests']:,} requests, {result['seconds']} s, {result['errors']} errors);"
        f" its CPU per request went from"
        f" {costs[0]:.2f} to {costs[-1]:.2f} ms (bench.search.warmup)."
    )
