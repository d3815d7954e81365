"""Redis from Debian's package (installed with apt-get when missing).

It holds the Celery broker queue and the cache, on 127.0.0.1:``REDIS_PORT``, with its data
under ``.var/redis``; ``redis.conf`` is rewritten there on every ``up``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from config import env
from config.services.base import Service
from config.services.process import (
    LOG,
    RUN,
    VAR,
    ServiceError,
    apt_install,
    run,
    tail,
    wait_until,
)


class Redis(Service):
    name = "redis"
    process_marker = "redis-server"

    def __init__(self) -> None:
        self.home = VAR / "redis"

    @property
    def port(self) -> int:
        return env.redis_port()

    def binary(self) -> str:
        found = shutil.which("redis-server") or (
            "/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None
        )
        if not found:
            apt_install("redis-server", "Redis")
            return self.binary()
        return found

    def prepare(self) -> None:
        self.binary()
        for path in (self.home, RUN, LOG):
            path.mkdir(parents=True, exist_ok=True)
        (self.home / "redis.conf").write_text(
            "# Written by config/services/redis.py on every `up`; edit there.\n"
            f"port {self.port}\n"
            "bind 127.0.0.1\n"
            "protected-mode yes\n"
            "daemonize yes\n"
            f"pidfile {self.pidfile}\n"
            f"logfile {self.logfile}\n"
            f"dir {self.home}\n"
            # The broker queue must survive a restart: append-only file, fsync every second.
            "appendonly yes\n"
            "appendfsync everysec\n"
            "save 60 1000\n"
            "maxmemory 512mb\n"
            "maxmemory-policy noeviction\n"
        )

    def start(self) -> None:
        run([self.binary(), str(self.home / "redis.conf")], step="Redis start")
        if not wait_until(self.healthy, 20):
            raise ServiceError(f"Redis did not come up; its log says:\n{tail(self.logfile)}")
