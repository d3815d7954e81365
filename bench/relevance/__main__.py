"""Relevance evaluator: every judged query through the real search service.

    .venv/bin/python -m bench.relevance                 # dev and test, compared with the last run
    .venv/bin/python -m bench.relevance --split dev     # only the half we tune on
    .venv/bin/python -m bench.relevance --reindex       # rebuild the index first
    .venv/bin/python -m bench.relevance --save-as relevance-baseline

1. Uses the benchmark database ``bench`` (the real catalog, imported when empty) and its own
   index prefix ``benchrel`` (and cache prefix and Redis databases), never development or
   test data. The index is rebuilt when it is missing, incomplete, or built with another
   schema (analysis or mappings: ``search.indices.schema_digest``), so a ranking change that
   needs a reindex is always measured on an index that has it.
2. Runs every query of ``bench/relevance/{dev,test}.jsonl`` with ``search.service.search``,
   exactly as a visitor's first page (relevance sort, typo fallback, synonyms, promotions),
   and scores the top 10 against the judgments (``bench.relevance.metrics``).
3. Prints, per split and kind and overall: nDCG@10, MRR@10, success@1, @3 and @5, and the
   zero-result rate; the targets of issue #12 on the test half; and a table of the queries
   that moved against the last saved run (``bench/results/relevance.json``).
4. Writes ``bench/results/relevance.json`` (every query's top 10 and metrics) and
   ``relevance.md`` (the tables).

The test half is frozen: tune on dev, report test.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import common
from bench.relevance import metrics

HERE = Path(__file__).resolve().parent
SPLITS = ("dev", "test")
KINDS = ("exact_name", "name_part", "need", "typo", "developer", "long")
ENV = {
    "SEARCH_INDEX_PREFIX": "benchrel",
    "CACHE_KEY_PREFIX": "benchrel",
    "SEARCH_PAGE_CACHE": "0",
}
COLUMNS = ("ndcg10", "mrr10", "s1", "s3", "s5", "zero")
HEADERS = ("nDCG@10", "MRR@10", "success@1", "success@3", "success@5", "zero results")
# Issue #12's targets, on the test half: (kind, metric, at least / at most, value).
TARGETS = [
    ("exact_name", "s1", ">=", 1.0),
    ("need", "s5", ">=", 0.90),
    ("need", "ndcg10", ">=", 0.70),
    ("typo", "s3", ">=", 0.95),
    ("all", "zero", "<=", 0.0),
]


def load(split: str) -> list[dict[str, Any]]:
    with (HERE / f"{split}.jsonl").open() as handle:
        return [dict(json.loads(line), split=split) for line in handle if line.strip()]


def ensure_index(rebuild: bool) -> str:
    """The live index of the evaluator's prefix, rebuilt if asked, missing, incomplete or
    built with another schema; returns why it was (or was not) rebuilt."""
    from django.core.management import call_command

    from indexing.status import counts
    from search import indices

    state = indices.alias_state()
    reason = "asked (--reindex)" if rebuild else None
    if reason is None and state.live is None:
        reason = "no index yet"
    if reason is None and not indices.schema_is_current(state.live):
        reason = "built with another schema"
    if reason is None and counts().mismatch:
        reason = "documents and rows differ"
    if reason is None:
        return f"kept {state.live}"
    common.say(f"rebuilding the index: {reason}")
    call_command("reindex", verbosity=0)
    return f"rebuilt ({reason})"


def run_queries(queries: list[dict[str, Any]], depth: int = 10) -> list[dict[str, Any]]:
    """Every query's first ``depth`` results (metrics use the first 10) and scores."""
    from search import service
    from search.params import SearchParams

    rows = []
    for number, judged in enumerate(queries, 1):
        params = SearchParams(q=judged["query"], page_size=max(10, depth))
        result = service.search(params, with_facets=False)
        ranked = [hit.name for hit in result.hits]
        rows.append(
            {
                "id": judged["id"],
                "split": judged["split"],
                "kind": judged["kind"],
                "query": judged["query"],
                "total": result.total,
                "top": ranked,
                **metrics.score(ranked, judged["judgments"], result.total),
            }
        )
        if number % 50 == 0:
            common.say(f"{number}/{len(queries)} queries")
    return rows


