"""Change capture: model signals hand package changes to the indexing task after commit.

Receivers are connected in ``IndexingConfig.ready()``; models know nothing about search.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_save

from portal.models import Package


def connect() -> None:
    post_save.connect(package_saved, sender=Package, dispatch_uid="indexing.package_saved")
    post_delete.connect(package_deleted, sender=Package, dispatch_uid="indexing.package_deleted")
    m2m_changed.connect(
        package_tags_changed, sender=Package.tags.through, dispatch_uid="indexing.tags_changed"
    )


def enqueue_after_commit(package_ids: list[int]) -> None:
    """Schedule indexing of these packages once the current transaction commits."""
    from indexing import tasks

    ids = sorted(set(package_ids))
    if ids:
        transaction.on_commit(lambda: tasks.index_packages.delay(ids))


def package_saved(sender: Any, instance: Package, **kwargs: Any) -> None:
    enqueue_after_commit([instance.pk])


def package_deleted(sender: Any, instance: Package, **kwargs: Any) -> None:
    enqueue_after_commit([instance.pk])


def package_tags_changed(sender: Any, instance: Any, action: str, **kwargs: Any) -> None:
    if not action.startswith("post_"):
        return
    if isinstance(instance, Package):
        enqueue_after_commit([instance.pk])
    elif kwargs.get("pk_set"):
        enqueue_after_commit(list(kwargs["pk_set"]))
