"""How the project's Celery workers are started, and the worker the tests and benchmarks own.

Every worker of the project runs the command line :func:`celery_worker_argv` builds, on the
queues of ``WORKER_QUEUES``: the detached worker of the local services
(:mod:`config.services.celery`), the tests' session worker (``tests/conftest.py``) and the
benchmarks' (``bench/common.py``). The last two run a :class:`ForegroundWorker`, a child
process they start, kill and stop themselves.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

import redis

from config import env
from config.services.process import ROOT, ServiceError, wait_until

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
        try:
            return bool(app.control.ping(timeout=0.5, destination=destination))
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError):
            # A pooled broker connection that Redis closed (it restarted since): the error
            # dropped it from the pool, so the next ping connects again.
            return False

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
