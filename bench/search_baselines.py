"""PostgreSQL baselines for the search benchmark: the same job without Elasticsearch.

The baselines run against a copy of the catalog tables in their own database (``bench_pg``
by default), never against the development database, which is only read (``COPY ... TO``
in a read-only session) to fill the copy. The copy gets what a team without a search
engine would add to give PostgreSQL its best shot:

* ``pg_trgm`` GIN indexes on name, summary and description, so ``ILIKE '%word%'`` can use
  an index (words of 3 characters or more);
* a stored ``tsvector`` column (name weighted A, summary B, description C, ``english``
  configuration) with a GIN index, for ``websearch_to_tsquery`` and ``ts_rank``;
* the tags of a package denormalised into a ``text[]`` column (``facet::value``, as in the
  search index) with a GIN index, so tag filters and tag facets need no join.

One request is one SQL statement (one round trip): the text match is evaluated once into a
materialised CTE, then the page of hits (sorted as asked; ``relevance`` is
``reverse_dependency_count`` for ILIKE and ``ts_rank`` for full text), the total and every
facet the portal shows are computed from it. Facets are disjunctive as in the portal: each
applies every filter except its own, and the counts of selected values outside the top
values are computed too.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from dataclasses import dataclass
from typing import Any

from bench.search_queries import SIZE_KEYS, Query

SCHEMA_VERSION = "3"
SIDEBAR_TAG_FACETS = 8  # as search.facets.SIDEBAR_TAG_FACETS
FACET_SIZES = {"section": 12, "priority": 5, "architecture": 2, "maintainer": 8}
TAG_FACET_SIZE = 8
SIZE_RANGES = {  # as search.facets.SIZE_RANGES: key -> [lo, hi)
    "tiny": (None, 100),
    "small": (100, 1024),
    "medium": (1024, 10 * 1024),
    "large": (10 * 1024, 100 * 1024),
    "huge": (100 * 1024, None),
}
assert list(SIZE_RANGES) == SIZE_KEYS
PAGE_SIZE = 20
REUSE_KEYS = ("schema", "rows", "package_tags")
# The development catalog and the other benchmarks' databases: never dropped for a copy.
PROTECTED_DATABASES = {"portal", "postgres", "template0", "template1", "bench", "bench_1m"}

COPIES = {  # table in the copy -> (columns, SELECT on the source database, key for chunks)
    "bench_section": (
        "id bigint PRIMARY KEY, name text NOT NULL",
        "SELECT id, name FROM portal_section",
        "id",
    ),
    "bench_maintainer": (
        "id bigint PRIMARY KEY, name text NOT NULL, email text NOT NULL",
        "SELECT id, name, email FROM portal_maintainer",
        "id",
    ),
    "bench_tag": (
        "id bigint PRIMARY KEY, facet text NOT NULL, value text NOT NULL",
        "SELECT id, facet, value FROM portal_tag",
        "id",
    ),
    "bench_package": (
        "id bigint PRIMARY KEY, name text NOT NULL, version text NOT NULL,"
        " summary text NOT NULL, description text NOT NULL, section_id bigint NOT NULL,"
        " priority text NOT NULL, architecture text NOT NULL, installed_size_kb bigint,"
        " reverse_dependency_count integer NOT NULL, maintainer_id bigint NOT NULL",
        "SELECT id, name, version, summary, description, section_id, priority, architecture,"
        " installed_size_kb, reverse_dependency_count, maintainer_id FROM portal_package",
        "id",
    ),
    "bench_package_tags": (
        "package_id bigint NOT NULL, tag_id bigint NOT NULL",
        "SELECT package_id, tag_id FROM portal_package_tags",
        "package_id",
    ),
}
COPY_CHUNK = 100_000  # key values per COPY, so a big catalog's copy reports progress
EXTRAS = [
    # denormalised tags, as the search index has them
    "ALTER TABLE bench_package ADD COLUMN tags text[] NOT NULL DEFAULT '{}'",
    "UPDATE bench_package p SET tags = t.tags FROM (SELECT pt.package_id,"
    " array_agg(tg.facet || '::' || tg.value ORDER BY tg.facet, tg.value) AS tags"
    " FROM bench_package_tags pt JOIN bench_tag tg ON tg.id = pt.tag_id"
    " GROUP BY pt.package_id) t WHERE t.package_id = p.id",
    # full text: one weighted tsvector
    "ALTER TABLE bench_package ADD COLUMN search tsvector GENERATED ALWAYS AS ("
    " setweight(to_tsvector('english'::regconfig, name), 'A') ||"
    " setweight(to_tsvector('english'::regconfig, summary), 'B') ||"
    " setweight(to_tsvector('english'::regconfig, description), 'C')) STORED",
    "CREATE INDEX bench_package_search_idx ON bench_package USING gin (search)",
    # ILIKE '%word%': trigram indexes
    "CREATE INDEX bench_package_name_trgm ON bench_package USING gin (name gin_trgm_ops)",
    "CREATE INDEX bench_package_summary_trgm ON bench_package USING gin (summary gin_trgm_ops)",
    "CREATE INDEX bench_package_description_trgm ON bench_package"
    " USING gin (description gin_trgm_ops)",
    # filters and sorts
    "CREATE INDEX bench_package_tags_idx ON bench_package USING gin (tags)",
    "CREATE INDEX bench_package_pop_idx ON bench_package (reverse_dependency_count DESC, name)",
    "CREATE INDEX bench_package_section_idx ON bench_package (section_id)",
    "CREATE INDEX bench_package_maintainer_idx ON bench_package (maintainer_id)",
    "CREATE INDEX bench_package_priority_idx ON bench_package (priority)",
    "CREATE INDEX bench_package_size_idx ON bench_package (installed_size_kb)",
    "CREATE UNIQUE INDEX bench_package_name_idx ON bench_package (name)",
    "CREATE INDEX bench_maintainer_name_idx ON bench_maintainer (name)",
]


def connect(conninfo: dict[str, Any], dbname: str, *, readonly: bool = False) -> Any:
    import psycopg2

    conn = psycopg2.connect(dbname=dbname, connect_timeout=5, **conninfo)
    conn.set_session(readonly=readonly, autocommit=True)
    return conn


def _source_signature(source: Any) -> dict[str, str]:
    with source.cursor() as cur:
        cur.execute("SELECT count(*), coalesce(max(row_version), 0) FROM portal_package;")
        rows, version = cur.fetchone()
        cur.execute("SELECT count(*) FROM portal_package_tags")
        (tags,) = cur.fetchone()
    return {
        "schema": SCHEMA_VERSION,
        "rows": str(rows),
        "max_row_version": str(version),
        "package_tags": str(tags),
    }


def _copy_signature(conninfo: dict[str, Any], dbname: str) -> dict[str, str] | None:
    try:
        conn = connect(conninfo, dbname, readonly=True)
    except Exception:
        return None
    with contextlib.closing(conn), conn.cursor() as cur:
        try:
            cur.execute("SELECT key, value FROM bench_meta")
        except Exception:
            return None
        return dict(cur.fetchall())


def ensure_copy(
    conninfo: dict[str, Any],
    source_db: str,
    copy_db: str,
    *,
    rebuild: bool = False,
    log: Any = print,
) -> dict[str, Any]:
    """Create (or reuse) the baseline database: the catalog tables copied from
    ``source_db`` (read-only) plus the baseline's indexes. Reused when its recorded source
    signature (rows, highest row version, tag links) still matches."""
    if copy_db in PROTECTED_DATABASES or copy_db == source_db or copy_db.startswith("test"):
        raise SystemExit(f"refusing to use {copy_db!r} as the baseline database")
    source = connect(conninfo, source_db, readonly=True)
    with contextlib.closing(source):
        wanted = _source_signature(source)
        existing = _copy_signature(conninfo, copy_db) or {}
        # Edits made to the source since the copy do not change what is measured; only a
        # different size (or schema of the copy) makes it rebuild.
        if not rebuild and all(existing.get(k) == wanted[k] for k in REUSE_KEYS):
            return {"database": copy_db, "rebuilt": False, **existing}
        log(
            f"building the PostgreSQL baseline database {copy_db!r} from {source_db!r}"
            f" ({int(wanted['rows']):,} packages) ..."
        )
        started = time.monotonic()
        admin = connect(conninfo, "postgres")
        with contextlib.closing(admin), admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{copy_db}" WITH (FORCE)')
            cur.execute(f'CREATE DATABASE "{copy_db}"')
        target = connect(conninfo, copy_db)
        with contextlib.closing(target), target.cursor() as out:
            out.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
            out.execute("SET maintenance_work_mem = '256MB'")
            _copy_tables(source, out, log)
            _run_extras(out, log)
            out.execute("CREATE TABLE bench_meta (key text PRIMARY KEY, value text)")
            for key, value in wanted.items():
                out.execute("INSERT INTO bench_meta VALUES (%s, %s)", [key, value])
        log(f"baseline database {copy_db!r} built in {time.monotonic() - started:.0f} s")
    return {"database": copy_db, "rebuilt": True, **wanted}


def _copy_tables(source: Any, out: Any, log: Any) -> None:
    """Copy every table of ``COPIES`` in chunks of ``COPY_CHUNK`` key values, all from one
    snapshot of the source (so the copy is consistent), logging the progress."""
    source.autocommit = False
    try:
        with source.cursor() as src:
            src.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            for table, (columns, select, key) in COPIES.items():
                out.execute(f"CREATE TABLE {table} ({columns})")
                _copy_table(src, out, table, select, key, log)
    finally:
        source.rollback()
        source.autocommit = True


def _copy_table(src: Any, out: Any, table: str, select: str, key: str, log: Any) -> None:
    source_table = select.rsplit(" FROM ", 1)[1]
    src.execute(f"SELECT min({key}), max({key}), count(*) FROM {source_table}")
    low, high, rows = src.fetchone()
    if not rows:
        return
    started = time.monotonic()
    chunks = range(int(low), int(high) + 1, COPY_CHUNK)
    for n, start in enumerate(chunks, 1):
        chunk = f"{select} WHERE {key} >= {start} AND {key} < {start + COPY_CHUNK}"
        with tempfile.TemporaryFile() as buffer:
            src.copy_expert(f"COPY ({chunk}) TO STDOUT", buffer)
            buffer.seek(0)
            out.copy_expert(f"COPY {table} FROM STDIN", buffer)
        if len(chunks) > 1:
            log(f"  {table}: chunk {n} of {len(chunks)} ({time.monotonic() - started:.0f} s)")
    log(f"  {table}: {rows:,} rows copied in {time.monotonic() - started:.1f} s")


def _run_extras(out: Any, log: Any) -> None:
    """The baseline's columns and indexes, then VACUUM ANALYZE, each step timed."""
    for statement in [*EXTRAS, "VACUUM ANALYZE"]:
        started = time.monotonic()
        out.execute(statement)
        what = " ".join(statement.split()[:6])
        log(f"  {what} ...: {time.monotonic() - started:.1f} s")


