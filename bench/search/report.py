"""The search benchmark's report: ratios, targets, Markdown, chart, before/after.

``bench/results/<stem>.json`` holds ``rows`` (one per phase and concurrency: system,
endpoint, cache, concurrency, p50_ms, p95_ms, p99_ms, rps, errors, and the CPU per request
es_cpu_ms, web_cpu_ms, pg_cpu_ms, redis_cpu_ms), ``extra_rows`` (warm-counts), ``ratios``
(portal warm against the best PostgreSQL baseline), ``replay_ratios`` (the same on the
replay stream), ``targets``, ``details`` (per measurement: CPU of every part in cores and
seconds, Elasticsearch ``took``, cache shares, replay hit ratios, Elasticsearch heap),
``notes``, ``comparison`` and ``meta`` (the run: settings, index and its size on disk,
Elasticsearch heap before and after, the mix and the replay stream, the machine).
``<stem>.md`` shows the same, and ``<stem>.png`` throughput and p95 per concurrency (when
matplotlib is importable).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from bench import common

TARGET_WARM_P95_MS = 50.0  # /api/search, warm facet cache, concurrency 8
TARGET_SUGGEST_P95_MS = 25.0  # /api/suggest, concurrency 8
TARGET_RATIO = 5.0  # portal warm rps / best PostgreSQL baseline rps
RESULT_COLUMNS = ["system", "endpoint", "cache", "concurrency", "p50_ms", "p95_ms", "p99_ms"]
COST_COLUMNS = ["es_cpu_ms", "web_cpu_ms", "pg_cpu_ms", "redis_cpu_ms"]
CPU_PARTS = ("load_generator", "web_app", "elasticsearch", "postgres", "redis", "others")


def _find(rows: Iterable[dict[str, Any]], **wanted: Any) -> dict[str, Any] | None:
    return next((r for r in rows if all(r.get(k) == v for k, v in wanted.items())), None)


def ratios(rows: list[dict[str, Any]], cache: str = "warm") -> list[dict[str, Any]]:
    """Portal search throughput (``cache``: warm or replay) against the best PostgreSQL
    baseline on the same requests, per concurrency."""
    pg_cache = "none" if cache == "warm" else cache
    out = []
    for c in sorted({r["concurrency"] for r in rows}):
        portal = _find(rows, system="portal", endpoint="search", cache=cache, concurrency=c)
        pg = [
            r
            for r in rows
            if r["system"].startswith("pg_") and r["cache"] == pg_cache and r["concurrency"] == c
        ]
        if not portal or not pg:
            continue
        best = max(pg, key=lambda r: r["rps"])
        out.append(
            {
                "concurrency": c,
                f"portal_{cache}_rps": portal["rps"],
                "best_pg": best["system"],
                "best_pg_rps": best["rps"],
                "ratio": round(portal["rps"] / best["rps"], 1) if best["rps"] else None,
            }
        )
    return out


def _target(name: str, measured: str, met: bool) -> dict[str, Any]:
    return {"target": name, "measured": measured, "met": met}


def targets(rows: list[dict[str, Any]], ratio_rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    warm8 = _find(rows, system="portal", endpoint="search", cache="warm", concurrency=8)
    if warm8 and warm8["p95_ms"] is not None:
        out.append(
            _target(
                f"search p95 <= {TARGET_WARM_P95_MS:.0f} ms (warm, c=8)",
                f"{warm8['p95_ms']:.1f} ms",
                warm8["p95_ms"] <= TARGET_WARM_P95_MS,
            )
        )
    for cache_state in ("warm", "cold"):
        sug8 = _find(rows, system="portal", endpoint="suggest", cache=cache_state, concurrency=8)
        if sug8 and sug8["p95_ms"] is not None:
            out.append(
                _target(
                    f"suggest p95 <= {TARGET_SUGGEST_P95_MS:.0f} ms ({cache_state}, c=8)",
                    f"{sug8['p95_ms']:.1f} ms",
                    sug8["p95_ms"] <= TARGET_SUGGEST_P95_MS,
                )
            )
    for r in ratio_rows:
        if r["ratio"] is not None:
            out.append(
                _target(
                    f">= {TARGET_RATIO:.0f}x best PG throughput (c={r['concurrency']})",
                    f"{r['ratio']:.1f}x ({r['best_pg']})",
                    r["ratio"] >= TARGET_RATIO,
                )
            )
    return out


def compare(before_path: Path, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Pair this run's rows with those of an earlier run (same system/endpoint/cache/c)."""
    before = json.loads(before_path.read_text())
    index = {(r["system"], r["endpoint"], r["cache"], r["concurrency"]): r for r in before["rows"]}
    keys = ("p50_ms", "p95_ms", "p99_ms", "rps", "errors")
    paired = []
    for r in rows:
        old = index.get((r["system"], r["endpoint"], r["cache"], r["concurrency"]))
        if old:
            paired.append(
                {
                    "phase": f"{r['system']}/{r['endpoint']}/{r['cache']}",
                    "concurrency": r["concurrency"],
                    "before": {k: old[k] for k in keys},
                    "after": {k: r[k] for k in keys},
                }
            )
    meta = before.get("meta", {})
    return {
        "before_file": str(before_path),
        "before_run": meta.get("finished_at"),
        "before_app_dir": meta.get("app_dir"),
        "rows": paired,
    }


