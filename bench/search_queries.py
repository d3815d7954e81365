"""The search benchmark's workload: a deterministic mix of realistic queries.

Everything is drawn from the catalog itself (read-only) with a seeded random generator, so
the same catalog and seed always give the same mix:

* single words: parts of package names (``gtk``, ``python3``, ``perl``), frequent summary
  words and common software terms (``editor``, ``pdf``, ``web server`` ...);
* exact package names (the popular ones, plus ``vim``, ``git``, ``libssl3`` ...);
* two or three consecutive words from a summary (``image viewer``, ``development files``);
* typos (a deleted, doubled, swapped or replaced letter: ``firefx``);
* with and without filters (section, priority, architecture, maintainer, size ranges and tag
  facets such as ``tag.interface=x11`` or ``tag.implemented-in=python``), different sorts,
  sometimes page 2 or 3, and a few filter-only "browse" requests with no text.

Autocomplete prefixes are prefixes (1 to 8 characters) of package names, popular ones more
often.

The *replay* workload (``bench.search``'s ``replay`` phase) is a long stream over many
distinct searches, drawn the same way: :func:`distinct_searches` draws until it has N
distinct searches (distinct by normalised text, filters, sort and page: :func:`search_key`),
ranked by how often the draw produced them, and :func:`zipf_stream` picks from them with a
Zipf distribution (rank r with probability proportional to 1/r^s, s about 1, seeded), as
real search logs look: a few searches very often, most of them once.
"""

from __future__ import annotations

import bisect
import random
import re
from collections import Counter
from dataclasses import dataclass, field
from itertools import accumulate
from typing import Any
from urllib.parse import urlencode