# --------------------------------------------------------------------------- the queries


@dataclass
class Lookups:
    """Name -> id maps and the sidebar's tag facets, read once from the copy."""

    sections: dict[str, int]
    maintainers: dict[str, list[int]]
    tag_facets: list[str]  # most used first, as search.facets.known_tag_facets()


def load_lookups(conn: Any) -> Lookups:
    with conn.cursor() as cur:
        cur.execute("SELECT name, id FROM bench_section")
        sections = dict(cur.fetchall())
        cur.execute("SELECT name, id FROM bench_maintainer ORDER BY id")
        maintainers: dict[str, list[int]] = {}
        for name, id_ in cur.fetchall():
            maintainers.setdefault(name, []).append(id_)
        cur.execute(
            "SELECT t.facet FROM bench_tag t LEFT JOIN bench_package_tags pt"
            " ON pt.tag_id = t.id GROUP BY t.facet ORDER BY count(pt.tag_id) DESC, t.facet"
        )
        tag_facets = [r[0] for r in cur.fetchall()]
    return Lookups(sections, maintainers, tag_facets)


def _like_pattern(word: str) -> str:
    escaped = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _filter_sql(name: str, values: tuple[str, ...], lookups: Lookups) -> tuple[str, list[Any]]:
    """The condition on the matched rows ``m`` for "any of these values"."""
    if name == "section":
        return "m.section_id = ANY(%s)", [[lookups.sections.get(v, -1) for v in values]]
    if name == "maintainer":
        ids = [i for v in values for i in lookups.maintainers.get(v, [])] or [-1]
        return "m.maintainer_id = ANY(%s)", [ids]
    if name in ("priority", "architecture"):
        return f"m.{name} = ANY(%s)", [list(values)]
    if name == "size":
        parts = []
        for key in values:
            lo, hi = SIZE_RANGES[key]
            bounds = []
            if lo is not None:
                bounds.append(f"m.installed_size_kb >= {int(lo)}")
            if hi is not None:
                bounds.append(f"m.installed_size_kb < {int(hi)}")
            parts.append("(" + " AND ".join(bounds) + ")")
        return "(" + " OR ".join(parts) + ")", []
    if name.startswith("tag."):
        facet = name[4:]
        return "m.tags && %s::text[]", [[f"{facet}::{v}" for v in values]]
    raise ValueError(f"unknown filter {name!r}")


