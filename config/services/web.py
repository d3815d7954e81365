"""Several web processes behind a load balancer: gunicorn instances and HAProxy.

``WEB_INSTANCES=2 python -m config.services up`` (or ``make run-balanced``) starts, besides
the other services, ``WEB_INSTANCES`` gunicorn instances on 127.0.0.1:``WEB_PORT_BASE``,
``WEB_PORT_BASE``+1, ... (default 8101) and HAProxy (Debian's package, installed when missing)
on 127.0.0.1:``BALANCER_PORT`` (default 8080) in front of them. ``make run`` stays one
process on :8000.

What the balancer does (:func:`haproxy_config`, the same text docker-compose.yml mounts):

* health-checks every instance's ``/readyz`` each second; two failures take an instance
  out, two successes put it back; an instance that turns unready (its database or
  Elasticsearch unreachable) is drained the same way;
* retries a request whose connection failed, or that got no answer, on another instance
  (``retry-on conn-failure empty-response response-timeout``, ``option redispatch``). HAProxy
  retries only requests it may replay safely: a POST whose body was sent is not replayed;
* adds ``X-Forwarded-For`` (list the balancer in ``SEARCH_TRUSTED_PROXIES`` so the rate
  limit counts visitors, not the balancer) and serves its statistics as CSV on
  ``/haproxy-stats;csv`` of ``BALANCER_STATS_PORT`` (default 8404), which the tests read.

Nothing a visitor depends on lives in a web process: sessions are in PostgreSQL, the cache,
rate limits and the index generation in Redis, so any instance can answer any request.
"""

from __future__ import annotations

import socket
import sys
from pathlib import Path

from config import env
from config.services.base import Service
from config.services.process import (
    LOG,
    RUN,
    VAR,
    ServiceError,
    debian_binary,
    port_open,
    run,
    tail,
    wait_until,
)

ROOT = Path(__file__).resolve().parents[2]
CHECK_INTERVAL_MS = 1000  # health checks: every second; out after 2 failures, back after 2


def instance_count() -> int:
    return env.env_int("WEB_INSTANCES", 0)


def web_port_base() -> int:
    return env.env_int("WEB_PORT_BASE", 8101)


def balancer_port() -> int:
    return env.env_int("BALANCER_PORT", 8080)


def stats_port() -> int:
    return env.env_int("BALANCER_STATS_PORT", 8404)


COMPOSE_CONFIG = ROOT / "config" / "haproxy-compose.cfg"


def haproxy_config(
    servers: list[tuple[str, str]] | tuple[int, str],
    bind: str,
    stats_bind: str,
    check_host: str = "127.0.0.1",
    admin_socket: Path | None = None,
) -> str:
    """The HAProxy configuration for ``servers``: (name, host:port) pairs, or (count,
    host:port) for ``count`` replicas behind one DNS name (compose: Docker's resolver).
    ``admin_socket``: the runtime API (drain an instance before restarting it)."""
    replicas = isinstance(servers, tuple)
    lines = [
        "# Written by config/services/web.py (haproxy_config); edit there.",
        "global",
        "    maxconn 4096",
        *([f"    stats socket {admin_socket} mode 600 level admin"] if admin_socket else []),
        "defaults",
        "    mode http",
        "    timeout connect 2s",
        "    timeout client 60s",
        "    timeout server 60s",
        "    timeout http-request 10s",
        "    retries 5",
        "    option redispatch 1",
        "    retry-on conn-failure empty-response response-timeout",
        "    option forwardfor",
        # Checks every second; live traffic counts too: a refused or reset connection marks
        # the server down at once (observe layer4), before the next health check.
        f"    default-server inter {CHECK_INTERVAL_MS}ms fall 2 rise 2"
        " observe layer4 error-limit 1 on-error mark-down",
        "frontend portal",
        f"    bind {bind}",
        "    default_backend web",
        "backend web",
        "    balance roundrobin",
        "    option httpchk",
        f"    http-check send meth GET uri /readyz ver HTTP/1.1 hdr Host {check_host}",
        "    http-check expect status 200",
    ]
    if isinstance(servers, tuple):
        count, address = servers
        lines.append(
            f"    server-template web {count} {address} check resolvers docker init-addr none"
        )
    else:
        lines += [f"    server {name} {address} check" for name, address in servers]
    lines += [
        "frontend stats",
        f"    bind {stats_bind}",
        "    stats enable",
        "    stats uri /haproxy-stats",
        "    stats refresh 5s",
    ]
    if replicas:
        lines += [
            "resolvers docker",
            "    nameserver dns 127.0.0.11:53",
            "    hold valid 5s",
        ]
    return "\n".join(lines) + "\n"


def compose_config() -> str:
    """What docker-compose.yml mounts (config/haproxy-compose.cfg; a test compares them)."""
    return haproxy_config((2, "web:8000"), "*:8000", "*:8404", check_host="localhost")


