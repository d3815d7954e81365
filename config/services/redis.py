"""Two Redis servers from Debian's package (installed with apt-get when missing).

What must not be lost and what may be evicted live on separate servers, so that filling the
cache can never stop indexing or the broker, and a SIGKILL cannot lose an acknowledged write:

* ``redis`` (127.0.0.1:``REDIS_PORT``, data under ``.var/redis``) holds the Celery broker
  queue and the coordination state: the index generation, the registrations of index writes
  in progress, locks. It never evicts (``noeviction``, 512 MB) and appends every write to its
  append-only file with an fsync before answering (``appendfsync always``); its write rate
  is low, so the fsyncs cost little.
* ``redis-cache`` (127.0.0.1:``REDIS_CACHE_PORT``, pid file under ``.var/redis-cache``) holds
  the search cache: no persistence at all, a memory cap (``REDIS_CACHE_MAXMEMORY``, default
  256 MB) and least-recently-used eviction over every key when full.

``redis.conf`` is rewritten in each server's folder on every ``up``; docker-compose.yml gives
its containers the same settings (tests/test_compose.py compares them).
"""

from __future__ import annotations

from pathlib import Path

from config import env
from config.services.base import Service
from config.services.process import (
    LOG,
    RUN,
    VAR,
    ServiceError,
    debian_binary,
    run,
    tail,
    wait_until,
)


class Redis(Service):
    """The coordination Redis: the broker and what must survive a crash."""

    name = "redis"
    process_marker = "redis-server"

    def __init__(self) -> None:
        self.home = VAR / self.name

    @property
    def port(self) -> int:
        return env.redis_port()

    @property
    def conf(self) -> Path:
        return self.home / "redis.conf"

    def settings(self) -> list[tuple[str, str]]:
        """The server's behaviour (persistence, memory): what compose must mirror."""
        return [
            # The broker queue and the coordination state must survive a restart, and a
            # SIGKILL must not lose an acknowledged write: append-only file, fsync each write.
            ("appendonly", "yes"),
            ("appendfsync", "always"),
            ("save", "60 1000"),
            ("maxmemory", "512mb"),
            ("maxmemory-policy", "noeviction"),
        ]

    def conf_text(self) -> str:
        """The whole redis.conf: where this server listens and keeps its files, then settings()."""
        lines = [
            "# Written by config/services/redis.py on every `up`; edit there.",
            f"port {self.port}",
            "bind 127.0.0.1",
            "protected-mode yes",
            "daemonize yes",
            f"pidfile {self.pidfile}",
            f"logfile {self.logfile}",
            f"dir {self.home}",
        ]
        lines += [f"{key} {value}" for key, value in self.settings()]
        return "\n".join(lines) + "\n"

    def binary(self) -> str:
        return debian_binary("redis-server", "/usr/bin/redis-server", "redis-server", "Redis")

    def prepare(self) -> None:
        self.binary()
        for path in (self.home, self.pidfile.parent, RUN, LOG):
            path.mkdir(parents=True, exist_ok=True)
        self.conf.write_text(self.conf_text())

    def start(self) -> None:
        run([self.binary(), str(self.conf)], step=f"{self.name} start")
        if not wait_until(self.healthy, 20):
            raise ServiceError(
                f"{self.name} did not come up; its log ({self.logfile}) says:\n{tail(self.logfile)}"
            )


class RedisCache(Redis):
    """The cache Redis: what may be evicted, and is lost on a restart."""

    name = "redis-cache"

    @property
    def port(self) -> int:
        return env.redis_cache_port()

    @property
    def pidfile(self) -> Path:
        return self.home / "redis.pid"

    def settings(self) -> list[tuple[str, str]]:
        return [
            # A cache: nothing written to disk, so nothing to load or lose on a restart.
            ("appendonly", "no"),
            ("save", '""'),
            # Capped; when full, the least recently used keys go, whatever their TTL.
            ("maxmemory", env.env_str("REDIS_CACHE_MAXMEMORY", "256mb")),
            ("maxmemory-policy", "allkeys-lru"),
        ]
