"""Bulk-loading a new index: a bounded producer/consumer pipeline.

The calling thread reads batches from PostgreSQL (``indexing.documents.batches``) and turns
them into versioned bulk actions while ``SENDERS`` threads send earlier batches, so reading,
preparing and Elasticsearch's indexing overlap. At most ``QUEUE_DEPTH`` batches wait between
them (plus one being built and one in flight per sender): memory stays flat whatever the
size of the catalog (``bench/reindex.py``: peak RSS 534 MB at 63k documents, 622-658 MB through
a 1M rebuild; 155 and 184 MB before the meaning vectors, a 256-number list per document).
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from elasticsearch import Elasticsearch, helpers

from indexing.documents import Row, action, refusal

SENDERS = 2
QUEUE_DEPTH = 4
# A bulk request of a big batch can take longer than the client's default timeout while
# Elasticsearch merges segments; a retried request would only repeat the same work.
BULK_TIMEOUT = 120


class LoadError(RuntimeError):
    """Elasticsearch failed part of the load for a reason other than a version conflict or
    a document it refused."""


@dataclass
class Loaded:
    sent: int  # documents sent
    refused: dict[int, str]  # package id -> why Elasticsearch refused its document


def load(
    es: Elasticsearch,
    index: str,
    batches: Iterable[list[Row]],
    batch_size: int,
    on_progress: Callable[[int], None] | None = None,
) -> Loaded:
    """Write every row of ``batches`` into ``index``; return how many documents were sent,
    and those Elasticsearch refused for what they are (``indexing.documents.refusal``): one
    bad document does not stop the load (the caller reports them).

    Any exception in the calling thread (Ctrl-C included) stops the senders before it
    propagates: nothing more is sent once the load is abandoned."""
    senders = _BulkSenders(es.options(request_timeout=BULK_TIMEOUT), batch_size)
    done = 0
    try:
        for rows in batches:
            senders.put([action(index, row.id, row.version, row.source) for row in rows])
            done += senders.report(on_progress)
        senders.finish()
    finally:
        senders.stop()
    return Loaded(done + senders.report(on_progress), dict(senders.refused))


class _BulkSenders:
    """Threads sending batches of bulk actions taken from a bounded queue.

    The first failure (any error but a version conflict or a refused document) stops the
    load: it is raised in the reading thread at its next ``put`` or at ``finish``.
    """

    def __init__(self, client: Elasticsearch, chunk_size: int) -> None:
        self.client = client
        self.chunk_size = chunk_size
        self.pending: queue.Queue[list[dict[str, Any]] | None] = queue.Queue(QUEUE_DEPTH)
        self.sent: queue.SimpleQueue[int] = queue.SimpleQueue()
        self.error: BaseException | None = None
        self.refused: dict[int, str] = {}  # written by the sender threads (one key each)
        self.abort = threading.Event()
        self.threads = [
            threading.Thread(target=self._run, name=f"reindex-bulk-{i}", daemon=True)
            for i in range(SENDERS)
        ]
        for thread in self.threads:
            thread.start()

    def _run(self) -> None:
        while True:
            actions = self.pending.get()
            if actions is None:
                return
            if self.abort.is_set():
                continue  # drain without sending
            try:
                self._send(actions)
                self.sent.put(len(actions))
            except BaseException as exc:
                if self.error is None:
                    self.error = exc
                self.abort.set()

    def _send(self, actions: list[dict[str, Any]]) -> None:
        for ok, item in helpers.streaming_bulk(
            self.client,
            actions,
            chunk_size=self.chunk_size,
            raise_on_error=False,
            max_retries=3,
        ):
            if ok:
                continue
            ((op, detail),) = item.items()
            if detail.get("status") == 409:
                continue
            reason = refusal(op, detail)
            if reason is None:
                raise LoadError(f"bulk load failed: {item}")
            self.refused[int(detail["_id"])] = reason

    def _raise_failure(self) -> None:
        if self.error is not None:
            raise self.error

    def put(self, actions: list[dict[str, Any]]) -> None:
        while True:
            self._raise_failure()
            try:
                self.pending.put(actions, timeout=0.5)
                return
            except queue.Full:
                continue

    def report(self, on_progress: Callable[[int], None] | None) -> int:
        """Documents sent since the last call (passed to ``on_progress`` in this thread)."""
        total = 0
        while True:
            try:
                count = self.sent.get_nowait()
            except queue.Empty:
                return total
            total += count
            if on_progress:
                on_progress(count)

    def finish(self) -> None:
        """Wait until everything queued is sent; raise the first failure."""
        for _ in self.threads:
            self.pending.put(None)
        for thread in self.threads:
            thread.join()
        self._raise_failure()

    def stop(self) -> None:
        """Stop the threads (after ``finish``, or on a failure: nothing more is sent)."""
        if not any(thread.is_alive() for thread in self.threads):
            return
        self.abort.set()
        # Drop what waits, then tell every thread to stop.
        with contextlib.suppress(queue.Empty):
            while True:
                self.pending.get_nowait()
        for _ in self.threads:
            with contextlib.suppress(queue.Full):
                self.pending.put(None, timeout=BULK_TIMEOUT)
        for thread in self.threads:
            thread.join(timeout=BULK_TIMEOUT)
