"""Fuse WordLlama vector retrieval with the portal's text ranking (RRF) and score it.

    /tmp/wl-venv/bin/python bench/relevance/vectors/fuse.py \
        [--text-run bench/results/relevance-depth100.json]

Per judged query (``bench/relevance/{dev,test}.jsonl``):

* **text**: the portal's ranking, read from the evaluator's JSON (``python -m bench.relevance
  --depth 100 --save-as NAME``), up to 100 names;
* **vec:T**: cosine top 100 over the catalog embedded with document text T (``embed.py``);
* **rrf:T k=K wv=W guard=G**: reciprocal rank fusion (K in 10/30/60, W in
  0.1/0.2/0.3/0.5/1.0), score(d) = 1/(K + text rank) +
  W/(K + vector rank) (ranks from 1, missing = no term), ties by text rank then vector rank.
  Guards (all decided from the query and the text ranking alone, as the portal could):
  ``none`` fuses always; ``exact`` leaves the text ranking untouched when the query is a
  catalog package name; ``pin`` keeps the text top-1 first when it *is* the query and fuses
  the rest; ``multi`` fuses only multi-word queries that are not a package name.

Metrics come from ``bench/relevance/metrics.py`` (nDCG@10, MRR@10, success@1/3/5; "zero" is
an empty ranking). Parameters are chosen on DEV only: the best dev nDCG@10 (all kinds) among
fusions that keep exact_name success@1 at 100% on dev; TEST is then reported for that one.
Writes ``results.json`` (every variant, split and kind) and ``results.md`` beside this file.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from itertools import product
from pathlib import Path

import embed

sys.path.insert(0, str(embed.ROOT))
from bench.relevance import metrics  # pure Python, no Django

HERE = embed.HERE
KINDS = ("exact_name", "name_part", "need", "typo", "developer", "long")
SPLITS = ("dev", "test")
KS = (10, 30, 60)
WEIGHTS = (0.1, 0.2, 0.3, 0.5, 1.0)
GUARDS = ("none", "exact", "pin", "multi")
COLS = ("ndcg10", "mrr10", "s1", "s3", "s5", "zero")


def load_judged() -> list[dict]:
    rows = []
    for split in SPLITS:
        with (HERE.parent / f"{split}.jsonl").open() as handle:
            rows += [dict(json.loads(line), split=split) for line in handle if line.strip()]
    return rows


def rrf(text: list[str], vec: list[str], k: int, wv: float) -> list[str]:
    """Weighted reciprocal rank fusion of two rankings (text weight 1)."""
    score: dict[str, float] = defaultdict(float)
    trank = {name: i + 1 for i, name in enumerate(text)}
    vrank = {name: i + 1 for i, name in enumerate(vec)}
    for name, r in trank.items():
        score[name] += 1.0 / (k + r)
    for name, r in vrank.items():
        score[name] += wv / (k + r)
    big = 10**6
    return sorted(score, key=lambda n: (-score[n], trank.get(n, big), vrank.get(n, big)))


def fused(
    query: str, text: list[str], vec: list[str], k: int, wv: float, guard: str, names: set[str]
) -> list[str]:
    """The ranking shown under one guard."""
    q = query.strip().lower()
    is_name = q in names
    if guard == "exact" and is_name:
        return text
    if guard == "multi" and (is_name or len(q.split()) < 2):
        return text
    if guard == "pin" and text and text[0] == q:
        return [q] + [n for n in rrf(text[1:], vec, k, wv) if n != q]
    return rrf(text, vec, k, wv)


def summarise(rows: list[dict]) -> dict:
    """split -> kind (and "all") -> mean metrics and n."""
    groups: dict = defaultdict(lambda: defaultdict(list))
    for row in rows:
        groups[row["split"]][row["kind"]].append(row["m"])
        groups[row["split"]]["all"].append(row["m"])
    return {
        s: {k: {**metrics.mean(v), "n": len(v)} for k, v in kinds.items()}
        for s, kinds in groups.items()
    }


def evaluate(judged: list[dict], rankings: dict[str, list[str]]) -> tuple[dict, list[dict]]:
    rows = []
    for q in judged:
        ranked = rankings[q["id"]]
        m = metrics.score(ranked, q["judgments"], len(ranked))
        rows.append({"id": q["id"], "split": q["split"], "kind": q["kind"], "m": m})
    return summarise(rows), rows


def vector_rankings(judged: list[dict], texts: tuple[str, ...]) -> dict[str, dict[str, list]]:
    """text -> query id -> top-100 names by cosine."""
    model = embed.load_model()
    packages = embed.load_catalog()
    names = [p["name"] for p in packages]
    out = {}
    for text in texts:
        matrix, _ = embed.embeddings(model, packages, text)
        out[text] = {}
        for q in judged:
            vec = model.embed(q["query"], norm=True)[0]
            out[text][q["id"]] = [names[i] for i in embed.top(matrix, vec)]
    return out, set(names)


def check_text_scores(run: dict, judged: list[dict]) -> None:
    """Warn when our text-only nDCG@10 differs from the one the evaluator saved."""
    saved = {row["id"]: row.get("ndcg10") for row in run["queries"]}
    off = [
        q["id"]
        for q in judged
        if saved.get(q["id"]) is not None
        and abs(
            metrics.ndcg_at(
                next(r["top"] for r in run["queries"] if r["id"] == q["id"]), q["judgments"]
            )
            - saved[q["id"]]
        )
        > 1e-9
    ]
    if off:
        print(
            f"WARNING: {len(off)} queries score differently from the run "
            f"(judgments changed since?): {off[:5]}",
            file=sys.stderr,
        )


def moved(judged: list[dict], per_query: dict, key: str, split: str) -> list[str]:
    """Markdown rows: queries of one split whose nDCG@10 moved by >= 0.1 against text."""
    base = {r["id"]: r["m"]["ndcg10"] for r in per_query["text"]}
    new = {r["id"]: r["m"]["ndcg10"] for r in per_query[key]}
    rows = sorted(
        (new[q["id"]] - base[q["id"]], q)
        for q in judged
        if q["split"] == split and abs(new[q["id"]] - base[q["id"]]) >= 0.1
    )
    return ["| id | query | text | fused |", "|---|---|---:|---:|"] + [
        f"| {q['id']} | {q['query']} | {base[q['id']]:.2f} | {new[q['id']]:.2f} |" for _, q in rows
    ]


def paired(
    judged: list[dict],
    per_query: dict,
    key: str,
    split: str,
    kind: str = "all",
    rounds: int = 10000,
) -> dict:
    """Fused minus text nDCG@10 over one split (and kind): mean, wins/ties/losses, a 95%
    bootstrap interval and a two-sided paired sign-flip randomisation p-value (seeded)."""
    import numpy as np

    base = {r["id"]: r["m"]["ndcg10"] for r in per_query["text"]}
    new = {r["id"]: r["m"]["ndcg10"] for r in per_query[key]}
    d = np.array(
        [
            new[q["id"]] - base[q["id"]]
            for q in judged
            if q["split"] == split and kind in ("all", q["kind"])
        ]
    )
    rng = np.random.default_rng(12)
    boot = d[rng.integers(0, len(d), (rounds, len(d)))].mean(axis=1)
    flips = (rng.integers(0, 2, (rounds, len(d))) * 2 - 1) @ d / len(d)
    return {
        "n": len(d),
        "mean": float(d.mean()),
        "wins": int((d > 1e-9).sum()),
        "ties": int((abs(d) <= 1e-9).sum()),
        "losses": int((d < -1e-9).sum()),
        "ci95": [float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))],
        "p": float((abs(flips) >= abs(d.mean()) - 1e-12).mean()),
    }


def paired_table(judged: list[dict], per_query: dict, key: str) -> tuple[list[str], dict]:
    lines = [
        "| split | kind | n | delta nDCG@10 | 95% CI | wins/ties/losses | p |",
        "|---|---|---:|---:|---|---|---:|",
    ]
    out = {}
    for split in SPLITS:
        for kind in ("all", *KINDS):
            t = out.setdefault(split, {})[kind] = paired(judged, per_query, key, split, kind)
            lines.append(
                f"| {split} | {kind} | {t['n']} | {t['mean']:+.3f} | "
                f"[{t['ci95'][0]:+.3f}, {t['ci95'][1]:+.3f}] | "
                f"{t['wins']}/{t['ties']}/{t['losses']} | {t['p']:.3f} |"
            )
    return lines, out


def rounded(obj):
    """obj with every float rounded to 4 digits (a smaller results.json)."""
    if isinstance(obj, float):
        return round(obj, 4)
    if isinstance(obj, dict):
        return {k: rounded(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [rounded(v) for v in obj]
    return obj


def pct(x: float) -> str:
    return f"{x:.1%}"


def kind_table(results: dict, variants: list[tuple[str, str]], split: str) -> list[str]:
    """Markdown rows: kind x variant, for one split."""
    lines = [
        "| kind | n | variant | nDCG@10 | MRR@10 | s@1 | s@3 | s@5 | zero |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for kind in (*KINDS, "all"):
        for label, key in variants:
            r = results[key][split].get(kind)
            if r:
                lines.append(
                    f"| {kind} | {r['n']} | {label} | {r['ndcg10']:.3f} | "
                    f"{r['mrr10']:.3f} | {pct(r['s1'])} | {pct(r['s3'])} | "
                    f"{pct(r['s5'])} | {pct(r['zero'])} |"
                )
    return lines


def grid_table(results: dict, keys: list[str]) -> list[str]:
    """Markdown rows: dev (all kinds) per variant, with exact_name success@1."""
    lines = [
        "| variant | dev nDCG@10 | dev MRR@10 | s@1 | s@3 | s@5 | exact_name s@1 |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for key in keys:
        a, e = results[key]["dev"]["all"], results[key]["dev"]["exact_name"]
        lines.append(
            f"| {key} | {a['ndcg10']:.3f} | {a['mrr10']:.3f} | {pct(a['s1'])} | "
            f"{pct(a['s3'])} | {pct(a['s5'])} | {pct(e['s1'])} |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--text-run", default=str(embed.ROOT / "bench/results/relevance-depth100.json")
    )
    parser.add_argument("--texts", nargs="+", default=list(embed.TEXTS), choices=embed.TEXTS)
    args = parser.parse_args()

    run = json.loads(Path(args.text_run).read_text())
    text = {row["id"]: row["top"] for row in run["queries"]}
    judged = [q for q in load_judged() if q["id"] in text]
    missing = len(load_judged()) - len(judged)
    depth = max(len(t) for t in text.values())
    print(
        f"text run {args.text_run} ({run.get('when')}): {len(judged)} queries, "
        f"depth {depth}, {missing} judged queries missing",
        file=sys.stderr,
    )
    check_text_scores(run, judged)
    vectors, names = vector_rankings(judged, tuple(args.texts))

    rankings = {"text": {q["id"]: text[q["id"]] for q in judged}}
    for t in args.texts:
        rankings[f"vec:{t}"] = vectors[t]
        for k, wv, guard in product(KS, WEIGHTS, GUARDS):
            rankings[f"rrf:{t} k={k} wv={wv} guard={guard}"] = {
                q["id"]: fused(q["query"], text[q["id"]], vectors[t][q["id"]], k, wv, guard, names)
                for q in judged
            }
    results, per_query = {}, {}
    for key, ranks in rankings.items():
        results[key], per_query[key] = evaluate(judged, ranks)

    # Choose on dev only.
    fusions = [k for k in results if k.startswith("rrf:")]
    safe = [k for k in fusions if results[k]["dev"]["exact_name"]["s1"] == 1.0]
    dev_key = lambda k: (results[k]["dev"]["all"]["ndcg10"], results[k]["dev"]["all"]["mrr10"])  # noqa: E731
    best = max(safe, key=dev_key)
    best_any = max(fusions, key=dev_key)
    best_vec = max((k for k in results if k.startswith("vec:")), key=dev_key)
    ranked_keys = ["text", *sorted((k for k in results if k != "text"), key=dev_key, reverse=True)]

    best_text_vec = "vec:" + best.split()[0].split(":")[1]
    shown = [("text", "text"), (best_vec, best_vec)]
    shown += [(best_text_vec, best_text_vec)] if best_text_vec != best_vec else []
    shown += [(best, best)]
    md = [
        "# Vector fusion results\n",
        f"Text run: `{args.text_run}` ({run.get('when')}, "
        f"`{run.get('command')}`), depth {depth}; {len(judged)} judged queries.\n",
        f"Chosen on dev (best dev nDCG@10 with exact_name s@1 = 100%): **{best}**. "
        f"Best fusion ignoring the exact-name rule: `{best_any}`. "
        f"Best vectors only: `{best_vec}`.\n",
    ]
    for split in SPLITS:
        md += [f"## {split}\n", *kind_table(results, shown, split), ""]
    sig_lines, sig = paired_table(judged, per_query, best)
    md += ["## Chosen fusion minus text, per query (paired)\n", *sig_lines, ""]
    md += [
        "## Robustness: the 10 best safe fusions on dev, and their test delta "
        "(not used to choose)\n",
        "| variant | dev delta nDCG@10 | test delta nDCG@10 |",
        "|---|---:|---:|",
    ]
    t0 = {s: results["text"][s]["all"]["ndcg10"] for s in SPLITS}
    md += [
        f"| {k} | {results[k]['dev']['all']['ndcg10'] - t0['dev']:+.4f} | "
        f"{results[k]['test']['all']['ndcg10'] - t0['test']:+.4f} |"
        for k in sorted(safe, key=dev_key, reverse=True)[:10]
    ]
    md += ["", "## Dev grid (all kinds), best first\n", *grid_table(results, ranked_keys), ""]
    for split in SPLITS:
        md += [
            f"## Queries that moved (nDCG@10 +-0.1), {split}, chosen fusion\n",
            *moved(judged, per_query, best, split),
            "",
        ]
    (HERE / "results.md").write_text("\n".join(md) + "\n")
    (HERE / "results.json").write_text(
        json.dumps(
            rounded(
                {
                    "text_run": args.text_run,
                    "text_run_when": run.get("when"),
                    "chosen": best,
                    "best_any": best_any,
                    "best_vectors": best_vec,
                    "paired": sig,
                    "results": results,
                    "per_query": {k: per_query[k] for k in ("text", best_vec, best)},
                }
            ),
            separators=(",", ":"),
        )
        + "\n"
    )

    for split in SPLITS:
        print(f"\n{split}", file=sys.stderr)
        print("\n".join(kind_table(results, shown, split)))
    print("\n" + "\n".join(sig_lines))
    print(f"\nchosen on dev: {best}\nbest fusion ignoring exact names: {best_any}", file=sys.stderr)


if __name__ == "__main__":
    main()
