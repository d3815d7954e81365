"""Result shaping: highlights are escaped before our own marks go in."""

from __future__ import annotations

from search.results import HL_POST, HL_PRE, hit_from, safe_highlight


def test_highlights_cannot_inject_markup():
    fragment = f'<script>x</script> {HL_PRE}vim{HL_POST} & "more"'
    assert str(safe_highlight(fragment)) == (
        "&lt;script&gt;x&lt;/script&gt; <mark>vim</mark> &amp; &quot;more&quot;"
    )


def test_a_hit_from_an_engine_hit():
    raw = {
        "_id": "42",
        "_score": 3.5,
        "_source": {"name": "vim", "summary": "Vi IMproved", "popularity": None},
        "highlight": {"summary": [f"Vi {HL_PRE}IM{HL_POST}proved"]},
    }
    hit = hit_from(raw)
    assert (hit.id, hit.name, hit.popularity, hit.tags) == (42, "vim", 0, [])
    assert str(hit.highlight["summary"]) == "Vi <mark>IM</mark>proved"
