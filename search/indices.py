"""Index names and schema: concrete timestamped indices behind three aliases.

* ``<prefix>-packages`` is the **read alias**: every search goes through it.
* ``<prefix>-packages-write`` is the **write alias**: every indexing write goes to each index
  behind it (``indexing.writer``; an Elasticsearch alias can route writes to one index only).
* ``<prefix>-packages-previous`` records the **rollback target**: the index that was live
  before the last rebuild. It stays behind the write alias for the retention period
  (``SEARCH_ROLLBACK_HOURS``), so it receives every edit and delete made since the swap and
  a rollback brings back an index equal to the database, not one frozen at the swap.

Normally the read alias and the write alias share the live index (plus the previous one).
During a rebuild the write alias also holds the index being built. Any other index of the
prefix is an **orphan** (a crashed rebuild's leftover): listed by ``search_status`` and
removed by ``search_status --remove-orphans``; nothing reads or writes it.

Automatic index creation is switched off for the prefix (:func:`protect_prefix`): a write in
flight to an index that was just deleted fails (and is retried through the alias) instead of
silently creating an empty index with dynamically guessed mappings. Indices are only ever
created here, by ``indexing``, with the full schema.

This module only names and describes; ``indexing`` creates, moves and deletes (only its
tasks and commands write to Elasticsearch).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from elasticsearch import Elasticsearch, NotFoundError
from elasticsearch.dsl import connections

from search import meaning
from search.documents import BUILD_VERSION, PackageDocument


def client() -> Elasticsearch:
    """The process-wide Elasticsearch client (configured from ``ELASTICSEARCH_DSL``)."""
    return connections.get_connection()


def prefix() -> str:
    return f"{settings.SEARCH_INDEX_PREFIX}-packages"


def read_alias() -> str:
    return prefix()


def write_alias() -> str:
    return f"{prefix()}-write"


def previous_alias() -> str:
    return f"{prefix()}-previous"


def index_pattern() -> str:
    """A pattern matching every concrete index of this prefix (not the aliases' names)."""
    return f"{prefix()}-2*"


def new_index_name(now: datetime | None = None) -> str:
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%d%H%M%S%f")
    return f"{prefix()}-{stamp}"


# While a rebuild loads a new index, it merges nothing: the rebuild merges it into one
# segment at the end anyway, and every merge before that built the merged segments' graphs
# of meaning vectors again (Lucene builds a merged segment's HNSW graph from its largest
# part's graph plus every other vector). With the default tiered policy, a 1,000,000-package
# rebuild merged 2.4 million documents in 501 s of merge time on 2 cores (550.5 s in all,
# 1,817 docs/s); with merges deferred, one merge of the 164 loaded segments took 155 s
# (460.3 s in all, 2,173 docs/s). Reset to the defaults when the index goes live.
BULK_LOAD_MERGE_POLICY = {
    "merge.policy.segments_per_tier": 500,
    "merge.policy.max_merge_at_once": 500,
}


def index_settings(*, bulk_load: bool = False) -> dict[str, Any]:
    """Index settings from Django settings; ``bulk_load`` turns refresh, replicas and
    merges (:data:`BULK_LOAD_MERGE_POLICY`) off.

    ``gc_deletes`` is how long a versioned delete's tombstone is remembered: a write older
    than the delete that arrives within that time is rejected. It is longer while bulk
    loading, since the loader reads a row some time before writing it.
    """
    return {
        "number_of_shards": settings.SEARCH_INDEX_SHARDS,
        "number_of_replicas": 0 if bulk_load else settings.SEARCH_INDEX_REPLICAS,
        "refresh_interval": "-1" if bulk_load else settings.SEARCH_INDEX_REFRESH_INTERVAL,
        "gc_deletes": "30m" if bulk_load else "5m",
        **(BULK_LOAD_MERGE_POLICY if bulk_load else {}),
    }


def live_settings_update() -> dict[str, Any]:
    """What turns a bulk-loaded index into a live one: the live refresh, replicas and
    tombstones, and the default merge policy back (``None`` resets a setting)."""
    live = index_settings()
    update: dict[str, Any] = {
        k: live[k] for k in ("number_of_replicas", "refresh_interval", "gc_deletes")
    }
    return update | dict.fromkeys(BULK_LOAD_MERGE_POLICY)


def _schema() -> dict[str, Any]:
    body = PackageDocument._index.to_dict()
    mappings = body.setdefault("mappings", {})
    mappings["dynamic"] = "false"
    # The vector is indexed but not kept in _source: it is derived from fields that are
    # (``indexing.documents.comparable``), and 256 floats would triple what verification
    # and every full-document read transfer.
    mappings["_source"] = {"excludes": [meaning.FIELD]}
    return body


def schema_digest() -> str:
    """A digest of the analysis settings, the mappings and how documents are built
    (``search.documents.BUILD_VERSION``): an index built with another one needs a
    ``reindex`` for a schema change to take effect."""
    schema = _schema()
    payload = {
        "analysis": schema.get("settings", {}).get("analysis"),
        "mappings": schema["mappings"],
        "build": BUILD_VERSION,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def index_body(*, bulk_load: bool = False) -> dict[str, Any]:
    """The full create-index body: settings (with analysis) and mappings, and the schema's
    digest in the mapping's ``_meta``.

    ``dynamic: false``: a field the mapping does not declare is kept in ``_source`` but not
    indexed, so a previous index kept for rollback accepts documents built by newer code
    (with a field it does not know) instead of failing every write or guessing a mapping.
    """
    body = _schema()
    body.setdefault("settings", {}).update(index_settings(bulk_load=bulk_load))
    body["mappings"]["_meta"] = {"schema": schema_digest()}
    return body


# Elasticsearch errors about the index rather than the request or the document (a 400 for a
# closed index, a 404 for a missing one): a later try may well succeed, and the visitor's
# words or the package are not at fault. One rule for the search service and the writers.
INDEX_ERRORS = ("index_not_found_exception", "index_closed_exception")


def about_the_index(error: Any) -> bool:
    """Whether an error (a response body, a bulk item's error, its root causes included) is
    about the index itself (:data:`INDEX_ERRORS`)."""
    text = str(error)
    return any(kind in text for kind in INDEX_ERRORS)


def index_meta(index: str, es: Elasticsearch | None = None) -> dict[str, Any]:
    """The ``_meta`` an index was created with (schema digest, when it went live)."""
    es = es or client()
    return es.indices.get_mapping(index=index)[index]["mappings"].get("_meta") or {}


def schema_is_current(index: str, es: Elasticsearch | None = None) -> bool:
    """Whether ``index`` was built with this code's schema (:func:`schema_digest`)."""
    return index_meta(index, es).get("schema") == schema_digest()


def indices_behind(alias: str) -> list[str]:
    """The concrete indices an alias points at (empty when the alias does not exist)."""
    try:
        return sorted(client().indices.get_alias(name=alias).keys())
    except NotFoundError:
        return []


@dataclass
class AliasState:
    """Where the three aliases point, and every concrete index of the prefix."""

    read: list[str] = field(default_factory=list)
    write: list[str] = field(default_factory=list)
    previous: list[str] = field(default_factory=list)
    all: list[str] = field(default_factory=list)

    @property
    def live(self) -> str | None:
        return self.read[0] if self.read else None

    @property
    def rollback_target(self) -> str | None:
        return self.previous[0] if self.previous else None

    @property
    def building(self) -> list[str]:
        """Indices being built: behind the write alias only."""
        return [i for i in self.write if i not in self.read and i not in self.previous]

    @property
    def orphans(self) -> list[str]:
        """Indices of the prefix that no alias points at."""
        used = set(self.read) | set(self.write) | set(self.previous)
        return [i for i in self.all if i not in used]

    def role(self, index: str) -> str:
        if index in self.read:
            return "live"
        if index in self.previous:
            return "previous (rollback target)"
        if index in self.write:
            return "being built"
        return "orphan"


def alias_state(es: Elasticsearch | None = None) -> AliasState:
    """Every concrete index of the prefix and the aliases on it, in one request."""
    es = es or client()
    found = es.indices.get_alias(index=index_pattern(), expand_wildcards="all")
    state = AliasState(all=sorted(found))
    names = {read_alias(): state.read, write_alias(): state.write, previous_alias(): state.previous}
    for index, body in sorted(found.items()):
        for alias in body.get("aliases", {}):
            if alias in names:
                names[alias].append(index)
    return state


def auto_create_setting(current: str | None, pattern: str) -> str:
    """``action.auto_create_index`` with index creation forbidden for ``pattern``.

    Patterns are tried in order and the first match wins, so the exclusion goes first;
    everything else keeps its current rule (the default, true, becomes ``+*``; false stays
    false: nothing is created automatically anyway)."""
    value = (current or "true").strip()
    exclusion = f"-{pattern}"
    if value.lower() == "false":
        return "false"
    if value.lower() == "true":
        return f"{exclusion},+*"
    rules = [r.strip() for r in value.split(",") if r.strip()]
    if exclusion in rules:
        return value
    return ",".join([exclusion, *rules])


def protect_prefix(es: Elasticsearch | None = None) -> None:
    """Forbid automatic index creation for this prefix's names (cluster setting)."""
    es = es or client()
    current = es.cluster.get_settings(
        include_defaults=True, filter_path="**.action.auto_create_index"
    )
    value = None
    for scope in ("transient", "persistent", "defaults"):
        value = current.get(scope, {}).get("action", {}).get("auto_create_index")
        if value is not None:
            break
    wanted = auto_create_setting(value, f"{prefix()}*")
    if wanted != value:
        es.cluster.put_settings(persistent={"action.auto_create_index": wanted})
