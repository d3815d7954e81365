"""Embed the whole catalog with WordLlama (256 dims), offline, and cache the matrices in /tmp.

    /tmp/wl-venv/bin/python bench/relevance/vectors/embed.py            # every document text
    /tmp/wl-venv/bin/python bench/relevance/vectors/embed.py --force    # re-embed, re-time

Document texts (``TEXTS``), one row per package (the first of a duplicated name wins):

* ``ns``   name + summary
* ``nsd``  name + summary + the first sentence of the description
* ``nsdt`` the same + the labels of its debtags (``use::editing`` -> "Editing"), from the
  vocabulary in ``portal/data/debtags-vocabulary``

WordLlama's loader looks for its bundled tokenizer in ``wordllama/tokenizer/`` (singular)
while the wheel ships it in ``wordllama/tokenizers/``, and then tries to download it. Passing
the installed package's own folder as ``cache_dir`` makes it find both the weights
(``weights/l2_supercat_256.safetensors``) and the tokenizer
(``tokenizers/l2_supercat_tokenizer_config.json``); ``disable_download=True`` makes any
miss an error instead of a network call. Prints and saves (``timings.json`` beside this file)
the time to embed the catalog per text and the time per query (embed + brute-force top 100).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no hub look-ups, ever
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]  # /work/main
CATALOG = ROOT / "data" / "debian-bookworm-main.jsonl.gz"
VOCABULARY = ROOT / "portal" / "data" / "debtags-vocabulary"
CACHE = Path(os.environ.get("WL_CACHE", "/tmp/wl-cache"))
TEXTS = ("ns", "nsd", "nsdt")
DEPTH = 100


def load_model():
    """WordLlama l2_supercat 256-d from the files inside the installed wheel, no network."""
    import wordllama
    from wordllama import WordLlama

    package_dir = Path(wordllama.__file__).resolve().parent
    return WordLlama.load("l2_supercat", dim=256, cache_dir=package_dir, disable_download=True)


def load_catalog() -> list[dict]:
    """Every package of the catalog, in file order; the first line of a duplicated name wins."""
    seen, packages = set(), []
    with gzip.open(CATALOG, "rt") as handle:
        for line in handle:
            package = json.loads(line)
            if package["name"] not in seen:
                seen.add(package["name"])
                packages.append(package)
    return packages


def tag_labels() -> dict[str, str]:
    """Tag -> label (the first Description line of its stanza)."""
    labels, tag = {}, None
    for line in VOCABULARY.read_text().splitlines():
        if line.startswith("Tag: "):
            tag = line[5:].strip()
        elif line.startswith("Description: ") and tag:
            labels[tag] = line[13:].strip()
            tag = None
        elif not line.strip():
            tag = None
    return labels


def first_sentence(text: str, limit: int = 300) -> str:
    """The description's first sentence (up to ". " or a paragraph break), at most limit chars."""
    head = (text or "").split("\n\n")[0].replace("\n", " ")
    match = re.search(r"(?<=[.!?])\s", head)
    return (head[: match.start()] if match else head)[:limit].strip()


def document(package: dict, text: str, labels: dict[str, str]) -> str:
    """The text embedded for one package."""
    parts = [package["name"], package.get("summary") or ""]
    if text in ("nsd", "nsdt"):
        parts.append(first_sentence(package.get("description") or ""))
    if text == "nsdt":
        names = dict.fromkeys(labels[t] for t in package.get("tags", []) if t in labels)
        parts.append(", ".join(names))
    return ". ".join(p for p in parts if p)


def embeddings(model, packages: list[dict], text: str, force: bool = False):
    """(matrix of unit rows, seconds spent embedding or None when read from the cache)."""
    path = CACHE / f"catalog-{text}.npy"
    names_path = CACHE / "names.json"
    names = [p["name"] for p in packages]
    cached = not force and path.exists() and names_path.exists()
    if cached and json.loads(names_path.read_text()) == names:
        return np.load(path), None
    labels = tag_labels()
    docs = [document(p, text, labels) for p in packages]
    start = time.perf_counter()
    matrix = model.embed(docs, norm=True, batch_size=256)
    seconds = time.perf_counter() - start
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(path, matrix.astype(np.float32))
    names_path.write_text(json.dumps(names))
    return matrix, seconds


def top(matrix: np.ndarray, query_vec: np.ndarray, k: int = DEPTH) -> np.ndarray:
    """Row indices of the k highest cosine similarities (rows and query are unit vectors)."""
    scores = matrix @ query_vec
    part = np.argpartition(-scores, k)[:k]
    return part[np.argsort(-scores[part], kind="stable")]


def time_queries(model, matrix: np.ndarray, queries: list[str]) -> dict[str, float]:
    """Mean milliseconds per query: embedding alone, and embedding + top-100 search."""
    start = time.perf_counter()
    vecs = [model.embed(q, norm=True)[0] for q in queries]
    embed_ms = (time.perf_counter() - start) * 1000 / len(queries)
    start = time.perf_counter()
    for vec in vecs:
        top(matrix, vec)
    search_ms = (time.perf_counter() - start) * 1000 / len(queries)
    return {"embed_ms": embed_ms, "search_ms": search_ms, "total_ms": embed_ms + search_ms}


def judged_queries() -> list[str]:
    rows = []
    for split in ("dev", "test"):
        with (HERE.parent / f"{split}.jsonl").open() as handle:
            rows += [json.loads(line)["query"] for line in handle if line.strip()]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="re-embed even when cached")
    parser.add_argument("--text", choices=TEXTS, action="append", help="only these texts")
    args = parser.parse_args()
    start = time.perf_counter()
    model = load_model()
    load_s = time.perf_counter() - start
    packages = load_catalog()
    saved = HERE / "timings.json"
    old = json.loads(saved.read_text()).get("texts", {}) if saved.exists() else {}
    report = {"model_load_s": load_s, "packages": len(packages), "texts": dict(old)}
    print(f"model loaded offline in {load_s:.2f} s; {len(packages)} packages", file=sys.stderr)
    for text in args.text or TEXTS:
        matrix, seconds = embeddings(model, packages, text, force=args.force)
        if seconds is None:  # cached: keep the timing measured when it was built
            seconds = old.get(text, {}).get("catalog_s")
        per_query = time_queries(model, matrix, judged_queries())
        report["texts"][text] = {"catalog_s": seconds, **per_query}
        shown = "cached" if seconds is None else f"{seconds:.1f} s"
        print(
            f"{text:5} catalog {shown}; per query: embed {per_query['embed_ms']:.2f} ms, "
            f"top-100 search {per_query['search_ms']:.2f} ms",
            file=sys.stderr,
        )
    saved.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