def _where(conditions: list[tuple[str, list[Any]]]) -> tuple[str, list[Any]]:
    if not conditions:
        return "TRUE", []
    sql = " AND ".join(c for c, _ in conditions)
    params = [p for _, ps in conditions for p in ps]
    return sql, params


def _text_match(query: Query, mode: str) -> tuple[str, str, str, str, list[Any]]:
    """How ``mode`` (``ilike``/``fts``) matches the words: (rank column, FROM addition,
    condition, relevance order, parameters)."""
    words = query.q.replace('"', " ").split()
    if mode == "ilike":
        conditions = []
        params: list[Any] = []
        for word in words:
            conditions.append("(p.name ILIKE %s OR p.summary ILIKE %s OR p.description ILIKE %s)")
            params += [_like_pattern(word)] * 3
        return "", "", " AND ".join(conditions) or "TRUE", "m.pop DESC, m.name", params
    if mode != "fts":
        raise ValueError(mode)
    if not words:
        return "", "", "TRUE", "m.pop DESC, m.name", []
    return (
        ", ts_rank(p.search, qq.tq) AS rank",
        ", (SELECT websearch_to_tsquery('english', %s) AS tq) qq",
        "p.search @@ qq.tq",
        "m.rank DESC, m.pop DESC, m.name",
        [query.q],
    )


