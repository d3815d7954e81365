"""Celery worker and beat as detached processes of the local services, pid and log under .var/.

The worker consumes the project's queues (``CELERY_QUEUES``, default ``WORKER_QUEUES``) with
``CELERY_CONCURRENCY`` processes (default 4); beat keeps its schedule in
``.var/celerybeat-schedule``.
"""

from __future__ import annotations

import os

from config import env
from config.services.base import Service
from config.services.process import LOG, RUN, VAR, ServiceError, run, tail, wait_until
from config.services.runner import celery_argv, celery_worker_argv


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
