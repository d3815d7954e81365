"""The services manager recovers after its services are killed (a separate, throwaway set).

These run the real ``python -m config.services`` as a subprocess with its own data folder and
ports, so the services the rest of the suite uses are not disturbed.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from config import env
from tests.conftest import ROOT, run_services, wait_for

pytestmark = pytest.mark.integration

# The configured ports + 10 (25442, 26389, 26390, 29210, 29310 by default): below Linux's
# ephemeral port range (32768-60999), so no outgoing connection of the test run can be
# holding one of them when the scratch services start, and apart from another checkout's
# scratch services when that checkout's services use other ports.
PORTS = {
    "POSTGRES_PORT": str(env.connections().postgres_port + 10),
    "REDIS_PORT": str(env.redis_port() + 10),
    "REDIS_CACHE_PORT": str(env.redis_cache_port() + 10),
    "ELASTICSEARCH_PORT": str(env.elasticsearch_port() + 10),
    "ELASTICSEARCH_TRANSPORT_PORT": str(env.elasticsearch_transport_port() + 10),
}


@pytest.fixture
def scratch_services():
    var = ROOT / ".var" / "test-services"
    shutil.rmtree(var, ignore_errors=True)
    # PATH without the sbin directories, as some root shells and CI runners have it: the
    # manager must still find runuser, useradd and PostgreSQL's tools.
    path = os.pathsep.join(
        p for p in os.environ.get("PATH", "").split(os.pathsep) if not p.endswith("sbin")
    )
    env = {
        **os.environ,
        **PORTS,
        "PATH": path,
        "POSTGRES_DB": "portal",  # what the test connects to, whatever this session uses
        "PORTAL_VAR_DIR": str(var),
        "ES_HEAP_SIZE": "256m",
    }

    def manage(*args: str) -> subprocess.CompletedProcess[str]:
        return run_services(*args, env=env)

    yield var, manage, env
    manage("down")
    shutil.rmtree(var, ignore_errors=True)


def _pid(path: Path) -> int:
    return int(path.read_text().split()[0])


def _port_closed(port: str) -> bool:
    import socket

    with socket.socket() as sock:
        sock.settimeout(0.3)
        return sock.connect_ex(("127.0.0.1", int(port))) != 0


def test_up_recovers_after_sigkill_and_keeps_data(scratch_services):
    var, manage, env = scratch_services
    services = ("postgres", "redis", "redis-cache", "elasticsearch")

    first = manage("up", *services)
    assert first.returncode == 0, first.stdout + first.stderr
    assert manage("status", *services).returncode == 0

    # Write something to each store so we can see it survive the crash.
    psql = ["psql", "-h", "127.0.0.1", "-p", PORTS["POSTGRES_PORT"], "-U", "portal", "-d"]
    pg_env = {**env, "PGPASSWORD": "portal"}
    subprocess.run(
        [*psql, "portal", "-c", "CREATE TABLE survivor (x int); INSERT INTO survivor VALUES (42)"],
        env=pg_env,
        check=True,
        capture_output=True,
    )
    # No pause before the kill: the coordination Redis fsyncs every write before answering.
    redis_cli = ["redis-cli", "-p", PORTS["REDIS_PORT"]]
    subprocess.run([*redis_cli, "SET", "survivor", "42"], check=True, capture_output=True)
    cache_cli = ["redis-cli", "-p", PORTS["REDIS_CACHE_PORT"]]
    subprocess.run([*cache_cli, "SET", "cached", "1"], check=True, capture_output=True)

    pids = {
        "postgres": _pid(var / "postgres" / "data" / "postmaster.pid"),
        "redis": _pid(var / "run" / "redis.pid"),
        "redis-cache": _pid(var / "redis-cache" / "redis.pid"),
        "elasticsearch": _pid(var / "elasticsearch" / "run" / "elasticsearch.pid"),
    }
    for pid in pids.values():
        os.kill(pid, signal.SIGKILL)
    for port in ("POSTGRES_PORT", "REDIS_PORT", "REDIS_CACHE_PORT", "ELASTICSEARCH_PORT"):
        wait_for(lambda port=port: _port_closed(PORTS[port]), timeout=30)
    assert manage("status", *services).returncode == 3  # reported as stopped

    again = manage("up", *services)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "stale pid file" in again.stdout
    assert manage("status", *services).returncode == 0

    out = subprocess.run(
        [*psql, "portal", "-tAc", "SELECT x FROM survivor"],
        env=pg_env,
        check=True,
        capture_output=True,
        text=True,
    )
    assert out.stdout.strip() == "42"
    got = subprocess.run([*redis_cli, "GET", "survivor"], capture_output=True, text=True)
    assert got.stdout.strip() == "42"
    # The cache Redis keeps nothing on disk: it comes back empty.
    got = subprocess.run([*cache_cli, "EXISTS", "cached"], capture_output=True, text=True)
    assert got.stdout.strip() == "0"

    # Idempotent: a second `up` leaves the running services alone.
    third = manage("up", *services)
    assert third.returncode == 0
    assert third.stdout.count("already running") == len(services)

    # `down` stops exactly what it started.
    assert manage("down", *services).returncode == 0
    assert manage("status", *services).returncode == 3
    for pid in (
        _pid_or_none(var / "run" / "redis.pid"),
        _pid_or_none(var / "redis-cache" / "redis.pid"),
        _pid_or_none(var / "elasticsearch" / "run" / "elasticsearch.pid"),
    ):
        assert pid is None


def _pid_or_none(path: Path) -> int | None:
    return _pid(path) if path.exists() else None


def test_up_refuses_a_port_held_by_a_foreign_process(scratch_services):
    import socket

    _, manage, _ = scratch_services
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", int(PORTS["REDIS_PORT"])))
        squatter.listen()
        result = manage("up", "redis")
    assert result.returncode == 1
    assert f"port {PORTS['REDIS_PORT']}" in result.stderr
    assert "did not start" in result.stderr
