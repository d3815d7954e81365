"""Ranking metrics over graded judgments (0 wrong, 1 related, 2 good, 3 the one meant).

Pure functions, unit-tested in ``tests/unit/bench/test_relevance_metrics.py``.

* **nDCG@k**: gains ``2**grade - 1`` discounted by ``log2(rank + 1)``, divided by the same
  for the ideal order of every judged package (unjudged results count 0).
* **MRR@k**: the reciprocal rank of the first *good* result (grade >= 2) in the top k.
* **success@k**: whether a good result (grade >= 2) is in the top k. For exact names only
  the named package is good (the validator enforces it), so success@1 means "it is first".
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

GOOD = 2


def dcg(grades: Sequence[int]) -> float:
    return sum((2**g - 1) / math.log2(i + 2) for i, g in enumerate(grades))


def ndcg_at(ranked: Sequence[str], judgments: Mapping[str, int], k: int = 10) -> float:
    ideal = dcg(sorted(judgments.values(), reverse=True)[:k])
    if ideal == 0:
        return 0.0
    return dcg([judgments.get(name, 0) for name in ranked[:k]]) / ideal


def first_good(ranked: Sequence[str], judgments: Mapping[str, int], k: int = 10) -> int | None:
    """The 1-based rank of the first good result in the top k, or None."""
    for i, name in enumerate(ranked[:k]):
        if judgments.get(name, 0) >= GOOD:
            return i + 1
    return None


def mrr_at(ranked: Sequence[str], judgments: Mapping[str, int], k: int = 10) -> float:
    rank = first_good(ranked, judgments, k)
    return 1.0 / rank if rank else 0.0


def success_at(ranked: Sequence[str], judgments: Mapping[str, int], k: int) -> bool:
    return first_good(ranked, judgments, k) is not None


def score(ranked: Sequence[str], judgments: Mapping[str, int], total: int) -> dict[str, float]:
    """Every metric of one query's ranking (``total``: how many results the search found)."""
    return {
        "ndcg10": ndcg_at(ranked, judgments, 10),
        "mrr10": mrr_at(ranked, judgments, 10),
        "s1": float(success_at(ranked, judgments, 1)),
        "s3": float(success_at(ranked, judgments, 3)),
        "s5": float(success_at(ranked, judgments, 5)),
        "zero": float(total == 0),
    }


def mean(rows: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """The mean of every metric over rows (an empty input gives an empty dict)."""
    if not rows:
        return {}
    return {key: sum(r[key] for r in rows) / len(rows) for key in rows[0]}
