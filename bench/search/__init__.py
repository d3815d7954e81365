"""Search benchmark: the portal's API against PostgreSQL doing the same job.

    .venv/bin/python -m bench.search [--duration 20] [--concurrency 1,8,32] [--quick]
        [--phases replay,warm,warm_counts,cold,suggest,pg_ilike,pg_fts]
        [--replay-requests 10000] [--replay-searches 20000] [--zipf 1.0]
    .venv/bin/python -m bench.search --database bench_1m --index-prefix bench1m \\
        --phases replay,cold,suggest,pg_ilike,pg_fts      # the 1M catalog of bench.reindex

1. Reads the catalog (by default the development database ``portal``, read-only; any other
   with ``--database``) and derives from it, deterministically: a mix of realistic searches
   and autocomplete prefixes, and a Zipf-distributed replay stream over 20,000 distinct
   searches (``bench.search_queries``).
2. Starts the web app with gunicorn on 127.0.0.1:8001 with production settings
   (``DJANGO_DEBUG=0``), against that database and its index (prefix ``portal`` by default,
   ``--index-prefix``), both only read, with the benchmark's own cache namespace
   (``CACHE_KEY_PREFIX=benchsearch`` by default) on the benchmark's Redis databases
   (``bench.common.BENCH_ENV``: database 5 of the coordination and of the cache server), so
   the benchmark neither reads nor invalidates the development cache; its keys are deleted
   at the end. This process runs with the same settings, so the generation it moves on
   (``search.freshness.bump_generation()``) is the one the web app reads.
3. Warms Elasticsearch's JVM up through the web app, until it stops getting faster
   (``--engine-warmup``; ``bench.search.warmup``: a fresh node costs three times its steady
   CPU), then runs the selected phases (``--phases``, all by default;
   ``bench.search.phases`` says what each measures and why) at every concurrency
   (``--concurrency``), with a closed loop of threads over keep-alive HTTP connections
   (``bench.search.harness``):

   * ``replay``: the replay stream against the live cache (no warm-up pass, no bumps; each
     measurement from an empty cache namespace and the stream's first request), and the
     cache hit ratio it reached;
   * ``warm``: ``/api/search`` after the whole mix ran twice (summaries and pages cached);
   * ``warm_counts``: the same on a second web app with ``SEARCH_PAGE_CACHE=0`` (counts
     cached, every page of hits from Elasticsearch; rows in ``extra_rows``);
   * ``cold``: ``/api/search`` with the index generation moved on before every request, so
     nothing cached is used;
   * ``suggest``: ``/api/suggest`` warm (every prefix asked once before) and cold (the
     generation moved on before every request);
   * ``pg_ilike`` and ``pg_fts``: the same searches (text, filters, sort, page, total and
     every facet the portal shows) in PostgreSQL, through psycopg2 connection pools in this
     process, against a copy of the catalog tables (``bench_pg``, or ``<database>_pg``;
     ``bench.search_baselines``), on the mix and, with ``replay``, on the replay stream.

   Timed phases measure ``--duration`` seconds after an unrecorded warm-up; the replay
   measures the stream's ``--replay-requests`` requests from the first to the last.
4. For every measurement: latency percentiles, requests a second, errors, and the CPU each
   part spent per request (Elasticsearch, the web app, PostgreSQL, Redis: their CPU time in
   the measured window divided by the requests completed), read from ``/proc`` for the
   processes listening on the services' ports (so other checkouts' services on the same
   machine are not counted).
5. Writes ``bench/results/<stem>.json`` (``rows``: system, endpoint, cache, concurrency,
   p50_ms, p95_ms, p99_ms, rps, errors, es_cpu_ms, web_cpu_ms, pg_cpu_ms, redis_cpu_ms),
   ``<stem>.md`` and ``<stem>.png`` (when matplotlib is importable) with the index size on
   disk and the Elasticsearch heap (``bench.search.report``), and prints the
   portal-to-PostgreSQL throughput ratios, the replay's hit ratios and the targets. The stem
   is ``search`` for the development catalog and ``search-1m`` for ``--database bench_1m``
   (``--output`` to choose).

Everything runs on the same machine: the load generator, gunicorn, Elasticsearch, Redis and
PostgreSQL share its cores, and the report records how much CPU each used during each
phase (and how much went to other processes) so the numbers can be read honestly.
"""
