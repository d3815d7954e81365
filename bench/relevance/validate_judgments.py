#!/usr/bin/env python3
"""Check the judged query set in this folder (dev.jsonl and test.jsonl).

Standard library only. Usage:

    python3 validate_judgments.py [CATALOG]

CATALOG defaults to /work/main/data/debian-bookworm-main.jsonl.gz (gzip JSON lines, one
package per line with at least a "name" field).

Checks: every line is a JSON object with the required keys and types; the kind is known;
grades are integers 0..3; every judged package exists in the catalog; ids are unique across
both files and look like "<kind>-<nnn>"; every query has at least one grade >= 2; for
exact_name, exactly one package has a grade >= 2 and it is the query itself (with grade 3).
Prints the counts per kind and split; exits with status 1 if anything is wrong.
"""

from __future__ import annotations

import gzip
import json
import re
import sys
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_CATALOG = "/work/main/data/debian-bookworm-main.jsonl.gz"
SPLITS = ("dev", "test")
KINDS = ("exact_name", "name_part", "need", "typo", "developer", "long")
REQUIRED = {"id": str, "kind": str, "query": str, "judgments": dict, "why": str}


def load_catalog(path: str) -> set[str]:
    opener = gzip.open if path.endswith(".gz") else open
    names = set()
    with opener(path, "rt", encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line:
                names.add(json.loads(line)["name"])
    return names


def main(argv: list[str]) -> int:
    catalog_path = argv[1] if len(argv) > 1 else DEFAULT_CATALOG
    names = load_catalog(catalog_path)
    errors: list[str] = []
    counts: dict[str, Counter] = {s: Counter() for s in SPLITS}
    seen_ids: dict[str, str] = {}
    seen_queries: dict[tuple[str, str], str] = {}
    n_judged = Counter()

    for split in SPLITS:
        path = HERE / f"{split}.jsonl"
        if not path.exists():
            errors.append(f"{path}: missing")
            continue
        for lineno, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            where = f"{split}.jsonl:{lineno}"
            if not raw.strip():
                errors.append(f"{where}: empty line")
                continue
            try:
                obj = json.loads(raw)
            except json.JSONDecodeError as e:
                errors.append(f"{where}: invalid JSON ({e})")
                continue
            if not isinstance(obj, dict):
                errors.append(f"{where}: not an object")
                continue
            bad_keys = False
            for key, typ in REQUIRED.items():
                if key not in obj:
                    errors.append(f"{where}: missing key {key!r}")
                    bad_keys = True
                elif not isinstance(obj[key], typ):
                    errors.append(f"{where}: {key!r} should be {typ.__name__}")
                    bad_keys = True
            if bad_keys:
                continue
            qid, kind, query, judg = obj["id"], obj["kind"], obj["query"], obj["judgments"]
            where = f"{where} ({qid})"
            if kind not in KINDS:
                errors.append(f"{where}: unknown kind {kind!r}")
                continue
            if not re.fullmatch(rf"{re.escape(kind)}-\d{{3,}}", qid):
                errors.append(f"{where}: id should look like '{kind}-nnn'")
            if qid in seen_ids:
                errors.append(f"{where}: duplicate id (also in {seen_ids[qid]})")
            seen_ids[qid] = where
            if not query.strip() or query != query.strip():
                errors.append(f"{where}: empty query or surrounding whitespace")
            key = (kind, query)
            if key in seen_queries:
                errors.append(
                    f"{where}: duplicate {kind} query {query!r} (also {seen_queries[key]})"
                )
            seen_queries[key] = where
            if not obj["why"].strip():
                errors.append(f"{where}: empty 'why'")
            if not judg:
                errors.append(f"{where}: no judgments")
            for name, grade in judg.items():
                if not isinstance(grade, int) or isinstance(grade, bool) or not 0 <= grade <= 3:
                    errors.append(
                        f"{where}: grade for {name!r} must be an integer 0..3, got {grade!r}"
                    )
                if name not in names:
                    errors.append(f"{where}: package {name!r} is not in the catalog")
            good = [n for n, g in judg.items() if isinstance(g, int) and g >= 2]
            if not good:
                errors.append(f"{where}: no package graded >= 2")
            if kind == "exact_name":
                if good != [query]:
                    errors.append(
                        f"{where}: exact_name must have exactly one package graded >= 2, "
                        f"the query itself; got {good}"
                    )
                elif judg[query] != 3:
                    errors.append(f"{where}: the named package should have grade 3")
            counts[split][kind] += 1
            n_judged[split] += len(judg)

    # counts table
    width = max(len(k) for k in KINDS)
    print(f"catalog: {catalog_path} ({len(names)} names)")
    print(f"| {'kind':<{width}} | {'dev':>4} | {'test':>4} | {'total':>5} |")
    print(f"|{'-' * (width + 2)}|{'-' * 6}|{'-' * 6}|{'-' * 7}|")
    for kind in KINDS:
        d, t = counts["dev"][kind], counts["test"][kind]
        print(f"| {kind:<{width}} | {d:>4} | {t:>4} | {d + t:>5} |")
    d, t = sum(counts["dev"].values()), sum(counts["test"].values())
    print(f"| {'all':<{width}} | {d:>4} | {t:>4} | {d + t:>5} |")
    print(f"judged packages: dev {n_judged['dev']}, test {n_judged['test']}")

    if errors:
        print(f"\n{len(errors)} problem(s):", file=sys.stderr)
        for e in errors:
            print("  " + e, file=sys.stderr)
        return 1
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