class WebInstance(Service):
    """One gunicorn instance (its own master and workers), detached, pid and log in .var."""

    process_marker = "config.wsgi"

    def __init__(
        self, number: int, extra_env: dict[str, str] | None = None, prefix: str = "web"
    ) -> None:
        self.number = number
        self.name = f"{prefix}{number}"  # its pid and log files (the tests use their own)
        self.extra_env = extra_env or {}

    @property
    def port(self) -> int:
        return web_port_base() + self.number - 1

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "gunicorn",
            "config.wsgi",
            "--bind",
            f"127.0.0.1:{self.port}",
            "--workers",
            str(env.env_int("WEB_INSTANCE_WORKERS", 2)),
            "--pid",
            str(self.pidfile),
            "--error-logfile",
            str(self.logfile),
            "--chdir",
            str(ROOT),
            "--daemon",
        ]

    def prepare(self) -> None:
        for path in (RUN, LOG):
            path.mkdir(parents=True, exist_ok=True)

    def start(self) -> None:
        # No access log (gunicorn.conf.py reads WEB_ACCESS_LOG; empty means none).
        environment = {"WEB_ACCESS_LOG": "", **self.extra_env}
        run(self.command(), step=f"{self.name} start", env_extra=environment)
        if not wait_until(lambda: self.our_pid() is not None and port_open(self.port), 60):
            raise ServiceError(
                f"{self.name} did not start; its log ({self.logfile}) ends with:\n"
                f"{tail(self.logfile)}"
            )


class Balancer(Service):
    """HAProxy in front of the web instances."""

    process_marker = "haproxy"

    def __init__(self, instances: int | None = None, name: str = "balancer") -> None:
        self.name = name
        self.instances = instance_count() if instances is None else instances
        self.home = VAR / name

    @property
    def port(self) -> int:
        return balancer_port()

    @property
    def conf(self) -> Path:
        return self.home / "haproxy.cfg"

    def binary(self) -> str:
        return debian_binary("haproxy", "/usr/sbin/haproxy", "haproxy", "the load balancer")

    def servers(self) -> list[tuple[str, str]]:
        return [
            (f"web{n}", f"127.0.0.1:{web_port_base() + n - 1}")
            for n in range(1, self.instances + 1)
        ]

    def prepare(self) -> None:
        if self.instances < 1:
            raise ServiceError("balancer: set WEB_INSTANCES (e.g. 2) to run it")
        self.binary()
        for path in (self.home, RUN, LOG):
            path.mkdir(parents=True, exist_ok=True)
        text = haproxy_config(
            self.servers(),
            f"127.0.0.1:{self.port}",
            f"127.0.0.1:{stats_port()}",
            admin_socket=self.socket,
        )
        self.conf.write_text(text)

    @property
    def socket(self) -> Path:
        return self.home / "admin.sock"

    def runtime(self, line: str) -> str:
        """One command of HAProxy's runtime API (its admin socket); its answer."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(5)
            conn.connect(str(self.socket))
            conn.sendall(line.encode() + b"\n")
            chunks = []
            while chunk := conn.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def server_stats(self, server: str) -> dict[str, str]:
        """The ``show stat`` row of a web instance (status, scur: current sessions, ...)."""
        header, *rows = self.runtime("show stat").lstrip("# ").splitlines()
        names = header.split(",")
        for row in rows:
            values = row.split(",")
            if values[:2] == ["web", server]:
                return dict(zip(names, values, strict=False))
        raise ServiceError(f"balancer: no server {server!r} in backend web")

    def drain(self, server: str, timeout: float = 30) -> None:
        """Send ``server`` no new requests and wait until it answers none (maintenance)."""
        self.runtime(f"set server web/{server} state maint")
        if not wait_until(lambda: self.server_stats(server)["scur"] == "0", timeout, 0.1):
            raise ServiceError(f"balancer: {server} still busy after {timeout:.0f}s of draining")

    def resume(self, server: str, timeout: float = 30) -> None:
        """Give ``server`` requests again once its health checks pass."""
        self.runtime(f"set server web/{server} state ready")
        if not wait_until(lambda: self.server_stats(server)["status"] == "UP", timeout, 0.1):
            raise ServiceError(f"balancer: {server} did not come back within {timeout:.0f}s")

    def start(self) -> None:
        binary = self.binary()
        run([binary, "-c", "-q", "-f", str(self.conf)], step="balancer: check the configuration")
        run([binary, "-D", "-f", str(self.conf), "-p", str(self.pidfile)], step="balancer start")
        if not wait_until(self.healthy, 20):
            raise ServiceError(f"balancer did not come up on 127.0.0.1:{self.port}")


def rolling_restart(balancer: Balancer, instances: list[WebInstance]) -> None:
    """Restart every web instance, one at a time: drain it at the balancer, stop it (its
    requests are already answered), start it, and wait until the balancer uses it again.
    Without the drain, a request sent on a kept-alive connection the stopping instance
    closes can fail, and a POST is not retried (seen in tests/integration/test_balancer.py)."""
    for instance in instances:
        server = f"web{instance.number}"
        balancer.drain(server)
        instance.down()
        instance.up()
        balancer.resume(server)
