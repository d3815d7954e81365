"""Full-rebuild benchmark: seconds, documents per second and peak memory of ``reindex``.

    .venv/bin/python -m bench.reindex                   # the real catalog, then 1,000,000
    .venv/bin/python -m bench.reindex --skip-1m         # the real catalog only (quick)
    .venv/bin/python -m bench.reindex --sizes real,250000,1000000 --keep

Every run is a separate ``python manage.py reindex --verbosity 0`` process (what operators
run), so its peak RSS is its own (``os.wait4``'s ``ru_maxrss``); RSS is also sampled from
``/proc`` while it runs, to show whether memory grows as the load proceeds. Seconds and
documents come from the command's own report (``RebuildResult``: lock taken to aliases
swapped); ``wall_s`` adds the process start-up.

* ``real``: the real catalog (63,436 packages) in the ``bench`` database (imported first if
  empty).
* any larger size N: the database ``bench_1m`` (index prefix ``bench1m``), a copy of
  ``bench`` (``CREATE DATABASE ... TEMPLATE bench``) grown to N packages with deterministic
  variants of the real ones, generated inside PostgreSQL with set-based SQL: name
  ``<name>-v<k>``, every other column and the tags copied (dependencies are not copied:
  documents do not show them). For that one transaction the user triggers of
  ``portal_package`` and ``portal_package_tags`` are disabled (``ALTER TABLE ... DISABLE
  TRIGGER USER``: the row-version trigger, whose work the INSERT does itself with
  ``nextval``, and the outbox capture triggers, which would queue a million incremental
  writes); ``indexing_outbox`` is truncated afterwards. Sizes are built in ascending order,
  each growing the previous one. The database and its indices are dropped at the end
  unless ``--keep``.

After each run the index is checked: as many documents as rows, and for a sample of ids
(``--sample``) the document exists, carries the row's ``row_version`` as its version, and
equals field by field what ``indexing.documents`` (the one builder the rebuild, the
incremental writes and the verifier share) builds from the row now
(``indexing.verify.compare_content``).

Results: ``bench/results/reindex.json`` (``runs``) and ``bench/results/reindex.md``.
Targets: real catalog under 40 s; >= 2,000 docs/s at 1M; peak RSS flat as the catalog grows.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import common

SCALED_DB = "bench_1m"
SCALED_PREFIX = "bench1m"
REAL_SECONDS_TARGET = 40.0
RATE_TARGET = 2000.0
BUILT_RE = re.compile(r"Built (\S+): (\d+) documents in ([\d.]+)s")


def parse_sizes(raw: str) -> list[int | str]:
    sizes: list[int | str] = []
    for item in raw.split(","):
        item = item.strip().lower().replace("_", "")
        if not item:
            continue
        if item in {"real", "63k"}:
            sizes.append("real")
            continue
        multiplier = 1
        if item.endswith("m"):
            item, multiplier = item[:-1], 1_000_000
        elif item.endswith("k"):
            item, multiplier = item[:-1], 1_000
        try:
            sizes.append(int(float(item) * multiplier))
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a size: {item!r}") from None
    return sizes


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.reindex",
        description=(
            "Measure full rebuilds (manage.py reindex) of the real catalog and of a catalog "
            "scaled to 1M packages, in isolated databases and index prefixes."
        ),
    )
    parser.add_argument(
        "--sizes",
        type=parse_sizes,
        default=parse_sizes("real,1000000"),
        help="comma-separated: 'real' and/or package counts like 250000, 1m (default real,1m)",
    )
    parser.add_argument(
        "--skip-1m", action="store_true", help="only the real catalog (same as --sizes real)"
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help=f"keep the {SCALED_DB} database and its '{SCALED_PREFIX}' index afterwards",
    )
    parser.add_argument(
        "--batch-size", type=int, default=None, help="reindex --batch-size (default: its own)"
    )
    parser.add_argument(
        "--sample", type=int, default=2000, help="ids checked document by document (2000)"
    )
    parser.add_argument(
        "--min-free-gb",
        type=float,
        default=6.0,
        help="refuse a scaled run with less free disk than this on the data volume (6)",
    )
    parser.add_argument("--verify-child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.skip_1m:
        args.sizes = ["real"]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.verify_child is not None:
        common.setup_django()
        print(json.dumps(verify(args.verify_child)))
        return 0
    common.setup_django()
    from django.db import connections

    catalog = common.ensure_catalog()
    real_rows = catalog["rows"]
    connections.close_all()  # ``bench`` may serve as a template: no open sessions
    sizes = sorted(args.sizes, key=lambda s: real_rows if s == "real" else s)
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    runs: list[dict[str, Any]] = []
    scaled_used = False
    try:
        for size in sizes:
            if size == "real" or size <= real_rows:
                env = common.child_env()
                label = f"real catalog ({real_rows:,})"
                prep: dict[str, Any] = {}
            else:
                scaled_used = True
                prep = prepare_scaled(size, args.min_free_gb)
                env = common.child_env(
                    POSTGRES_DB=SCALED_DB,
                    SEARCH_INDEX_PREFIX=SCALED_PREFIX,
                    CACHE_KEY_PREFIX=SCALED_PREFIX,
                )
                label = f"scaled ({size:,})"
            common.say(f"rebuilding: {label} ...")
            run = measure_rebuild(env, args.batch_size, keep_previous=not prep)
            run["label"] = label
            run.update(prep)
            run["verify"] = verify_in_child(env, args.sample)
            run["index_store_mb"] = index_store_mb(env["SEARCH_INDEX_PREFIX"])
            if prep:
                run["database_mb"] = round(common.database_size(SCALED_DB) / 2**20)
            runs.append(run)
            common.say(
                f"  {run['docs']:,} docs in {run['seconds']:.1f}s = {run['docs_per_s']:,.0f}/s, "
                f"peak RSS {run['peak_rss_mb']:.0f} MB, checks "
                f"{'ok' if run['verify']['ok'] else 'FAILED'}"
            )
    finally:
        if scaled_used and not args.keep:
            common.say(f"dropping the {SCALED_PREFIX} indices and the {SCALED_DB} database")
            for step in (lambda: drop_indices(SCALED_PREFIX), lambda: drop_database(SCALED_DB)):
                try:
                    step()
                except Exception as exc:
                    common.say(f"  cleanup step failed ({exc}); run again or clean up by hand")
    report(runs, started_at, real_rows)
    return 0 if all(r["verify"]["ok"] for r in runs) else 1


# --------------------------------------------------------------------------- measuring


def measure_rebuild(
    env: dict[str, str], batch_size: int | None, keep_previous: bool
) -> dict[str, Any]:
    """Run ``manage.py reindex`` as a child process; its time, output and memory.

    ``keep_previous``: the replaced index stays as the rollback target (the default
    retention, as operators run it); otherwise ``SEARCH_ROLLBACK_HOURS=0`` deletes it at
    the swap (the scaled catalog: a second 1M-document index would only take disk)."""
    cmd = [sys.executable, "manage.py", "reindex", "--verbosity", "0"]
    if not keep_previous:
        env = {**env, "SEARCH_ROLLBACK_HOURS": "0"}
    if batch_size:
        cmd += ["--batch-size", str(batch_size)]
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(
            cmd, cwd=common.ROOT, env=env, stdout=out, stderr=err, stdin=subprocess.DEVNULL
        )
        sampler = RssSampler(proc.pid)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        sampler.stop()
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode(errors="replace")
        stderr = err.read().decode(errors="replace")
    if proc.returncode != 0:
        raise SystemExit(f"reindex failed (exit {proc.returncode}):\n{stdout}\n{stderr[-3000:]}")
    match = BUILT_RE.search(stdout)
    if not match:
        raise SystemExit(f"cannot read the reindex report from its output:\n{stdout}")
    docs, seconds = int(match.group(2)), float(match.group(3))
    peak_mb = usage.ru_maxrss / 1024  # kilobytes on Linux
    return {
        "docs": docs,
        "seconds": round(seconds, 2),
        "docs_per_s": round(docs / seconds, 1) if seconds else None,
        "peak_rss_mb": round(peak_mb, 1),
        "wall_s": round(wall, 2),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 1),
        "rss_by_quarter_mb": sampler.by_quarter(),
        "index": match.group(1),
        "loadavg_before": round(load_before, 2),
        "loadavg_after": round(os.getloadavg()[0], 2),
    }


class RssSampler(threading.Thread):
    """Samples a process's resident memory from /proc (to see growth over the run)."""

    def __init__(self, pid: int, interval: float = 0.25) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.interval = interval
        self.samples: list[float] = []
        self.done = threading.Event()

    def run(self) -> None:
        status = Path(f"/proc/{self.pid}/status")
        while not self.done.is_set():
            with contextlib.suppress(OSError, ValueError):
                for line in status.read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        self.samples.append(int(line.split()[1]) / 1024)
            self.done.wait(self.interval)

    def stop(self) -> None:
        self.done.set()
        self.join()

    def by_quarter(self) -> list[float]:
        """The highest RSS seen in each quarter of the run (MB)."""
        if len(self.samples) < 4:
            return [round(max(self.samples, default=0.0), 1)]
        n = len(self.samples)
        quarters = [self.samples[i * n // 4 : (i + 1) * n // 4] for i in range(4)]
        return [round(max(q), 1) for q in quarters]


def verify_in_child(env: dict[str, str], sample: int) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-m", "bench.reindex", "--verify-child", str(sample)],
        cwd=common.ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"verification failed to run:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def verify(sample_size: int) -> dict[str, Any]:
    """Rows against documents, and a sample of documents against their rows: present, at
    the row's ``row_version``, and equal field by field to what ``indexing.documents``
    builds from the row now (``indexing.verify.compare_content``)."""
    import random

    from indexing import documents
    from indexing.verify import compare_content
    from portal.models import Package
    from search import indices

    client = indices.client()
    alias = indices.read_alias()
    client.indices.refresh(index=alias)
    rows = Package.objects.count()
    docs = client.count(index=alias)["count"]
    ids = list(Package.objects.order_by("pk").values_list("pk", flat=True).iterator(10_000))
    sample = sorted(random.Random(42).sample(ids, min(sample_size, len(ids))))
    del ids
    missing: list[int] = []
    version: list[int] = []
    for start in range(0, len(sample), 500):
        chunk = sample[start : start + 500]
        expected = {row.id: row.version for row in documents.rows_for(chunk)}
        found = client.mget(index=alias, ids=[str(pk) for pk in chunk], source=False)
        for doc in found["docs"]:
            pk = int(doc["_id"])
            if not doc.get("found"):
                missing.append(pk)
            elif doc.get("_version") != expected.get(pk):
                version.append(pk)
    content = compare_content(alias, sample)  # {id: fields that differ}, same version only
    return {
        "rows": rows,
        "documents": docs,
        "sample": len(sample),
        "missing": missing[:20],
        "version_mismatches": version[:20],
        "content_mismatches": {str(pk): fields for pk, fields in list(content.items())[:20]},
        "ok": rows == docs and not missing and not version and not content,
    }


# --------------------------------------------------------------------------- scaled catalog


def prepare_scaled(size: int, min_free_gb: float) -> dict[str, Any]:
    """Make ``bench_1m`` hold exactly ``size`` packages (copy of ``bench`` plus variants)."""
    free_gb = shutil.disk_usage(common.ROOT).free / 2**30
    if free_gb < min_free_gb:
        raise SystemExit(
            f"only {free_gb:.1f} GB free on {common.ROOT}; a scaled run needs about "
            f"{min_free_gb} GB (1M packages: ~2.5 GB in PostgreSQL, ~1 GB in Elasticsearch)"
        )
    started = time.perf_counter()
    created = False
    if not common.database_exists(SCALED_DB):
        common.say(f"creating {SCALED_DB} as a copy of {os.environ['POSTGRES_DB']} ...")
        try:
            copy_database(SCALED_DB, os.environ["POSTGRES_DB"])
        except Exception as exc:  # the template stayed in use: build it the long way
            common.say(f"  template copy failed ({exc}); migrating and importing instead")
            common.ensure_database(SCALED_DB)
            scaled_env = common.child_env(
                POSTGRES_DB=SCALED_DB,
                SEARCH_INDEX_PREFIX=SCALED_PREFIX,
                CACHE_KEY_PREFIX=SCALED_PREFIX,
            )
            for cmd in (["migrate", "--noinput"], ["import_catalog", "--no-index"]):
                subprocess.run(
                    [sys.executable, "manage.py", *cmd, "--verbosity", "0"],
                    cwd=common.ROOT,
                    env=scaled_env,
                    check=True,
                )
        created = True
        with contextlib.closing(common.pg_connect(SCALED_DB)) as conn, conn.cursor() as cur:
            cur.execute(
                "CREATE TABLE bench_scaled AS SELECT max(id) AS originals_max_id "
                "FROM portal_package"
            )
    copy_s = time.perf_counter() - started
    started = time.perf_counter()
    with contextlib.closing(common.pg_connect(SCALED_DB)) as conn:
        generated = grow(conn, size)
        with conn.cursor() as cur:
            cur.execute("TRUNCATE indexing_outbox")
            cur.execute("VACUUM ANALYZE portal_package, portal_package_tags")
            cur.execute("SELECT count(*) FROM portal_package")
            count = cur.fetchone()[0]
    if count != size:
        raise SystemExit(f"{SCALED_DB} holds {count} packages instead of {size}")
    return {
        "database_created": created,
        "copy_s": round(copy_s, 1),
        "generated": generated,
        "generate_s": round(time.perf_counter() - started, 1),
    }


def copy_database(name: str, template: str, attempts: int = 5) -> None:
    """``CREATE DATABASE name TEMPLATE template`` (needs the template to have no sessions:
    retried a few times in case autovacuum is busy in it)."""
    for attempt in range(attempts):
        try:
            common.ensure_database(name, template=template)
            return
        except Exception:
            if attempt == attempts - 1:
                raise
            time.sleep(2)


GROW_SQL = """
CREATE TEMP TABLE bench_new ON COMMIT DROP AS
SELECT p.id AS src, k, p.name || '-v' || k AS name
FROM portal_package p
CROSS JOIN generate_series(1, %(rounds)s) AS k
WHERE p.id <= (SELECT originals_max_id FROM bench_scaled)
  AND NOT EXISTS (SELECT 1 FROM portal_package x WHERE x.name = p.name || '-v' || k)
ORDER BY k, p.id
LIMIT %(needed)s;

INSERT INTO portal_package (
    name, version, source, summary, description, section_id, priority, architecture,
    homepage, installed_size_kb, download_size_bytes, maintainer_id,
    reverse_dependency_count, created_at, updated_at, row_version
)
SELECT n.name, p.version, p.source, p.summary, p.description, p.section_id, p.priority,
       p.architecture, p.homepage, p.installed_size_kb, p.download_size_bytes,
       p.maintainer_id, p.reverse_dependency_count, now(), now(),
       nextval('portal_package_row_version_seq')
FROM bench_new n JOIN portal_package p ON p.id = n.src
ORDER BY n.k, n.src
ON CONFLICT (name) DO NOTHING;

INSERT INTO portal_package_tags (package_id, tag_id)
SELECT v.id, pt.tag_id
FROM bench_new n
JOIN portal_package v ON v.name = n.name
JOIN portal_package_tags pt ON pt.package_id = n.src
ON CONFLICT DO NOTHING;
"""


def grow(conn: Any, size: int) -> int:
    """Add variants until the catalog holds ``size`` packages; return how many were added."""
    added = 0
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM portal_package")
        count = cur.fetchone()[0]
        cur.execute(
            "SELECT count(*) FROM portal_package "
            "WHERE id <= (SELECT originals_max_id FROM bench_scaled)"
        )
        originals = cur.fetchone()[0]
    if count > size:
        raise SystemExit(
            f"{SCALED_DB} already holds {count} packages (> {size}); drop it or use --sizes "
            "in ascending order"
        )
    while count < size:
        needed = size - count
        rounds = (count + needed) // originals + 2
        common.say(f"  generating {needed:,} variant packages in {SCALED_DB} ...")
        conn.autocommit = False
        try:
            with conn.cursor() as cur:
                cur.execute("ALTER TABLE portal_package DISABLE TRIGGER USER")
                cur.execute("ALTER TABLE portal_package_tags DISABLE TRIGGER USER")
                cur.execute(GROW_SQL, {"rounds": rounds, "needed": needed})
                # Run the deferred foreign-key checks now: a table with pending trigger
                # events cannot be altered.
                cur.execute("SET CONSTRAINTS ALL IMMEDIATE")
                cur.execute("ALTER TABLE portal_package_tags ENABLE TRIGGER USER")
                cur.execute("ALTER TABLE portal_package ENABLE TRIGGER USER")
                cur.execute("SELECT count(*) FROM portal_package")
                new_count = cur.fetchone()[0]
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
        finally:
            conn.autocommit = True
        if new_count == count:
            raise SystemExit("could not generate more variant packages")
        added += new_count - count
        count = new_count
    return added


# --------------------------------------------------------------------------- Elasticsearch


def _es_client() -> Any:
    from search import indices

    return indices.client()


def index_store_mb(prefix: str) -> float | None:
    client = _es_client()
    alias = f"{prefix}-packages"
    with contextlib.suppress(Exception):
        stats = client.indices.stats(index=alias, metric="store")
        return round(stats["_all"]["primaries"]["store"]["size_in_bytes"] / 2**20, 1)
    return None


def drop_database(name: str) -> None:
    from django.db import connections

    connections.close_all()
    common.drop_database(name)


def drop_indices(prefix: str) -> None:
    common.check_isolation({**os.environ, "SEARCH_INDEX_PREFIX": prefix})
    client = _es_client()
    found = client.indices.get(index=f"{prefix}-packages-2*", expand_wildcards="all")
    for name in found:
        client.indices.delete(index=name)


# --------------------------------------------------------------------------- reporting


def report(runs: list[dict[str, Any]], started_at: str, real_rows: int) -> None:
    real = next((r for r in runs if r["docs"] == real_rows), None)
    biggest = max(runs, key=lambda r: r["docs"]) if runs else None
    checks = {}
    if real:
        checks["real_under_40s"] = real["seconds"] < REAL_SECONDS_TARGET
    if biggest and biggest is not real:
        checks["scaled_rate_at_least_2000"] = biggest["docs_per_s"] >= RATE_TARGET
        if real:
            growth = biggest["peak_rss_mb"] - real["peak_rss_mb"]
            checks["peak_rss_flat"] = growth <= max(25.0, 0.2 * real["peak_rss_mb"])
    main_keys = ("label", "docs", "seconds", "docs_per_s", "peak_rss_mb")
    data = {
        "runs": [{k: r[k] for k in main_keys} for r in runs],
        "details": [
            {"label": r["label"], **{k: v for k, v in r.items() if k not in main_keys}}
            for r in runs
        ],
        "checks": checks,
        "started_at": started_at,
        "machine": common.machine(),
    }
    table = common.markdown_table(
        [
            "catalog",
            "docs",
            "seconds",
            "docs/s",
            "peak RSS MB",
            "RSS by quarter MB",
            "wall s",
            "CPU s",
            "index MB",
            "checks",
        ],
        [
            (
                r["label"],
                r["docs"],
                r["seconds"],
                r["docs_per_s"],
                r["peak_rss_mb"],
                " / ".join(f"{v:.0f}" for v in r["rss_by_quarter_mb"]),
                r["wall_s"],
                r["cpu_s"],
                r["index_store_mb"],
                "ok" if r["verify"]["ok"] else "FAILED",
            )
            for r in runs
        ],
    )
    notes = []
    for r in runs:
        if "generate_s" in r:
            notes.append(
                f"- {r['label']}: database copied in {r['copy_s']}s, {r['generated']:,} "
                f"variants generated in {r['generate_s']}s; database {r['database_mb']:,} MB, "
                f"index {r['index_store_mb']} MB."
            )
        v = r["verify"]
        notes.append(
            f"- {r['label']}: {v['documents']:,} documents for {v['rows']:,} rows; "
            f"{v['sample']:,} sampled ids: missing, version and content mismatches "
            f"{len(v['missing'])}/{len(v['version_mismatches'])}/"
            f"{len(v['content_mismatches'])}; load average {r['loadavg_before']} -> "
            f"{r['loadavg_after']}."
        )
    verdicts = ", ".join(f"{k}: {'yes' if ok else 'NO'}" for k, ok in checks.items())
    text = (
        "# Full rebuild (manage.py reindex)\n\n"
        f"Run {started_at}. Seconds and documents as reported by the command (lock to alias "
        "swap); wall adds process start-up; peak RSS is the reindex process's own "
        "(ru_maxrss).\n\n"
        f"{table}\n\n"
        f"Targets: real catalog < {REAL_SECONDS_TARGET:.0f}s, >= {RATE_TARGET:,.0f} docs/s "
        f"at the largest size, flat peak RSS. {verdicts or '-'}\n\n"
        + "\n".join(notes)
        + f"\n\nMachine at the end: {data['machine']} (a shared 2-CPU box: Elasticsearch, "
        "PostgreSQL and the loader compete for the same cores, so other load on the machine "
        "shows directly in docs/s).\n"
    )
    json_path = common.write_json("reindex.json", data)
    md_path = common.write_text("reindex.md", text)
    print(table)
    print(verdicts)
    print(f"results: {json_path}, {md_path}")


if __name__ == "__main__":
    raise SystemExit(main())
