"""Search-side helpers for editors: a document's state, and read-your-writes.

After an editor saves a package, their next search waits (briefly) until that package's new
version is visible to searches, instead of forcing an index refresh for everyone.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from elasticsearch import ApiError, NotFoundError, TransportError

from search.indices import client, read_alias

# Session key: {package id: row version} an editor saved and has not yet seen in search.
PENDING_SESSION_KEY = "search_pending_writes"


@dataclass
class DocumentState:
    exists: bool
    version: int | None
    indexed_at: str | None
    source: dict[str, Any] | None
    error: str | None = None


def document_state(pk: int) -> DocumentState:
    """The package's document as the index holds it now (real-time GET)."""
    try:
        doc = client().options(request_timeout=2).get(index=read_alias(), id=pk)
    except NotFoundError:
        return DocumentState(False, None, None, None)
    except (ApiError, TransportError) as exc:
        return DocumentState(False, None, None, None, error=str(exc)[:200])
    source = doc.get("_source", {})
    return DocumentState(True, doc.get("_version"), source.get("indexed_at"), source)


def visible(pairs: dict[int, int]) -> bool:
    """True when every package id is searchable with at least the given version."""
    if not pairs:
        return True
    should = [
        {
            "bool": {
                "filter": [
                    {"ids": {"values": [str(pk)]}},
                    {"range": {"row_version": {"gte": version}}},
                ]
            }
        }
        for pk, version in pairs.items()
    ]
    body = {"query": {"bool": {"should": should, "minimum_should_match": 1}}}
    found = client().options(request_timeout=2).count(index=read_alias(), body=body)
    return found["count"] >= len(pairs)


def wait_until_visible(pairs: dict[int, int], timeout: float | None = None) -> bool:
    """Wait until ``visible(pairs)`` (at most ``timeout`` seconds, by default the setting
    ``SEARCH_EDITOR_WAIT_SECONDS``); return whether it is."""
    if timeout is None:
        timeout = settings.SEARCH_EDITOR_WAIT_SECONDS
    deadline = time.monotonic() + timeout
    while True:
        try:
            if visible(pairs):
                return True
        except (ApiError, TransportError):
            return False
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