def build_sql(query: Query, mode: str, lookups: Lookups) -> tuple[str, list[Any]]:
    """One statement computing hits, total and facets for ``query`` (mode ``ilike``/``fts``)."""
    select_rank, from_extra, text_sql, relevance, params = _text_match(query, mode)
    order = {
        "relevance": relevance,
        "popularity": "m.pop DESC, m.name",
        "name": "m.name",
        "size": "m.installed_size_kb ASC NULLS LAST, m.name",
    }[query.sort]

    filters = {n: _filter_sql(n, v, lookups) for n, v in query.filters.items()}
    all_sql, all_params = _where(list(filters.values()))

    def others(facet: str) -> tuple[str, list[Any]]:
        return _where([c for n, c in filters.items() if n != facet])

    sql = [
        "WITH m AS MATERIALIZED (SELECT p.id, p.name, p.section_id, p.priority,"
        " p.architecture, p.maintainer_id, p.installed_size_kb, p.tags,"
        f" p.reverse_dependency_count AS pop{select_rank}"
        f" FROM bench_package p{from_extra} WHERE {text_sql}),",
        f" f AS MATERIALIZED (SELECT * FROM m WHERE {all_sql}),",
        " top AS (SELECT id, row_number() OVER () AS ord FROM"
        f" (SELECT m.id FROM f m ORDER BY {order} LIMIT {PAGE_SIZE} OFFSET %s) s)",
        " SELECT 'hit', top.ord::text, NULL::bigint, json_build_object('id', p.id,"
        " 'name', p.name, 'version', p.version, 'summary', p.summary, 'section', s.name,"
        " 'priority', p.priority, 'maintainer', mt.name, 'popularity',"
        " p.reverse_dependency_count, 'installed_size_kb', p.installed_size_kb,"
        " 'tags', p.tags) FROM top JOIN bench_package p ON p.id = top.id"
        " JOIN bench_section s ON s.id = p.section_id"
        " JOIN bench_maintainer mt ON mt.id = p.maintainer_id",
        " UNION ALL SELECT 'total', NULL, count(*), NULL FROM f",
    ]
    params += [*all_params, (query.page - 1) * PAGE_SIZE]

    def add(select: str, extra: list[Any]) -> None:
        sql.append(f" UNION ALL ({select})")
        params.extend(extra)

    for facet, size in FACET_SIZES.items():
        where, where_params = others(facet)
        selected = query.filters.get(facet, ())
        if facet == "section":
            key, join = "s.name", " JOIN bench_section s ON s.id = m.section_id"
        elif facet == "maintainer":
            key, join = "mt.name", " JOIN bench_maintainer mt ON mt.id = m.maintainer_id"
        else:
            key, join = f"m.{facet}", ""
        add(
            f"SELECT '{facet}', {key}, count(*), NULL FROM m{join} WHERE {where}"
            f" GROUP BY {key} ORDER BY 3 DESC, 2 LIMIT {size}",
            where_params,
        )
        if selected:
            add(
                f"SELECT 'selected:{facet}', {key}, count(*), NULL FROM m{join}"
                f" WHERE {where} AND {key} = ANY(%s) GROUP BY {key}",
                [*where_params, list(selected)],
            )
    where, where_params = others("size")
    cases = " ".join(
        "WHEN "
        + " AND ".join(
            ([f"m.installed_size_kb >= {lo}"] if lo is not None else [])
            + ([f"m.installed_size_kb < {hi}"] if hi is not None else [])
        )
        + f" THEN '{key}'"
        for key, (lo, hi) in SIZE_RANGES.items()
    )
    add(
        f"SELECT 'size', CASE {cases} END, count(*), NULL FROM m"
        f" WHERE {where} AND m.installed_size_kb IS NOT NULL GROUP BY 2",
        where_params,
    )
    tag_facets = [f"tag.{t}" for t in lookups.tag_facets[:SIDEBAR_TAG_FACETS]]
    tag_facets += [n for n in query.filters if n.startswith("tag.") and n not in tag_facets]
    for name in tag_facets:
        facet = name[4:]
        where, where_params = others(name)
        add(
            f"SELECT '{name}', t, count(*), NULL FROM m CROSS JOIN LATERAL unnest(m.tags) t"
            f" WHERE starts_with(t, %s) AND {where} GROUP BY t ORDER BY 3 DESC, 2"
            f" LIMIT {TAG_FACET_SIZE}",
            [f"{facet}::", *where_params],
        )
        selected = query.filters.get(name, ())
        if selected:
            add(
                f"SELECT 'selected:{name}', t, count(*), NULL FROM m"
                f" CROSS JOIN LATERAL unnest(m.tags) t WHERE t = ANY(%s) AND {where}"
                " GROUP BY t",
                [[f"{facet}::{v}" for v in selected], *where_params],
            )
    return "".join(sql), params


def read_result(rows: list[tuple[Any, ...]]) -> dict[str, Any]:
    """Hits (in order), total and facets from the statement's rows."""
    hits = sorted(((int(key), extra) for kind, key, _, extra in rows if kind == "hit"))
    total = next((n for kind, _, n, _ in rows if kind == "total"), 0)
    facets: dict[str, dict[str, int]] = {}
    for kind, key, n, _ in rows:
        if kind not in ("hit", "total") and key is not None:
            facets.setdefault(kind, {})[key] = n
    return {"hits": [h for _, h in hits], "total": total, "facets": facets}
