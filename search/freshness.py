"""The index generation: a counter bumped by every index write, once it is searchable.

Facet-count cache keys include the concrete index behind the read alias and this generation,
so a cached count can never outlive a write that has become visible to searches. Indexing
bumps it *after* its bulk request returned with ``refresh=wait_for``.
"""

from __future__ import annotations

import logging

from django.core.cache import cache

logger = logging.getLogger(__name__)

GENERATION_KEY = "search:generation"


def current_generation() -> int | None:
    """The current generation, or None when Redis is unreachable (then: don't cache)."""
    try:
        value = cache.get(GENERATION_KEY)
        if value is None:
            cache.add(GENERATION_KEY, 1, timeout=None)
            value = cache.get(GENERATION_KEY)
        return int(value) if value is not None else None
    except Exception as exc:
        logger.warning("facet cache: cannot read the index generation (%s)", exc)
        return None


def bump_generation() -> None:
    """Invalidate every cached facet count (called after each visible index write)."""
    try:
        try:
            cache.incr(GENERATION_KEY)
        except ValueError:
            cache.add(GENERATION_KEY, 1, timeout=None)
            cache.incr(GENERATION_KEY)
    except Exception as exc:
        # If Redis is down nothing can be cached either; searches go uncached.
        logger.warning("facet cache: cannot bump the index generation (%s)", exc)
