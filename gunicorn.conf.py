"""gunicorn settings for the portal (read automatically from the working directory).

Sized from the CPU count, overridable from the environment:

* ``GUNICORN_WORKERS`` (default: cores + 1): processes. Python runs one thread at a time per
  process, so CPU-bound work scales with processes.
* ``GUNICORN_THREADS`` (default 4): threads per process, so requests waiting on
  Elasticsearch, Redis or PostgreSQL do not hold a process up (gthread worker; keep-alive).
* ``WEB_BIND`` (default ``127.0.0.1:8000``), ``WEB_ACCESS_LOG`` (default ``-``, stdout;
  empty for none), ``WEB_TIMEOUT`` (default 30 s).

Everything else production needs (DEBUG off, secrets, hosts, cookies) is in
``config/settings.py`` (the README: "Editors and operators", production settings).
"""

from __future__ import annotations

import os

_cores = os.cpu_count() or 1

bind = os.environ.get("WEB_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", _cores + 1))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", 4))
timeout = int(os.environ.get("WEB_TIMEOUT", 30))
graceful_timeout = 30
keepalive = 5
# Load the app once in the master; workers fork with it (less memory, faster starts).
preload_app = True
# Recycle workers now and then (bounded memory growth), not all at once.
max_requests = 20_000
max_requests_jitter = 2_000
# Heartbeat files in memory, not on a possibly slow disk.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
accesslog = os.environ.get("WEB_ACCESS_LOG", "-") or None
errorlog = "-"