COMMON_TERMS = [
    "editor",
    "text editor",
    "browser",
    "web browser",
    "pdf",
    "pdf viewer",
    "image viewer",
    "image",
    "python",
    "web server",
    "database",
    "library",
    "ssl",
    "compiler",
    "game",
    "music player",
    "video",
    "audio",
    "email client",
    "terminal",
    "shell",
    "file manager",
    "desktop",
    "kernel",
    "firmware",
    "font",
    "fonts",
    "icon theme",
    "documentation",
    "development files",
    "perl module",
    "ruby",
    "java",
    "javascript",
    "rust",
    "golang",
    "haskell",
    "xml",
    "json",
    "yaml",
    "http",
    "ftp",
    "ssh",
    "vpn",
    "dns",
    "network",
    "monitoring",
    "backup",
    "compression",
    "zip",
    "encryption",
    "gpg",
    "password",
    "calendar",
    "spreadsheet",
    "office",
    "latex",
    "scientific",
    "math",
    "statistics",
    "machine learning",
    "bioinformatics",
    "chemistry",
    "astronomy",
    "gis",
    "map",
    "camera",
    "scanner",
    "printer",
    "bluetooth",
    "wifi",
    "usb",
    "sound",
    "midi",
    "synthesizer",
    "emulator",
    "virtual machine",
    "container",
    "git",
    "version control",
    "debugger",
    "profiler",
    "testing",
    "unit test",
    "parser",
    "regular expression",
    "sql",
    "postgresql",
    "mysql",
    "sqlite",
    "redis",
    "cache",
    "proxy",
    "firewall",
    "mail server",
    "irc",
    "chat",
    "xmpp",
    "torrent",
    "screenshot",
    "window manager",
    "gtk",
    "qt",
    "kde",
    "gnome",
    "xfce",
    "wayland",
    "x11",
    "opengl",
    "command line",
    "daemon",
    "logging",
    "scheduler",
    "dictionary",
    "spell checker",
    "translation",
    "ocr",
    "speech",
    "ebook",
    "markdown",
    "wiki",
    "web framework",
    "rest api",
    "plugin",
    "theme",
    "bash completion",
    "emacs",
    "clipboard",
    "notification",
    "system monitor",
    "disk usage",
    "partition",
    "filesystem",
    "raid",
    "boot",
    "systemd",
    "sandbox",
    "security",
    "forensics",
    "password manager",
    "video editor",
    "media player",
    "image editor",
    "3d",
    "cad",
    "physics",
    "simulation",
    "benchmark",
    "archive",
    "ocaml",
    "lua",
    "tcl",
    "php",
    "node",
    "npm",
    "django",
    "flask",
    "numpy",
    "matrix",
    "graph",
    "plotting",
    "charts",
    "diff",
    "merge",
    "patch",
    "build system",
    "make",
    "cmake",
]
FAMOUS_NAMES = [
    "vim",
    "git",
    "firefox-esr",
    "libssl3",
    "python3-django",
    "emacs",
    "gimp",
    "nginx",
    "apache2",
    "postgresql",
    "curl",
    "wget",
    "openssh-server",
    "docker.io",
    "vlc",
    "libreoffice",
    "inkscape",
    "htop",
    "tmux",
    "zsh",
    "gcc",
    "make",
    "bash",
]
FAMOUS_TYPOS = [
    "firefx",
    "pyhton",
    "libreofice",
    "postgersql",
    "chromum",
    "thunderbrid",
    "wireshrk",
    "inkscpe",
    "nodjes",
    "imagemagik",
]
STOPWORDS = {
    "the",
    "and",
    "for",
    "with",
    "from",
    "that",
    "this",
    "are",
    "into",
    "your",
    "which",
    "when",
    "where",
    "will",
    "can",
    "has",
    "have",
    "not",
    "its",
    "you",
    "using",
    "used",
    "use",
    "based",
    "other",
    "more",
    "than",
    "also",
    "all",
    "any",
    "such",
    "very",
    "these",
    "those",
    "they",
    "their",
    "them",
    "then",
    "there",
    "been",
    "being",
    "about",
    "each",
    "only",
    "some",
    "both",
    "most",
}
TAG_FILTERS = {  # facet -> values offered (checked against the catalog; unknown ones dropped)
    "interface": ["x11", "commandline", "text-mode", "graphical", "daemon"],
    "implemented-in": ["python", "c", "c++", "perl", "java", "ruby"],
    "uitoolkit": ["gtk", "qt", "ncurses", "sdl"],
    "role": ["program", "devel-lib", "shared-lib", "documentation", "plugin"],
    "use": ["editing", "viewing", "gameplaying", "converting", "monitor"],
    "works-with": ["image", "audio", "text", "mail", "video"],
    "scope": ["utility", "application"],
}
SIZE_KEYS = ["tiny", "small", "medium", "large", "huge"]


@dataclass(frozen=True)
class Query:
    """One search request: text, filters (facet -> values), sort and page."""

    q: str
    filters: dict[str, tuple[str, ...]] = field(default_factory=dict)
    sort: str = "relevance"
    page: int = 1
    kind: str = "word"

    def path(self) -> str:
        pairs: list[tuple[str, str]] = []
        if self.q:
            pairs.append(("q", self.q))
        for name, values in self.filters.items():
            pairs.extend((name, v) for v in values)
        if self.sort != "relevance":
            pairs.append(("sort", self.sort))
        if self.page != 1:
            pairs.append(("page", str(self.page)))
        return "/api/search?" + urlencode(pairs)

    def as_dict(self) -> dict[str, Any]:
        return {
            "q": self.q,
            "filters": {k: list(v) for k, v in self.filters.items()},
            "sort": self.sort,
            "page": self.page,
            "kind": self.kind,
        }


@dataclass
class Catalog:
    """What the mix is drawn from (read once from the catalog database)."""

    names: list[tuple[str, int]]  # (name, reverse dependency count), most depended-on first
    summaries: list[str]  # summaries of the most depended-on packages
    sections: list[tuple[str, int]]  # (section, packages)
    maintainers: list[str]  # the biggest maintainers
    tags: dict[str, list[str]]  # tag facet -> values present in the catalog


