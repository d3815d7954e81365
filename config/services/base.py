"""A service the manager runs: its pid file, port, log, and the idempotent ``up``/``down``.

``up`` is idempotent: what already runs is left alone, stale pid files from a crash are
removed, and a port held by a foreign process is reported (nothing is killed that this
checkout did not start). ``down`` stops only processes whose pid files are under ``.var/run``
and whose command line matches the service.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from config.services.process import (
    LOG,
    RUN,
    ServiceError,
    pid_alive,
    pid_cmdline,
    port_open,
    read_pid,
    say,
    stop_pid,
)


@dataclass
class Status:
    name: str
    running: bool
    pid: int | None
    address: str
    log: Path
    note: str = ""  # shown in the row
    detail: str = ""  # shown on a line of its own under the table


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
