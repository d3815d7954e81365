"""A per-client rate limit on every path that runs a search: the JSON API and the search
page (including the ``partial=1`` fragment the page's script fetches).

``SEARCH_API_RATE_LIMIT`` is "requests/seconds" (default ``300/60``: 300 requests a minute per
client); ``0`` switches it off. Windows are fixed and counted in the cache Redis, one
pipelined round trip per request (count, and arm the window's expiry). If Redis is
unavailable the limit is not enforced: searching matters more than limiting.

**Who is a client.** ``REMOTE_ADDR``, unless the request came through a proxy listed in
``SEARCH_TRUSTED_PROXIES`` (networks, e.g. ``["10.0.0.0/8", "127.0.0.1/32"]``): then the
client is the right-most address in ``X-Forwarded-For`` that is not itself a trusted proxy
(everything to its left could have been written by the client). Behind a TLS proxy without
that setting, every visitor would share the proxy's bucket. An IPv6 client is counted by
its /64 network: one subscriber usually holds a whole /64 and can pick any address in it.

**Headers.** Every API answer says where its client stands, in the IETF draft's fields
(draft-ietf-httpapi-ratelimit-headers): ``RateLimit-Limit`` (requests per window),
``RateLimit-Remaining`` and ``RateLimit-Reset`` (seconds until the window ends); a 429 adds
``Retry-After``.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any

import redis
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from search import stores

IPV6_PREFIX = 64


def _limit() -> tuple[int, int]:
    raw = str(getattr(settings, "SEARCH_API_RATE_LIMIT", "300/60"))
    if raw in {"", "0"}:
        return 0, 1
    count, _, seconds = raw.partition("/")
    return int(count), max(1, int(seconds or 60))


def _trusted() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [
        ipaddress.ip_network(net, strict=False)
        for net in getattr(settings, "SEARCH_TRUSTED_PROXIES", ())
    ]


def _parse(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(address.strip())
    except ValueError:
        return None


def _is_trusted(address: Any, trusted: list) -> bool:
    return address is not None and any(address in net for net in trusted)


def client_address(request: Any) -> str:
    """The client's address as the limit counts it (see the module docstring)."""
    remote = request.META.get("REMOTE_ADDR", "")
    address = _parse(remote)
    trusted = _trusted()
    if _is_trusted(address, trusted):
        hops = request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
        for hop in reversed(hops):
            candidate = _parse(hop)
            if candidate is None:
                break  # a malformed hop: trust nothing to its left
            address = candidate
            if not _is_trusted(candidate, trusted):
                break
    if address is None:
        return remote or "unknown"
    if address.version == 6:
        mapped = address.ipv4_mapped
        if mapped is not None:
            return str(mapped)
        return str(ipaddress.ip_network(f"{address}/{IPV6_PREFIX}", strict=False))
    return str(address)


@dataclass(frozen=True)
class Quota:
    """A client's standing in the current window."""

    limit: int
    used: int
    reset: int  # seconds until the window ends

    @property
    def over(self) -> bool:
        return self.used > self.limit

    def headers(self) -> dict[str, str]:
        return {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(max(0, self.limit - self.used)),
            "RateLimit-Reset": str(self.reset),
        }


def count(request: HttpRequest) -> Quota | None:
    """Count this request; the client's quota, or None when no limit applies (switched
    off, or Redis unavailable)."""
    allowed, seconds = _limit()
    if not allowed:
        return None
    now = time.time()
    window = int(now // seconds)
    key = stores.cache().make_and_validate_key(f"ratelimit:{client_address(request)}:{window}")
    try:
        pipe = stores.cache_client().pipeline(transaction=False)
        used, _ = pipe.incr(key).expire(key, seconds + 1).execute()
    except redis.RedisError:
        return None
    return Quota(allowed, int(used), seconds - int(now) % seconds)


def retry_after(request: HttpRequest) -> int | None:
    """Count this request; the seconds until the client may search again if it is over the
    limit, else None."""
    quota = count(request)
    return quota.reset if quota is not None and quota.over else None


def message(request: HttpRequest, retry: int) -> str:
    allowed, seconds = _limit()
    return f"Too many requests: at most {allowed} every {seconds} s. Try again in {retry} s."


PER_CLIENT = ("RateLimit-Remaining", "RateLimit-Reset")


def _keep_quota_private(response: HttpResponse) -> None:
    """An answer a shared cache may keep (``public``: ``config.http_cache``) must not have
    it replay one client's quota to others: ``private="<fields>"`` (RFC 9111, 5.2.2.7)
    tells a shared cache not to store those fields, and leaves the answer shareable.
    (Django's ``patch_cache_control`` drops ``public`` when given ``private``.)"""
    directives = [d.strip() for d in response.get("Cache-Control", "").split(",") if d.strip()]
    if "public" in directives:
        directives.append(f'private="{", ".join(PER_CLIENT)}"')
        response["Cache-Control"] = ", ".join(directives)


def rate_limited(view: Callable[..., Any]) -> Callable[..., Any]:
    """For the JSON API: the ``RateLimit-*`` headers on every answer; 429 with
    ``Retry-After`` once a client exceeds the limit."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        quota = count(request)
        if quota is not None and quota.over:
            text = message(request, quota.reset)
            response = JsonResponse({"error": {"message": text}}, status=429)
            response["Retry-After"] = str(quota.reset)
        else:
            response = view(request, *args, **kwargs)
        if quota is not None:
            for name, value in quota.headers().items():
                response[name] = value
            _keep_quota_private(response)
        return response

    return wrapper
