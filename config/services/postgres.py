"""PostgreSQL from Debian's package (installed with apt-get when missing), as the service user.

Its own cluster under ``.var/postgres/data`` (initdb on first ``up``), listening on
127.0.0.1:``POSTGRES_PORT`` and a socket folder under ``.var/postgres/run``; the server
settings are rewritten to ``portal.conf`` on every ``up``, and the database the settings name
is created when missing.
"""

from __future__ import annotations

from pathlib import Path

from config import env
from config.services.base import Service
from config.services.process import (
    LOG,
    VAR,
    apt_install,
    ensure_service_user,
    give_to_service_user,
    pid_alive,
    read_pid,
    run,
    say,
    stop_pid,
    wait_until,
)


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
            "# Written by config/services/postgres.py on every `up`; edit there.\n"
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
