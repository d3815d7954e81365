"""Bulk writes of package documents, versioned by the row version.

Every write uses ``version_type=external_gte`` with the row's ``row_version``: an older write
arriving late is rejected by Elasticsearch (a version conflict, which is expected and
ignored), so the index never goes back in time.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from typing import Any

from elasticsearch import helpers

from portal.models import Package
from search.documents import PackageDocument
from search.indices import client, ensure_index, indices_behind, write_alias

logger = logging.getLogger(__name__)


def document_actions(packages: Iterable[Package], index: str) -> Iterator[dict[str, Any]]:
    doc = PackageDocument()
    for package in packages:
        yield {
            "_op_type": "index",
            "_index": index,
            "_id": package.pk,
            "version": package.row_version,
            "version_type": "external_gte",
            "_source": doc.prepare(package),
        }


def sync_packages(package_ids: Iterable[int]) -> dict[str, int]:
    """Write the current state of these packages; delete documents whose row is gone."""
    ids = sorted(set(package_ids))
    if not ids:
        return {"indexed": 0, "deleted": 0, "conflicts": 0}
    ensure_index()
    packages = list(PackageDocument.source_queryset().filter(pk__in=ids))
    found = {p.pk for p in packages}
    actions: list[dict[str, Any]] = []
    # During a rebuild the write alias covers the old and the new index: write to each.
    for index in indices_behind(write_alias()):
        actions += document_actions(packages, index)
        actions += (
            {"_op_type": "delete", "_index": index, "_id": pk} for pk in ids if pk not in found
        )
    _ok, errors = helpers.bulk(client(), actions, raise_on_error=False, stats_only=False)
    conflicts = 0
    real_errors = []
    for error in errors:
        ((op, detail),) = error.items()
        status = detail.get("status")
        if status == 409:
            conflicts += 1  # a newer version is already indexed: expected, harmless
        elif op == "delete" and status == 404:
            continue  # already gone
        else:
            real_errors.append(detail)
    if real_errors:
        raise RuntimeError(f"{len(real_errors)} bulk errors, first: {real_errors[0]}")
    return {"indexed": len(packages), "deleted": len(ids) - len(found), "conflicts": conflicts}
