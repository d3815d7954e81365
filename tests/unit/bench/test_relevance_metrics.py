"""The relevance metrics, on hand-computed cases."""

from __future__ import annotations

import math

import pytest

from bench.relevance import metrics

JUDGED = {"vlc": 3, "mpv": 3, "totem": 2, "vlc-data": 1, "vlc-doc": 0}


def test_ndcg_is_one_for_the_ideal_order_and_less_otherwise():
    assert metrics.ndcg_at(["vlc", "mpv", "totem", "vlc-data"], JUDGED) == pytest.approx(1.0)
    worse = metrics.ndcg_at(["totem", "vlc", "mpv"], JUDGED)
    ideal = 7 + 7 / math.log2(3) + 3 / math.log2(4) + 1 / math.log2(5)
    got = 3 + 7 / math.log2(3) + 7 / math.log2(4)
    assert worse == pytest.approx(got / ideal)
    assert metrics.ndcg_at(["unjudged", "vlc-doc"], JUDGED) == 0.0
    assert metrics.ndcg_at(["x"], {}) == 0.0


def test_mrr_and_success_count_only_good_results():
    ranked = ["vlc-data", "vlc-doc", "totem", "vlc"]
    assert metrics.first_good(ranked, JUDGED) == 3
    assert metrics.mrr_at(ranked, JUDGED) == pytest.approx(1 / 3)
    assert not metrics.success_at(ranked, JUDGED, 2)
    assert metrics.success_at(ranked, JUDGED, 3)
    assert metrics.mrr_at(ranked, JUDGED, k=2) == 0.0


def test_score_and_mean():
    one = metrics.score(["vlc"], JUDGED, total=1)
    assert (one["s1"], one["zero"]) == (1.0, 0.0)
    none = metrics.score([], JUDGED, total=0)
    assert (none["ndcg10"], none["zero"]) == (0.0, 1.0)
    assert metrics.mean([one, none])["s1"] == 0.5
    assert metrics.mean([]) == {}
