"""A per-client rate limit for the JSON API (fixed windows counted in Redis, one round trip).

``SEARCH_API_RATE_LIMIT`` is "requests/seconds" (default ``300/60``: 300 requests a minute per
client address); ``0`` switches it off. If Redis is unavailable the limit is not enforced
(searching matters more than limiting).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, JsonResponse

from config import redis_cache


def _limit() -> tuple[int, int]:
    raw = str(getattr(settings, "SEARCH_API_RATE_LIMIT", "300/60"))
    if raw in {"", "0"}:
        return 0, 1
    count, _, seconds = raw.partition("/")
    return int(count), max(1, int(seconds or 60))


def client_address(request: HttpRequest) -> str:
    return request.META.get("REMOTE_ADDR", "unknown")


def rate_limited(view: Callable[..., Any]) -> Callable[..., Any]:
    """Answer 429 with Retry-After once a client exceeds the limit."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        allowed, seconds = _limit()
        if allowed:
            window = int(time.time() // seconds)
            key = cache.make_and_validate_key(f"ratelimit:{client_address(request)}:{window}")
            try:
                # One round trip: count, and (re)arm the expiry of this window's counter.
                pipe = redis_cache.write_client().pipeline(transaction=False)
                used, _ = pipe.incr(key).expire(key, seconds + 1).execute()
            except Exception:
                used = 0
            if used > allowed:
                retry = seconds - int(time.time()) % seconds
                response = JsonResponse(
                    {
                        "error": {
                            "message": f"Too many requests: at most {allowed} every "
                            f"{seconds} s. Try again in {retry} s."
                        }
                    },
                    status=429,
                )
                response["Retry-After"] = str(retry)
                return response
        return view(request, *args, **kwargs)

    return wrapper
