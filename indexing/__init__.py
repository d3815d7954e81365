"""Keeps Elasticsearch in step with PostgreSQL.

Changes to packages (and to the sections, maintainers and tags they show) are captured by
database triggers into an outbox in the writing transaction, so every writer is covered,
including ``bulk_create``, ``QuerySet.update()`` and raw SQL. After commit a task drains the
outbox; a periodic sweeper catches whatever a broker or worker outage left behind.

Code that writes in bulk can make indexing immediate (instead of waiting for the sweeper)
with :func:`enqueue`, inside the writing transaction::

    from indexing import enqueue
    with transaction.atomic():
        Package.objects.filter(section__name="oldlibs").update(priority="optional")
        enqueue()                      # just kick the worker after commit
    enqueue([12, 13])                  # also record these ids explicitly (e.g. a repair)
    enqueue(Package.objects.filter(name__startswith="lib"))
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def enqueue(packages: Iterable[int] | Any = ()) -> int:
    """Schedule (re)indexing after the current transaction commits.

    ``packages``: ids or a Package queryset to record in the outbox explicitly (for tables
    without capture triggers, repairs, "reindex selected"); empty just kicks the worker.
    Returns how many ids were recorded.
    """
    from django.db.models import QuerySet

    from indexing.signals import kick_after_commit
    from indexing.writer import record_changes

    if isinstance(packages, QuerySet):
        packages = packages.values_list("pk", flat=True)
    recorded = record_changes(packages)
    kick_after_commit()
    return recorded


def pending(package_id: int) -> bool:
    """Whether a change of this package waits in the outbox."""
    from indexing.models import OutboxEntry

    return OutboxEntry.objects.filter(object_id=package_id).exists()


def outbox_mark() -> int:
    """A mark after every change recorded so far (for :func:`discard_pending`)."""
    from django.db.models import Max

    from indexing.models import OutboxEntry

    return OutboxEntry.objects.aggregate(m=Max("id"))["m"] or 0


def discard_pending(up_to: int) -> int:
    """Drop the changes recorded up to ``up_to`` (an :func:`outbox_mark`) without indexing
    them: only right after the *first* full rebuild that started after the mark, when no
    other index (a rollback target) needs them. Returns how many were dropped."""
    from indexing.models import OutboxEntry

    return OutboxEntry.objects.filter(id__lte=up_to).delete()[0]
