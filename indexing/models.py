"""The indexing outbox: one row per captured change, written in the same transaction.

Rows are inserted by PostgreSQL triggers (see migration 0002), not by Python code, so every
writer is covered: the ORM, ``bulk_create``, ``QuerySet.update()``, raw SQL, and psql. A row
means "the search document of this object may be out of date"; the indexing task coalesces
rows by object, re-reads the objects, writes them, and deletes the rows it handled (the rows
of a document Elasticsearch refuses are set aside instead: ``retry_after``). If the
broker or the worker is down the rows simply wait; the periodic sweeper re-sends them.
"""

from __future__ import annotations

from django.db import models


class OutboxEntry(models.Model):
    object_id = models.BigIntegerField()
    # The package's row_version for inserts/updates; a fresh sequence value for deletes
    # (used as the external version of the delete, so a late older write cannot resurrect it).
    version = models.BigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    # Set when Elasticsearch refused the document (a 400 for it alone): the row is kept, and
    # claimed again after this time; ``refusal`` says why (indexing.writer).
    retry_after = models.DateTimeField(null=True, blank=True)
    refusal = models.TextField(blank=True, default="", db_default="")

    class Meta:
        db_table = "indexing_outbox"
        verbose_name = "pending index change"
        verbose_name_plural = "pending index changes"
        indexes = [models.Index(fields=["object_id"], name="outbox_object_idx")]

    def __str__(self) -> str:
        return f"package {self.object_id} @ {self.version}"