def summarise(rows: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, float]]]:
    """split -> kind (and "all") -> mean metrics, plus "n"."""
    groups: dict[str, dict[str, list[dict[str, float]]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        scores = {k: row[k] for k in COLUMNS}
        groups[row["split"]][row["kind"]].append(scores)
        groups[row["split"]]["all"].append(scores)
    return {
        split: {kind: {**metrics.mean(items), "n": len(items)} for kind, items in kinds.items()}
        for split, kinds in groups.items()
    }


def target_rows(summary: dict[str, Any]) -> list[list[Any]]:
    test = summary.get("test", {})
    rows = []
    for kind, metric, sense, wanted in TARGETS:
        got = test.get(kind, {}).get(metric)
        met = got is not None and (got >= wanted if sense == ">=" else got <= wanted)
        label = HEADERS[COLUMNS.index(metric)]
        rows.append([kind, label, f"{sense} {wanted:.0%}", _pct(got), "met" if met else "MISSED"])
    return rows


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def kind_table(summary: dict[str, Any], split: str) -> str:
    rows = []
    for kind in (*KINDS, "all"):
        row = summary.get(split, {}).get(kind)
        if not row:
            continue
        rows.append(
            [kind, row["n"], _num(row["ndcg10"]), _num(row["mrr10"])]
            + [_pct(row[k]) for k in ("s1", "s3", "s5", "zero")]
        )
    return common.markdown_table(["kind", "queries", *HEADERS], rows)


def moved(rows: list[dict[str, Any]], before: dict[str, Any] | None) -> list[list[Any]]:
    """Queries whose nDCG@10 changed by 0.05 or more since the last saved run."""
    if not before:
        return []
    old = {row["id"]: row for row in before.get("queries", [])}
    changes = []
    for row in rows:
        prior = old.get(row["id"])
        if prior is None or abs(row["ndcg10"] - prior["ndcg10"]) < 0.05:
            continue
        changes.append(
            [
                row["id"],
                row["query"],
                _num(prior["ndcg10"]),
                _num(row["ndcg10"]),
                ", ".join(prior["top"][:3]),
                ", ".join(row["top"][:3]),
            ]
        )
    changes.sort(key=lambda r: float(r[3]) - float(r[2]))
    return changes


def markdown(report: dict[str, Any], changes: list[list[Any]]) -> str:
    lines = [
        "# Relevance",
        "",
        f"Run {report['when']} (`{report['command']}`), {report['count']} judged queries, "
        f"index {report['index']}; {report['seconds']:.0f} s.",
        "",
        "Metrics over the top 10 of a visitor's first page: nDCG@10 (gains 2^grade - 1), "
        "MRR@10 and success@k count *good* results (grade >= 2), zero results is the share "
        "of queries that found nothing. Tune on dev; test is frozen.",
    ]
    for split in SPLITS:
        if split in report["summary"]:
            lines += ["", f"## {split}", "", kind_table(report["summary"], split)]
    if "test" in report["summary"]:
        lines += [
            "",
            "## Targets (test half)",
            "",
            common.markdown_table(
                ["kind", "metric", "target", "got", ""], target_rows(report["summary"])
            ),
        ]
    lines += ["", "## Moved since the last saved run (nDCG@10 changed by 0.05 or more)", ""]
    if changes:
        lines.append(
            common.markdown_table(
                ["id", "query", "before", "after", "top 3 before", "top 3 after"], changes
            )
        )
    else:
        lines.append("Nothing moved (or no earlier run).")
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.relevance", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--split", choices=[*SPLITS, "all"], default="all")
    parser.add_argument("--reindex", action="store_true", help="rebuild the index first")
    parser.add_argument(
        "--depth",
        type=int,
        default=10,
        choices=range(10, 101),
        metavar="10-100",
        help="results kept per query in the JSON (metrics use the first 10; more feeds "
        "experiments such as rank fusion)",
    )
    parser.add_argument(
        "--save-as",
        default="relevance",
        help="results stem under bench/results/ (default relevance)",
    )
    parser.add_argument(
        "--compare", default="relevance", help="stem of the run to compare with (default relevance)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    common.setup_django(overrides={**ENV, **_redis_env()})
    started = time.monotonic()
    common.ensure_catalog()
    from portal import vocabulary

    vocabulary.apply(vocabulary.load())  # a catalog imported before the vocabulary shipped
    index_note = ensure_index(args.reindex)
    splits = SPLITS if args.split == "all" else (args.split,)
    queries = [q for split in splits for q in load(split)]
    rows = run_queries(queries, args.depth)
    summary = summarise(rows)
    before_path = common.RESULTS / f"{args.compare}.json"
    before = json.loads(before_path.read_text()) if before_path.exists() else None
    changes = moved(rows, before)
    report = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "python -m bench.relevance "
        + " ".join(argv if argv is not None else sys.argv[1:]),
        "count": len(rows),
        "index": index_note,
        "seconds": time.monotonic() - started,
        "summary": summary,
        "queries": rows,  # per query: its top 10 names and every metric
    }
    text = markdown(report, changes)
    print(text)
    common.write_json(f"{args.save_as}.json", report)
    common.write_text(f"{args.save_as}.md", text)
    missed = [r for r in target_rows(summary) if r[-1] != "met"] if "test" in summary else []
    return 1 if missed else 0


def _redis_env() -> dict[str, str]:
    """The evaluator's own Redis databases (coordination 6, broker 7, cache 6)."""
    from config.env import redis_cache_port, redis_port

    return {
        "REDIS_URL": os.environ.get("BENCH_REL_REDIS_URL", f"redis://127.0.0.1:{redis_port()}/6"),
        "CELERY_BROKER_URL": f"redis://127.0.0.1:{redis_port()}/7",
        "REDIS_CACHE_URL": f"redis://127.0.0.1:{redis_cache_port()}/6",
    }


if __name__ == "__main__":
    raise SystemExit(main())
