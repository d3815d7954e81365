"""Benchmarks against the real local services, isolated from development and test data.

* ``python -m bench.freshness``: edits (admin and ORM) until searchable, p50/p95/max.
* ``python -m bench.reindex``: full rebuild of the real catalog and of a 1M-package catalog.
* ``python -m bench.search``: the search API (a realistic replay against the live cache,
  warm, cold) and autocomplete against PostgreSQL baselines, with the CPU per request of
  every part (the package ``bench.search``).
* ``python -m bench.admin_pages``: admin page render times with the full catalog.

They use their own PostgreSQL databases (``bench``, ``bench_1m``, the baselines' copies),
index prefixes, cache key prefixes and Redis databases (see ``bench.common.BENCH_ENV``) and
start their own Celery worker when they need one; ``bench.search`` reads the development
catalog and index (only reads them) unless told another database. Results go to
``bench/results/``.
"""
