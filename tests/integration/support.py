"""Shared pieces of the indexing and fault tests."""

from __future__ import annotations

import itertools
import threading
import time

from django.db import close_old_connections, connection

from indexing import verify
from portal.models import Package
from search.indices import client, read_alias
from tests.conftest import wait_for


def outbox_backlog() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM indexing_outbox")
        return cursor.fetchone()[0]


def wait_until_indexed(timeout: float = 90) -> None:
    """Wait until the worker has drained the outbox."""
    wait_for(lambda: outbox_backlog() == 0, timeout=timeout, interval=0.2)


def drain_outbox(timeout: float = 60) -> None:
    """Write the outbox here until it is empty. Until *empty*, not until this process finds
    nothing to claim: a worker of the session may hold rows it is still writing (claimed
    with SKIP LOCKED), and they are only gone once it has committed, its writes searchable."""
    from indexing import writer

    wait_for(
        lambda: writer.process_outbox() == (0, False) and outbox_backlog() == 0,
        timeout=timeout,
        interval=0.2,
    )


def assert_index_matches_database(context: str = "") -> None:
    """Every row has a document of its version whose every field equals what the row makes
    of it now, and there is nothing else (``context`` is added to the failure message)."""
    report = verify.verify(sample=None)
    assert report.clean, (
        f"{context}drift: {len(report.missing)} missing, {len(report.extra)} extra, "
        f"{len(report.stale)} stale, {len(report.differ)} differ "
        f"(e.g. {report.drift[:5]}, fields {sorted(report.differ.items())[:3]})"
    )
    rows = dict(Package.objects.values_list("pk", "summary"))
    docs = {}
    for start in range(0, len(rows), 1000):
        ids = list(rows)[start : start + 1000]
        found = client().mget(index=read_alias(), ids=ids, source=["summary"])["docs"]
        docs.update({int(d["_id"]): d["_source"]["summary"] for d in found if d["found"]})
    assert docs == rows


class EditLoad(threading.Thread):
    """Keeps editing package summaries through the ORM, one transaction per edit.

    Edits that fail (they should not: only PostgreSQL must be up) are recorded.
    """

    def __init__(self, package_ids: list[int], interval: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.package_ids = package_ids
        self.interval = interval
        self.stop_event = threading.Event()
        self.edits = 0
        self.errors: list[Exception] = []

    def run(self) -> None:
        counter = itertools.count()
        try:
            while not self.stop_event.is_set():
                n = next(counter)
                pk = self.package_ids[n % len(self.package_ids)]
                try:
                    package = Package.objects.get(pk=pk)
                    package.summary = f"edit {n} of {package.name}"
                    package.save()
                    self.edits += 1
                except Exception as exc:
                    self.errors.append(exc)
                time.sleep(self.interval)
        finally:
            close_old_connections()
            connection.close()

    def stop(self) -> None:
        self.stop_event.set()
        self.join(timeout=30)
