"""Read-your-writes for editors: after an editor changes the catalog, their own next search
waits (up to ``SEARCH_EDITOR_WAIT_SECONDS``) until the change is searchable; nobody else
waits, and nobody's search forces an index refresh.

Every change reaches search the same way, whatever its kind (a package saved or deleted, a
section or maintainer renamed, a tag relabelled, a bulk action): the database's triggers
record it in the outbox in the writing transaction, and the worker deletes those rows only
once their documents are searchable (written with ``refresh=wait_for``, the index
generation moved on: ``indexing.writer``). So "what I changed is searchable" is "no outbox
row up to the mark taken after my change is left": one rule for every kind of change. (It
was package saves only, checked by row version in the index; after a section rename or a
delete the editor's next search showed the old state.) Rows set aside because Elasticsearch
refused their document are not waited for: they are retried ten minutes later.

The mark is remembered only when the request added outbox rows, so an editor who merely
looked at the admin does not wait for a backlog that is not theirs.
"""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.db.models import Q
from django.db.models.functions import Now

import indexing
from indexing.models import OutboxEntry

SESSION_KEY = "search_pending_outbox_mark"
POLL_SECONDS = 0.1


def remember(request: Any, before: int) -> None:
    """If changes were recorded since ``before`` (an ``indexing.outbox_mark()`` taken when
    the request started), this editor's next search waits for them."""
    session = getattr(request, "session", None)
    if session is None:
        return
    mark = indexing.outbox_mark()
    if mark > before and mark > session.get(SESSION_KEY, 0):
        session[SESSION_KEY] = mark


def pending(up_to: int) -> bool:
    """Whether a change recorded up to ``up_to`` is not searchable yet (set-aside rows,
    waiting for their retry, excepted)."""
    due = Q(retry_after__isnull=True) | Q(retry_after__lte=Now())
    return OutboxEntry.objects.filter(due, id__lte=up_to).exists()


def wait(request: Any, timeout: float | None = None) -> bool:
    """Before this editor's search: wait until what they changed is searchable (at most
    ``timeout`` seconds, by default ``SEARCH_EDITOR_WAIT_SECONDS``), then forget it.
    Returns whether it is searchable."""
    session = getattr(request, "session", None)
    mark = session.get(SESSION_KEY) if session is not None else None
    if not mark:
        return True
    if timeout is None:
        timeout = settings.SEARCH_EDITOR_WAIT_SECONDS
    deadline = time.monotonic() + timeout
    while (still := pending(mark)) and time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)
    del session[SESSION_KEY]
    return not still
