"""Keeps Elasticsearch in step with PostgreSQL.

The public API for code that writes without model signals (``bulk_create``,
``QuerySet.update()``, raw SQL) is :func:`enqueue`::

    from indexing import enqueue
    ids = Package.objects.filter(...).update(priority="optional")  # no signals fire
    enqueue(Package.objects.filter(...))   # or enqueue([1, 2, 3])

Call it inside the writing transaction: the work is scheduled after that transaction
commits and is dropped if it rolls back.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

CHUNK = 500


def enqueue(packages: Iterable[int] | Any) -> int:
    """Schedule (re)indexing of packages given as ids or a Package queryset.

    Returns how many package ids were scheduled.
    """
    from django.db.models import QuerySet

    from indexing.signals import enqueue_after_commit

    if isinstance(packages, QuerySet):
        ids = list(packages.values_list("pk", flat=True))
    else:
        ids = [int(pk) for pk in packages]
    ids = sorted(set(ids))
    for start in range(0, len(ids), CHUNK):
        enqueue_after_commit(ids[start : start + CHUNK])
    return len(ids)
