"""Benchmarks against the real local services, isolated from development and test data.

* ``python -m bench.freshness``: edits (admin and ORM) until searchable, p50/p95/max.
* ``python -m bench.reindex``: full rebuild of the real catalog and of a 1M-package catalog.

Both use their own PostgreSQL database (``bench``), index prefix, cache prefix and Redis
databases (see ``bench.common.BENCH_ENV``) and start their own Celery worker when they need
one. Results go to ``bench/results/``.
"""
