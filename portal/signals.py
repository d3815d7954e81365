"""Domain bookkeeping on ORM writes: dependency links and reverse-dependency counts.

(Indexing has its own receivers in ``indexing.signals``; these only keep the catalog's own
derived data right.) Recounts are set-based SQL UPDATEs, which fire no model signals; the
indexing triggers capture them and ``indexing.enqueue()`` kicks the worker after commit.
"""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_delete, post_save, pre_save

import indexing
from portal import dependencies
from portal.models import Dependency, Package


def connect() -> None:
    pre_save.connect(dependency_pre_save, sender=Dependency, dispatch_uid="portal.dep_pre")
    post_save.connect(dependency_saved, sender=Dependency, dispatch_uid="portal.dep_saved")
    post_delete.connect(dependency_deleted, sender=Dependency, dispatch_uid="portal.dep_del")
    post_save.connect(package_saved, sender=Package, dispatch_uid="portal.package_saved")


def _recount(candidates: set[int | None]) -> None:
    ids = {pk for pk in candidates if pk}
    if ids and dependencies.recompute_reverse_counts(ids):
        indexing.enqueue()


def dependency_pre_save(sender: Any, instance: Dependency, **kwargs: Any) -> None:
    previous = None
    if instance.pk:
        previous = Dependency.objects.filter(pk=instance.pk).values_list("target_id", flat=True)
        previous = previous.first()
    instance._previous_target_id = previous  # type: ignore[attr-defined]
    # The target always follows the name.
    target = Package.objects.filter(name=instance.target_name).values_list("pk", flat=True)
    instance.target_id = target.first()


def dependency_saved(sender: Any, instance: Dependency, **kwargs: Any) -> None:
    _recount({instance.target_id, getattr(instance, "_previous_target_id", None)})


def dependency_deleted(sender: Any, instance: Dependency, **kwargs: Any) -> None:
    _recount({instance.target_id})


def package_saved(sender: Any, instance: Package, created: bool, **kwargs: Any) -> None:
    """Link dependencies on this package's name; unlink them after a rename."""
    stale = Dependency.objects.filter(target=instance).exclude(target_name=instance.name)
    unlinked = stale.update(target=None)
    linked = Dependency.objects.filter(target_name=instance.name, target__isnull=True).update(
        target=instance
    )
    if created or linked or unlinked:
        _recount({instance.pk})
