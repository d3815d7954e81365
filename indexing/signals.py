"""After-commit kicks: tell a worker to process the outbox once a transaction commits.

The change itself is captured by database triggers into the outbox, inside the writing
transaction (``indexing/migrations/0002_capture_triggers.py``). These receivers only make it
fast: one ``transaction.on_commit`` callback per transaction sends one task message. A
rolled-back transaction sends nothing and leaves no outbox rows. Receivers are connected in
``IndexingConfig.ready()``; models know nothing about search.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any

from django.db import connection, transaction
from django.db.models.signals import m2m_changed, post_delete, post_save

from indexing import tasks
from portal.models import Dependency, Maintainer, Package, Section, Tag

# A dependency change recounts its target's reverse dependencies (a database trigger), which
# changes the target's document: it needs a kick as much as a package edit does.
WATCHED = (Package, Section, Maintainer, Tag, Dependency)


def connect() -> None:
    for model in WATCHED:
        uid = model._meta.label_lower
        post_save.connect(changed, sender=model, dispatch_uid=f"indexing.saved.{uid}")
        post_delete.connect(changed, sender=model, dispatch_uid=f"indexing.deleted.{uid}")
    m2m_changed.connect(changed, sender=Package.tags.through, dispatch_uid="indexing.tags_changed")


def changed(sender: Any, **kwargs: Any) -> None:
    kick_after_commit()


class _Kick:
    """The after-commit callback: one task message asking a worker to drain the outbox."""

    def __call__(self) -> None:
        tasks.kick()


_registered = threading.local()


def kick_after_commit() -> None:
    """Register one kick for the current transaction (or kick now in autocommit mode).

    One per transaction, whatever the number of saves: the callback registered by the first
    save is remembered through a weak reference. Django holds the callback until the
    transaction commits (then runs and drops it) or rolls back (then drops it, also when
    only the savepoint it was registered in rolls back); either way the weak reference dies
    at once, and the next save registers a new one. Only ``transaction.on_commit``, the
    public API, is used."""
    if not connection.in_atomic_block:
        tasks.kick()
        return
    ref = getattr(_registered, "kick", None)
    if ref is not None and ref() is not None:
        return  # this transaction will kick already
    callback = _Kick()
    _registered.kick = weakref.ref(callback)
    transaction.on_commit(callback)