def load_catalog(conn: Any) -> Catalog:
    """Read the catalog through a psycopg2 connection (only SELECTs, read-only session)."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT name, reverse_dependency_count FROM portal_package"
            " ORDER BY reverse_dependency_count DESC, name"
        )
        names = [(n, int(c)) for n, c in cur.fetchall()]
        cur.execute(
            "SELECT summary FROM portal_package WHERE summary <> ''"
            " ORDER BY reverse_dependency_count DESC, name LIMIT 20000"
        )
        summaries = [r[0] for r in cur.fetchall()]
        cur.execute(
            "SELECT s.name, count(*) FROM portal_package p"
            " JOIN portal_section s ON s.id = p.section_id GROUP BY s.name ORDER BY 2 DESC, 1"
        )
        sections = [(n, int(c)) for n, c in cur.fetchall()]
        cur.execute(
            "SELECT m.name FROM portal_package p JOIN portal_maintainer m"
            " ON m.id = p.maintainer_id GROUP BY m.name ORDER BY count(*) DESC, m.name LIMIT 25"
        )
        maintainers = [r[0] for r in cur.fetchall()]
        cur.execute(
            "SELECT DISTINCT t.facet, t.value FROM portal_tag t"
            " JOIN portal_package_tags pt ON pt.tag_id = t.id ORDER BY 1, 2"
        )
        tags: dict[str, list[str]] = {}
        for facet, value in cur.fetchall():
            tags.setdefault(facet, []).append(value)
    return Catalog(names, summaries, sections, maintainers, tags)


def _words(text: str) -> list[str]:
    return [w for w in re.findall(r"[a-z][a-z0-9+]*", text.lower())]


def name_parts(catalog: Catalog, top: int = 400) -> list[str]:
    counts: Counter[str] = Counter()
    for name, _ in catalog.names:
        for part in re.split(r"[-.+0-9]+", name.lower()):
            if len(part) >= 3 and part not in {"lib", "dev", "dbg", "doc", "common", "data"}:
                counts[part] += 1
    return [w for w, _ in counts.most_common(top)]


def summary_words(catalog: Catalog, top: int = 300) -> list[str]:
    counts: Counter[str] = Counter()
    for summary in catalog.summaries:
        for word in _words(summary):
            if len(word) >= 4 and word not in STOPWORDS:
                counts[word] += 1
    return [w for w, _ in counts.most_common(top)]


def typo(word: str, rng: random.Random) -> str:
    """One edit (delete, double, swap, replace) inside the word, never the first letter."""
    if len(word) < 5:
        return word
    i = rng.randrange(1, len(word) - 1)
    kind = rng.choice(["delete", "double", "swap", "replace"])
    if kind == "delete":
        return word[:i] + word[i + 1 :]
    if kind == "double":
        return word[:i] + word[i] + word[i:]
    if kind == "swap":
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    letters = "aeioustrnl"
    return word[:i] + rng.choice([c for c in letters if c != word[i]]) + word[i + 1 :]


def _weighted_name(catalog: Catalog, rng: random.Random) -> str:
    """A package name: most often one of the 2,000 most depended-on, sometimes any."""
    if rng.random() < 0.7:
        return catalog.names[min(int(rng.expovariate(1 / 300)), 1999)][0]
    return rng.choice(catalog.names)[0]


def _phrase(catalog: Catalog, rng: random.Random) -> str:
    for _ in range(50):
        words = [
            w
            for w in _words(rng.choice(catalog.summaries[:5000]))
            if w not in STOPWORDS and len(w) > 2
        ]
        if len(words) >= 2:
            n = rng.choice([2, 2, 2, 3])
            start = rng.randrange(0, max(1, len(words) - n + 1))
            return " ".join(words[start : start + n])
    return "image viewer"


def _filters(catalog: Catalog, rng: random.Random) -> dict[str, tuple[str, ...]]:
    filters: dict[str, tuple[str, ...]] = {}
    for _ in range(rng.choice([1, 1, 1, 2])):
        pick = rng.random()
        if pick < 0.28:
            top = catalog.sections[:25]
            sections = [s for s, _ in top]
            weights = [c for _, c in top]
            filters["section"] = (rng.choices(sections, weights)[0],)
        elif pick < 0.70:
            facet = rng.choice(sorted(f for f in TAG_FILTERS if f in catalog.tags))
            values = [v for v in TAG_FILTERS[facet] if v in catalog.tags[facet]]
            if not values:
                continue
            chosen = [rng.choice(values)]
            if rng.random() < 0.15 and len(values) > 1:  # OR within a facet
                chosen.append(rng.choice([v for v in values if v != chosen[0]]))
            filters[f"tag.{facet}"] = tuple(chosen)
        elif pick < 0.82:
            filters["size"] = tuple(sorted(set(rng.sample(SIZE_KEYS, rng.choice([1, 1, 2])))))
        elif pick < 0.88:
            filters["architecture"] = (rng.choice(["all", "amd64"]),)
        elif pick < 0.93:
            filters["priority"] = (rng.choice(["optional", "optional", "standard", "required"]),)
        else:
            filters["maintainer"] = (rng.choice(catalog.maintainers[:15]),)
    return filters


def _query_text(
    catalog: Catalog, rng: random.Random, parts: list[str], words: list[str], i: int
) -> tuple[str, str]:
    """(kind, text) of one search: the kinds' shares are the mix's."""
    roll = rng.random()
    if roll < 0.04:
        return "browse", ""
    if roll < 0.16:
        q = FAMOUS_NAMES[i % len(FAMOUS_NAMES)] if rng.random() < 0.3 else None
        return "name", q or _weighted_name(catalog, rng)
    if roll < 0.38:
        return "term", rng.choice(COMMON_TERMS)
    if roll < 0.52:
        return "name-part", rng.choice(parts[:200])
    if roll < 0.64:
        return "summary-word", rng.choice(words[:200])
    if roll < 0.85:
        return "phrase", _phrase(catalog, rng)
    if rng.random() < 0.2:
        return "typo", rng.choice(FAMOUS_TYPOS)
    source = rng.choice(
        [rng.choice(COMMON_TERMS), rng.choice(parts[:150]), _weighted_name(catalog, rng)]
    )
    tokens = source.split()
    j = rng.randrange(len(tokens))
    tokens[j] = typo(tokens[j], rng)
    return "typo", " ".join(tokens)


def _draw(
    catalog: Catalog, rng: random.Random, parts: list[str], words: list[str], i: int
) -> Query:
    """The ``i``-th search of a mix: text, filters (4 in 10), sort, page (1 in 10 deeper)."""
    kind, q = _query_text(catalog, rng, parts, words, i)
    filters = _filters(catalog, rng) if kind == "browse" or rng.random() < 0.4 else {}
    sort = rng.choices(["relevance", "popularity", "name", "size"], [75, 10, 10, 5])[0]
    if kind == "browse" and sort == "relevance":
        sort = "popularity"
    page = 1 if rng.random() < 0.9 else rng.choice([2, 2, 3])
    return Query(q=q, filters=filters, sort=sort, page=page, kind=kind)


def search_mix(catalog: Catalog, n: int = 600, seed: int = 20261121) -> list[Query]:
    """``n`` search requests (deterministic for a given catalog and seed)."""
    rng = random.Random(seed)
    parts = name_parts(catalog)
    words = summary_words(catalog)
    return [_draw(catalog, rng, parts, words, i) for i in range(n)]


def suggest_mix(catalog: Catalog, n: int = 500, seed: int = 20261121) -> list[str]:
    """``n`` autocomplete prefixes of package names (1 to 8 characters, 2-5 most often)."""
    rng = random.Random(seed + 1)
    prefixes = []
    for _ in range(n):
        name = _weighted_name(catalog, rng)
        length = rng.choices([1, 2, 3, 4, 5, 6, 7, 8], [3, 10, 16, 18, 16, 12, 8, 6])[0]
        prefixes.append(name[: min(length, len(name))])
    return prefixes


def describe(mix: list[Query]) -> dict[str, Any]:
    """Counts per kind, with filters, per sort (for the report)."""
    return {
        "queries": len(mix),
        "kinds": dict(Counter(q.kind for q in mix).most_common()),
        "with_filters": sum(1 for q in mix if q.filters),
        "multi_word": sum(1 for q in mix if len(q.q.split()) > 1),
        "sorts": dict(Counter(q.sort for q in mix).most_common()),
        "deeper_pages": sum(1 for q in mix if q.page > 1),
        "filters_used": dict(
            Counter(
                name.split(".")[0] if not name.startswith("tag.") else name
                for q in mix
                for name in q.filters
            ).most_common()
        ),
    }


# --------------------------------------------------------------------------- replay stream


def search_key(query: Query) -> tuple[Any, ...]:
    """What makes two searches the same answer: the text normalised as the portal's cache
    key normalises it (lower case, whitespace collapsed), the filters with sorted values,
    the sort and the page."""
    filters = tuple(sorted((name, tuple(sorted(set(v)))) for name, v in query.filters.items() if v))
    return (" ".join(query.q.lower().split()), filters, query.sort, query.page)


def distinct_searches(catalog: Catalog, n: int = 20_000, seed: int = 20261121) -> list[Query]:
    """``n`` distinct searches drawn as the mix draws them, most popular first.

    Searches are drawn until ``n`` distinct ones (by :func:`search_key`) were seen; their
    order is how often the draw produced them (the common terms and famous names without
    filters come out again and again; a typo or a phrase with filters about once), ties in
    the order they first came out. That order is the popularity rank of :func:`zipf_stream`.
    """
    rng = random.Random(seed + 2)
    parts = name_parts(catalog)
    words = summary_words(catalog)
    seen: dict[tuple[Any, ...], list[Any]] = {}  # key -> [draws, first draw, query]
    draws = 0
    while len(seen) < n:
        if draws > 50 * n:
            raise ValueError(f"the catalog gives fewer than {n} distinct searches")
        query = _draw(catalog, rng, parts, words, draws)
        entry = seen.setdefault(search_key(query), [0, draws, query])
        entry[0] += 1
        draws += 1
    ranked = sorted(seen.values(), key=lambda e: (-e[0], e[1]))
    return [query for _, _, query in ranked]


def zipf_stream(n_distinct: int, length: int, exponent: float = 1.0, seed: int = 0) -> list[int]:
    """``length`` ranks in ``[0, n_distinct)``, rank r drawn with probability proportional to
    ``1 / (r + 1) ** exponent`` (Zipf), from a seeded generator: the same arguments always
    give the same stream."""
    cumulative = list(accumulate(1.0 / (r + 1) ** exponent for r in range(n_distinct)))
    total = cumulative[-1]
    rng = random.Random(seed)
    last = n_distinct - 1
    return [min(bisect.bisect_left(cumulative, rng.random() * total), last) for _ in range(length)]


def describe_stream(stream: list[int], distinct: list[Query]) -> dict[str, Any]:
    """How much of the stream a cache could ever answer: the distinct searches it holds,
    and the hit ratio of an unbounded cache that never expires (every repeat a hit)."""
    used = len(set(stream))
    return {
        "requests": len(stream),
        "distinct_searches": len(distinct),
        "distinct_in_stream": used,
        "ideal_hit_ratio": round(1 - used / len(stream), 3) if stream else None,
        "top10_share": round(sum(1 for r in stream if r < 10) / len(stream), 3) if stream else None,
        "kinds": dict(Counter(distinct[r].kind for r in stream).most_common()),
        "with_filters": sum(1 for r in stream if distinct[r].filters),
        "deeper_pages": sum(1 for r in stream if distinct[r].page > 1),
    }
