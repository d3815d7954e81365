"""Index naming and creation: concrete timestamped indices behind two aliases.

* ``<prefix>-packages`` is the **read alias**: every search goes through it.
* ``<prefix>-packages-write`` is the **write alias**: every indexing write goes through it.

Normally both point at the same concrete index ``<prefix>-packages-<UTC timestamp>``. During a
full rebuild the write alias points at the old and the new index, so no write made during the
rebuild is lost, and the read alias moves to the new index in one atomic call at the end.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from elasticsearch import Elasticsearch, NotFoundError
from elasticsearch.dsl import connections

from search.documents import PackageDocument


def client() -> Elasticsearch:
    """The process-wide Elasticsearch client (configured from ``ELASTICSEARCH_DSL``)."""
    return connections.get_connection()


def read_alias() -> str:
    return f"{settings.SEARCH_INDEX_PREFIX}-packages"


def write_alias() -> str:
    return f"{settings.SEARCH_INDEX_PREFIX}-packages-write"


def index_pattern() -> str:
    """A pattern matching every concrete index of this prefix (not the aliases' names)."""
    return f"{settings.SEARCH_INDEX_PREFIX}-packages-2*"


def new_index_name(now: datetime | None = None) -> str:
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%d%H%M%S%f")
    return f"{settings.SEARCH_INDEX_PREFIX}-packages-{stamp}"


def index_settings(*, bulk_load: bool = False) -> dict[str, Any]:
    """Index settings from Django settings; ``bulk_load`` turns refresh and replicas off.

    ``gc_deletes`` is how long a versioned delete's tombstone is remembered: a write older
    than the delete that arrives within that time is rejected. It is longer while bulk
    loading, since the loader reads a row some time before writing it.
    """
    return {
        "number_of_shards": settings.SEARCH_INDEX_SHARDS,
        "number_of_replicas": 0 if bulk_load else settings.SEARCH_INDEX_REPLICAS,
        "refresh_interval": "-1" if bulk_load else settings.SEARCH_INDEX_REFRESH_INTERVAL,
        "gc_deletes": "30m" if bulk_load else "5m",
    }


def index_body(*, bulk_load: bool = False) -> dict[str, Any]:
    """The full create-index body: settings (with analysis) and mappings."""
    body = PackageDocument._index.to_dict()
    body.setdefault("settings", {}).update(index_settings(bulk_load=bulk_load))
    # Set by the incremental writer (not by full rebuilds): when the document was last
    # written, shown to editors on the package's admin page.
    body.setdefault("mappings", {}).setdefault("properties", {})["indexed_at"] = {"type": "date"}
    return body


def create_index(name: str, *, bulk_load: bool = False, aliases: dict | None = None) -> str:
    """Create a concrete index with the package schema."""
    body = index_body(bulk_load=bulk_load)
    if aliases:
        body["aliases"] = aliases
    client().indices.create(index=name, body=body)
    return name


def indices_behind(alias: str) -> list[str]:
    """The concrete indices an alias points at (empty when the alias does not exist)."""
    try:
        return sorted(client().indices.get_alias(name=alias).keys())
    except NotFoundError:
        return []


def ensure_index() -> str:
    """Make sure the read and write aliases exist; create a first index when they don't.

    Returns the concrete index behind the read alias.
    """
    current = indices_behind(read_alias())
    if current:
        if not indices_behind(write_alias()):
            client().indices.put_alias(index=current[0], name=write_alias())
        return current[0]
    name = new_index_name()
    create_index(
        name,
        aliases={read_alias(): {}, write_alias(): {"is_write_index": True}},
    )
    client().cluster.health(index=name, wait_for_status="yellow", timeout="30s")
    return name
