"""Merging as-you-type fragments of the query log (no Redis needed)."""

from __future__ import annotations

from search.analytics import MERGE_WINDOW, merge_fragments


def entry(visitor: str, t: float, q: str, n: int = 1) -> dict:
    return {"v": visitor, "t": t, "q": q, "n": n}


def test_a_visitors_fragments_count_once_as_the_final_query():
    typed = [entry("a", 0, "p"), entry("a", 1, "pd"), entry("a", 2, "pdf"), entry("a", 3, "pdf v")]
    assert merge_fragments(typed) == [entry("a", 3, "pdf v")]


def test_other_visitors_repeats_and_late_extensions_are_kept():
    entries = [
        entry("a", 0, "vim"),
        entry("b", 1, "vim plugin"),  # another visitor: does not supersede a's "vim"
        entry("a", 2, "vim"),  # the same query again: kept (not an extension)
        entry("a", 3 + MERGE_WINDOW, "vim plugin"),  # too late for the first two
    ]
    kept = merge_fragments(entries)
    assert entry("a", 0, "vim") in kept and entry("b", 1, "vim plugin") in kept
    assert entry("a", 3 + MERGE_WINDOW, "vim plugin") in kept
    assert entry("a", 2, "vim") in kept  # extended 16 s later: past the window


def test_merging_is_linear_in_the_entries():
    # 20,000 entries of one visitor (a bot, say) took minutes when every pair was compared;
    # this finishes at once, and every entry but the last is superseded.
    entries = [entry("bot", i * 0.001, "x" * (1 + i % 50)) for i in range(20_000)]
    kept = merge_fragments(entries)
    assert len(kept) < 1000
