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


class Checker:
    """What the lines seen so far add up to, and every problem found."""

    def __init__(self, names: set[str]) -> None:
        self.names = names
        self.errors: list[str] = []
        self.counts: dict[str, Counter] = {s: Counter() for s in SPLITS}
        self.seen_ids: dict[str, str] = {}
        self.seen_queries: dict[tuple[str, str], str] = {}
        self.n_judged: Counter = Counter()

    def check_file(self, split: str) -> None:
        path = HERE / f"{split}.jsonl"
        if not path.exists():
            self.errors.append(f"{path}: missing")
            return
        for lineno, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            obj = self.parse(f"{split}.jsonl:{lineno}", raw)
            if obj is not None:
                self.check_entry(split, f"{split}.jsonl:{lineno} ({obj['id']})", obj)

    def parse(self, where: str, raw: str) -> dict | None:
        """The line's object if it is one with the required keys and types, else None."""
        if not raw.strip():
            self.errors.append(f"{where}: empty line")
            return None
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as e:
            self.errors.append(f"{where}: invalid JSON ({e})")
            return None
        if not isinstance(obj, dict):
            self.errors.append(f"{where}: not an object")
            return None
        bad_keys = False
        for key, typ in REQUIRED.items():
            if key not in obj:
                self.errors.append(f"{where}: missing key {key!r}")
                bad_keys = True
            elif not isinstance(obj[key], typ):
                self.errors.append(f"{where}: {key!r} should be {typ.__name__}")
                bad_keys = True
        return None if bad_keys else obj

    def check_entry(self, split: str, where: str, obj: dict) -> None:
        qid, kind, query, judg = obj["id"], obj["kind"], obj["query"], obj["judgments"]
        if kind not in KINDS:
            self.errors.append(f"{where}: unknown kind {kind!r}")
            return
        self.check_identity(where, qid, kind, query)
        if not obj["why"].strip():
            self.errors.append(f"{where}: empty 'why'")
        self.check_judgments(where, kind, query, judg)
        self.counts[split][kind] += 1
        self.n_judged[split] += len(judg)

    def check_identity(self, where: str, qid: str, kind: str, query: str) -> None:
        """The id's shape, and that neither the id nor the (kind, query) pair repeats."""
        if not re.fullmatch(rf"{re.escape(kind)}-\d{{3,}}", qid):
            self.errors.append(f"{where}: id should look like '{kind}-nnn'")
        if qid in self.seen_ids:
            self.errors.append(f"{where}: duplicate id (also in {self.seen_ids[qid]})")
        self.seen_ids[qid] = where
        if not query.strip() or query != query.strip():
            self.errors.append(f"{where}: empty query or surrounding whitespace")
        key = (kind, query)
        if key in self.seen_queries:
            self.errors.append(
                f"{where}: duplicate {kind} query {query!r} (also {self.seen_queries[key]})"
            )
        self.seen_queries[key] = where

    def check_judgments(self, where: str, kind: str, query: str, judg: dict) -> None:
        if not judg:
            self.errors.append(f"{where}: no judgments")
        for name, grade in judg.items():
            if not isinstance(grade, int) or isinstance(grade, bool) or not 0 <= grade <= 3:
                self.errors.append(
                    f"{where}: grade for {name!r} must be an integer 0..3, got {grade!r}"
                )
            if name not in self.names:
                self.errors.append(f"{where}: package {name!r} is not in the catalog")
        good = [n for n, g in judg.items() if isinstance(g, int) and g >= 2]
        if not good:
            self.errors.append(f"{where}: no package graded >= 2")
        if kind != "exact_name":
            return
        if good != [query]:
            self.errors.append(
                f"{where}: exact_name must have exactly one package graded >= 2, "
                f"the query itself; got {good}"
            )
        elif judg[query] != 3:
            self.errors.append(f"{where}: the named package should have grade 3")

    def print_counts(self, catalog_path: str) -> None:
        counts = self.counts
        width = max(len(k) for k in KINDS)
        print(f"catalog: {catalog_path} ({len(self.names)} names)")
        print(f"| {'kind':<{width}} | {'dev':>4} | {'test':>4} | {'total':>5} |")
        print(f"|{'-' * (width + 2)}|{'-' * 6}|{'-' * 6}|{'-' * 7}|")
        for kind in KINDS:
            d, t = counts["dev"][kind], counts["test"][kind]
            print(f"| {kind:<{width}} | {d:>4} | {t:>4} | {d + t:>5} |")
        d, t = sum(counts["dev"].values()), sum(counts["test"].values())
        print(f"| {'all':<{width}} | {d:>4} | {t:>4} | {d + t:>5} |")
        print(f"judged packages: dev {self.n_judged['dev']}, test {self.n_judged['test']}")


def main(argv: list[str]) -> int:
    catalog_path = argv[1] if len(argv) > 1 else DEFAULT_CATALOG
    checker = Checker(load_catalog(catalog_path))
    for split in SPLITS:
        checker.check_file(split)
    checker.print_counts(catalog_path)
    if checker.errors:
        print(f"\n{len(checker.errors)} problem(s):", file=sys.stderr)
        for e in checker.errors:
            print("  " + e, file=sys.stderr)
        return 1
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