# --------------------------------------------------------------------------- Markdown


def _table(headers: list[str], rows: Iterable[Iterable[Any]]) -> str:
    return common.markdown_table(headers, [list(r) for r in rows], decimals=1)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.2f}"


def share(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def results_table(rows: list[dict[str, Any]]) -> str:
    headers = ["system", "endpoint", "cache", "concurrency", "p50 ms", "p95 ms", "p99 ms"]
    costs = ["ES CPU ms/req", "web CPU ms/req", "PG CPU ms/req", "Redis CPU ms/req"]
    return _table(
        [*headers, "req/s", "errors", *costs],
        (
            [r[k] for k in RESULT_COLUMNS]
            + [r["rps"], r["errors"]]
            + [_ms(r.get(k)) for k in COST_COLUMNS]
            for r in rows
        ),
    )


def _intro(report: dict[str, Any]) -> list[str]:
    meta = report["meta"]
    es = meta["es"]
    return [
        "# Search benchmark",
        "",
        f"Run {meta['finished_at']} on {meta['machine']['cpus']} CPUs"
        f" ({meta['machine']['platform']}), {meta['duration_s']:.0f} s per timed measurement"
        f" after {meta['warmup_s']:.0f} s of warm-up, closed loop"
        f" (`.venv/bin/python -m bench.search {meta['argv']}`).",
        "",
        f"* **portal**: `/api/search` and `/api/suggest` of the web app ({meta['server']},"
        f" `DJANGO_DEBUG=0`) on the catalog database `{meta['database']}` and Elasticsearch"
        f" (index `{meta['index']}`, {meta['documents']:,} documents,"
        f" {es['store_mb']:,.1f} MB on disk). *replay*: a Zipf-distributed stream over many"
        " distinct searches against the live cache (see *Replay* below). *warm*: every search of"
        " the mix ran twice before, so its summary (facet counts, total) and its page of hits"
        " come from the Redis cache (`SEARCH_PAGE_CACHE`, on by default), as for repeated"
        " searches on a live site between two index writes; *warm-counts* (table below):"
        " the same with the page cache off, so the counts come from the cache and every page"
        " of hits from Elasticsearch (its shard request cache skips the query phase;"
        " fetching and highlighting still run); *cold*: the index generation is moved on"
        " before every request, so nothing cached is used: every request computes its"
        " facet counts, total and hits. Autocomplete: *warm* after every prefix was asked"
        " once (answers kept per index generation), *cold* with the generation bumped before"
        " every request.",
        "* **elasticsearch** (the `engine` phase, when run): the request each search of the mix"
        " sends first when nothing is cached (hits with highlights, exact total, every facet's"
        " counts; `search.service.Plan.summary_bodies`), straight from the load generator to"
        " Elasticsearch: no web app, no Redis, no typo-tolerant second request. The floor of a"
        " cold search on this machine.",
        "* **pg_ilike**: `name/summary/description ILIKE '%word%'` for each word (pg_trgm GIN"
        " indexes), relevance = `reverse_dependency_count`; **pg_fts**: a weighted `tsvector`"
        " (GIN), `websearch_to_tsquery('english')`, `ts_rank`. Both compute the same page of"
        " hits, total and disjunctive facet counts (section, priority, architecture,"
        " maintainer, size ranges, the 8 most used tag facets and any selected one) in one"
        " statement, through psycopg2 pools in the load generator, on a copy of the catalog"
        f" (`{meta['pg']['database']}`).",
        f"* Mix: {meta['mix']['queries']} searches ({_kinds(meta['mix'])}),"
        f" {meta['mix']['with_filters']} with filters, {meta['mix']['multi_word']} of 2-3"
        f" words; {meta['suggest_prefixes']} autocomplete prefixes.",
        "* CPU per request: the CPU time of Elasticsearch, of the web app (gunicorn's master"
        " and workers), of PostgreSQL (the backends of the benchmark's databases) and of both"
        " Redis servers during the measured window, divided by the requests completed in it"
        " (the servers are found by their ports; ES and Redis count whatever else they served"
        " meanwhile).",
        "",
    ]


def _results(report: dict[str, Any]) -> list[str]:
    lines = ["## Results", "", results_table(report["rows"])]
    if report.get("extra_rows"):
        lines += [
            "",
            "Warm with the page cache off (*warm-counts*: facet counts and totals from the"
            " cache, every page of hits from Elasticsearch):",
            "",
            results_table(report["extra_rows"]),
        ]
    return [*lines, ""]


def _pg_prefix(replay: dict[str, Any], details: list[dict[str, Any]]) -> str:
    """Say so when the baselines replayed only the stream's start (--pg-replay-requests)."""
    counts = {d["requests"] for d in details if d["system"].startswith("pg_")}
    if not counts or max(counts) >= replay["requests"]:
        return ""
    return (
        f" (here of the stream's first {max(counts):,} requests only: with no cache, a prefix"
        " of the stream costs what the whole does)"
    )


def _replay(report: dict[str, Any]) -> list[str]:
    replay = report["meta"].get("replay") or {}
    details = [d for d in report["details"] if d["cache"] == "replay"]
    if not replay or not details:
        return []
    return [
        "## Replay: a realistic stream against the live cache",
        "",
        f"{replay['requests']:,} requests drawn with a Zipf distribution (exponent"
        f" {replay['zipf_exponent']}) from {replay['distinct_searches']:,} distinct searches"
        f" (text, filters, sort and page; {replay['distinct_in_stream']:,} of them occur in"
        f" the stream; the 10 most popular make {replay['top10_share']:.1%} of it;"
        f" {replay['with_filters']:,} requests with filters, {replay['deeper_pages']:,} for"
        " page 2 or 3), replayed in order from the first request for every measurement, with"
        " no warm-up and no generation bump: each measurement starts from an empty cache"
        " namespace and the cache fills as a site's would. *Answers from the cache*: the page"
        " of hits came from Redis (`hits_cached`); *summaries*: the counts did"
        " (`facets_cached`); *ideal*: an unbounded cache that never expires (every repeat a"
        " hit). PostgreSQL has no result cache: it runs every request"
        + _pg_prefix(replay, details)
        + ".",
        "",
        _table(
            [
                "system",
                "c",
                "req/s",
                "p50 ms",
                "p95 ms",
                "answers from cache",
                "second half",
                "summaries cached",
                "ideal",
                "cache evictions",
                "cache MB",
            ],
            (
                [
                    d["system"],
                    d["concurrency"],
                    d["rps"],
                    d["p50_ms"],
                    d["p95_ms"],
                    share(d.get("hit_ratio")),
                    share(d.get("hit_ratio_second_half")),
                    share(d.get("facets_cached_share")),
                    share(replay.get("ideal_hit_ratio")),
                    d.get("cache_evicted_keys"),
                    d.get("cache_used_memory_mb"),
                ]
                for d in details
            ),
        ),
        "",
    ]


def _ratios(report: dict[str, Any]) -> list[str]:
    lines = []
    for key, cache, title in (
        ("ratios", "warm", "Portal throughput vs the best PostgreSQL baseline"),
        ("replay_ratios", "replay", "Replay: portal throughput vs the best PostgreSQL baseline"),
    ):
        if not report.get(key):
            continue
        lines += [
            f"## {title}",
            "",
            _table(
                ["concurrency", f"portal {cache} req/s", "best PG", "PG req/s", "ratio"],
                (
                    [
                        r["concurrency"],
                        r[f"portal_{cache}_rps"],
                        r["best_pg"],
                        r["best_pg_rps"],
                        f"{r['ratio']}x" if r["ratio"] is not None else "-",
                    ]
                    for r in report[key]
                ),
            ),
            "",
        ]
    return lines


def _targets(report: dict[str, Any]) -> list[str]:
    if not report["targets"]:
        return []
    return [
        "## Targets",
        "",
        _table(
            ["target", "measured", "met"],
            (
                [t["target"], t["measured"], "yes" if t["met"] else "**no**"]
                for t in report["targets"]
            ),
        ),
        "",
    ]


def _cpu(report: dict[str, Any]) -> list[str]:
    meta = report["meta"]
    cpus = meta["machine"]["cpus"]
    idle = meta.get("background_cpu_cores") or {}
    idle_parts = ("elasticsearch", "postgres", "redis", "others")
    return [
        "## Where the time and the CPU went",
        "",
        "Elasticsearch `took` (from the API responses) against the whole request, and the CPU"
        f" (in cores, out of the machine's {cpus}) each part used during the measurement. ES"
        " and Redis are the whole servers (they also served whatever else ran at the time);"
        " PG is the backends connected to the benchmark's databases (the catalog the web app"
        " reads, the baselines' copy); *others* is every other process (other people's tests"
        " and benchmarks on a shared machine, the rest of the PostgreSQL server). Before the"
        " run, with no load from the benchmark, they used: "
        + (", ".join(f"{k} {idle.get(k, 0):.2f}" for k in idle_parts) if idle else "-")
        + " cores; at low request rates that idle use weighs on the CPU per request.",
        "",
        _table(
            [
                "phase",
                "c",
                "p50 ms",
                "ES took p50",
                "ES took p95",
                "facets cached",
                "load gen",
                "web app",
                "ES",
                "PG",
                "Redis",
                "others",
                "load avg",
            ],
            (
                [
                    f"{d['system']}/{d['endpoint']}/{d['cache']}",
                    d["concurrency"],
                    d["p50_ms"],
                    d.get("took_p50_ms"),
                    d.get("took_p95_ms"),
                    d.get("facets_cached_share"),
                    *(f"{d['cpu'].get(k, 0):.2f}" for k in CPU_PARTS),
                    f"{d['cpu'].get('loadavg_1m_after', 0):.1f}",
                ]
                for d in report["details"]
            ),
        ),
        "",
    ]


def _elasticsearch(report: dict[str, Any]) -> list[str]:
    es = report["meta"]["es"]

    def heap(nodes: list[dict[str, Any]]) -> str:
        return (
            ", ".join(
                f"{n['node']} {n['heap_used_mb']:,.0f} of {n['heap_max_mb']:,.0f} MB" for n in nodes
            )
            or "-"
        )

    peak = max(
        (sum(n["heap_used_mb"] for n in d.get("es_heap", [])) for d in report["details"]),
        default=None,
    )
    return [
        "## Elasticsearch: index size and heap",
        "",
        f"* Index `{es['index']}`: {es['documents']:,} documents, {es['store_mb']:,.1f} MB on"
        f" disk (`_cat/indices` store size; primaries {es['primary_store_mb']:,.1f} MB)."
        f" Every index of the prefix (the live one and any rollback target):"
        f" {es['prefix_store_mb']:,.1f} MB in {len(es['prefix_indices'])}.",
        f"* Heap (`_nodes/stats/jvm`) before the run: {heap(es['heap_before'])}; after:"
        f" {heap(es['heap_after'])}; highest seen after a measurement:"
        f" {'-' if peak is None else f'{peak:,.0f} MB'}.",
        "",
    ]


def _errors(report: dict[str, Any]) -> list[str]:
    errors = [d for d in report["details"] if d.get("error_samples")]
    if not errors:
        return []
    return [
        "## Errors",
        "",
        *(
            f"* {d['system']}/{d['endpoint']}/{d['cache']} c={d['concurrency']}:"
            f" {d['errors']} errors, e.g. `{d['error_samples'][0]}`"
            for d in errors
        ),
        "",
    ]


def _comparison(report: dict[str, Any]) -> list[str]:
    cmp = report.get("comparison")
    if not cmp:
        return []
    headers = ["system/endpoint/cache", "c", "p50 before", "p50 after", "p95 before"]
    headers += ["p95 after", "req/s before", "req/s after"]
    return [
        "## Before and after",
        "",
        f"Before: `{cmp['before_file']}` (run {cmp['before_run']},"
        f" web app from `{cmp['before_app_dir']}`).",
        "",
        _table(
            headers,
            (
                [r["phase"], r["concurrency"]]
                + [r[when][k] for k in ("p50_ms", "p95_ms", "rps") for when in ("before", "after")]
                for r in cmp["rows"]
            ),
        ),
        "",
    ]


def markdown(report: dict[str, Any]) -> str:
    lines = (
        _intro(report)
        + _results(report)
        + _replay(report)
        + _ratios(report)
        + _targets(report)
        + _cpu(report)
        + _elasticsearch(report)
        + _errors(report)
        + _comparison(report)
    )
    if report.get("notes"):
        lines += ["## Notes", "", *(f"* {n}" for n in report["notes"]), ""]
    return "\n".join(lines)


def _kinds(mix: dict[str, Any]) -> str:
    return ", ".join(f"{n} {k}" for k, n in mix["kinds"].items())


# --------------------------------------------------------------------------- chart, files


def chart(report: dict[str, Any], path: Path) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        common.say(
            "matplotlib is not importable: skipping the PNG chart"
            " (install it into the venv to get the chart)"
        )
        return None
    rows = report["rows"] + report.get("extra_rows", [])
    series: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        cache = "" if r["cache"] == "none" else f" ({r['cache']})"
        series.setdefault(f"{r['system']}/{r['endpoint']}{cache}", []).append(r)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.8))
    for label, points in series.items():
        points.sort(key=lambda r: r["concurrency"])
        xs = [p["concurrency"] for p in points]
        ax1.plot(xs, [p["rps"] for p in points], marker="o", label=label)
        ax2.plot(xs, [p["p95_ms"] or float("nan") for p in points], marker="o", label=label)
    for ax in (ax1, ax2):
        ax.set_xscale("log", base=2)
        ax.set_xticks(sorted({r["concurrency"] for r in rows}))
        ax.get_xaxis().set_major_formatter(matplotlib.ticker.ScalarFormatter())
        ax.set_xlabel("concurrent clients")
        ax.grid(True, which="both", alpha=0.3)
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_formatter(
            matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}" if f"{v:g}"[0] in "25" else "")
        )
    ax1.set_ylabel("requests/s (log)")
    ax1.set_title("Throughput")
    ax2.set_ylabel("p95 latency, ms (log)")
    ax2.set_title("p95 latency")
    ax2.axhline(TARGET_WARM_P95_MS, color="grey", linestyle="--", linewidth=0.8)
    ax1.legend(fontsize=8)
    meta = report["meta"]
    fig.suptitle(
        f"Package search: portal (Elasticsearch) vs PostgreSQL — {meta['documents']:,}"
        f" packages, {meta['machine']['cpus']} CPUs, {meta['duration_s']:.0f} s per point"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_outputs(report: dict[str, Any], stem: str) -> list[Path]:
    written = [
        common.write_json(f"{stem}.json", report),
        common.write_text(f"{stem}.md", markdown(report)),
    ]
    png = chart(report, common.RESULTS / f"{stem}.png")
    if png:
        written.append(png)
    return written
