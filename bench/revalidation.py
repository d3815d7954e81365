"""Revalidated repeats against full answers (issue #15): what a shared cache or a browser
saves by asking "still the same?" with ``If-None-Match`` instead of fetching again.

``python -m bench.revalidation`` starts the web app under gunicorn (as ``bench.search``
does, on the catalog database and the live index, read only), draws searches from the
catalog (the search benchmark's mix: API and page), asks each twice so its answer is in the
search cache, then measures one request at a time:

* **full**: the answer again (from the search cache: the cheapest full answer there is);
* **revalidated**: the same request with the ETag of the first answer (a 304 when nothing
  changed: no search, no rendering, one Redis round trip for the generation).

It prints a table and writes ``bench/results/revalidation.{md,json}``: the share of 304s
(every repeat should be one while the index does not change), latency percentiles and
bytes per answer.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from typing import Any

import requests

from bench import common
from bench import search_queries as queries
from bench.search import harness

PORT = 8003


def measure(session: requests.Session, base: str, paths: list[str], etags: dict[str, str] | None):
    """One pass over ``paths``: (latencies in ms, status codes, bytes)."""
    latencies, codes, sizes = [], [], []
    for path in paths:
        headers = {"If-None-Match": etags[path]} if etags else {}
        started = time.perf_counter()
        response = session.get(base + path, headers=headers)
        latencies.append((time.perf_counter() - started) * 1000)
        codes.append(response.status_code)
        sizes.append(len(response.content))
        if response.status_code >= 400 and len(codes) == 1:
            common.say(f"{path}: HTTP {response.status_code} {response.text[:200]}")
    return latencies, codes, sizes


def row(label: str, latencies: list[float], codes: list[int], sizes: list[int]) -> dict[str, Any]:
    return {
        "answer": label,
        "requests": len(codes),
        "304 share": f"{100 * codes.count(304) / len(codes):.1f}%",
        "errors": sum(c >= 400 for c in codes),
        "p50 ms": round(common.percentile(latencies, 50), 2),
        "p95 ms": round(common.percentile(latencies, 95), 2),
        "mean ms": round(statistics.mean(latencies), 2),
        "bytes per answer": round(statistics.mean(sizes)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--searches", type=int, default=300, help="searches drawn (300)")
    parser.add_argument("--rounds", type=int, default=3, help="passes per measurement (3)")
    args = parser.parse_args()

    common.apply_env(read_only_data=True)
    common.setup_django()
    from django.conf import settings

    conn = common.pg_connect(settings.DATABASES["default"]["NAME"])
    mix = queries.search_mix(queries.load_catalog(conn), args.searches)
    conn.close()
    api = [q.path() for q in mix]
    pages = ["/" + p.removeprefix("/api/search") for p in api]
    server = harness.Server(
        port=PORT,
        worker_class="gthread",
        workers=2,
        threads=4,
        cache_prefix="benchreval",
        index_prefix=settings.SEARCH_INDEX_PREFIX,
        source_db=settings.DATABASES["default"]["NAME"],
        logfile=common.RESULTS / "revalidation.gunicorn.log",
    )
    common.say("collecting static files (the pages use hashed names with DEBUG off) ...")
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"],
        cwd=common.ROOT,
        env=server.env(),
        check=True,
    )
    common.say(f"starting the web app on port {PORT} ...")
    server.start()
    base = f"http://{harness.HOST}:{PORT}"
    rows = []
    try:
        session = requests.Session()
        for label, paths in (("API", api), ("page", pages)):
            common.say(f"{label}: asking {len(paths)} searches twice (fills the search cache)")
            etags = {}
            for _ in range(2):
                for path in paths:
                    etags[path] = session.get(base + path).headers.get("ETag", "")
            for name, tags in (("full", None), ("revalidated", etags)):
                lat, codes, sizes = [], [], []
                for _ in range(args.rounds):
                    a, b, c = measure(session, base, paths, tags)
                    lat, codes, sizes = lat + a, codes + b, sizes + c
                rows.append(row(f"{label} {name}", lat, codes, sizes))
                common.say(f"{label} {name}: {rows[-1]}")
    finally:
        server.stop()
    headers = list(rows[0])
    table = common.markdown_table(headers, [[r[h] for h in headers] for r in rows])
    print(table)
    text = (
        "# Revalidation\n\n"
        f"Run {time.strftime('%Y-%m-%dT%H:%M:%S%z')} on {common.machine()['cpus']} CPUs "
        f"(`python -m bench.revalidation --searches {args.searches} --rounds {args.rounds}`): "
        "one request at a time against gunicorn (2 workers x 4 threads), every answer "
        "already in the search cache; *revalidated* sends the first answer's ETag.\n\n"
        + table
        + "\n"
    )
    common.write_text("revalidation.md", text)
    common.write_json("revalidation.json", {"rows": rows, "machine": common.machine()})


if __name__ == "__main__":
    main()
