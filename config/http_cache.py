"""HTTP validators and ``Cache-Control`` for anonymous reads, so a shared cache (Varnish, a
CDN, the balancer) can keep an answer briefly and revalidate it cheaply.

A view decorated with :func:`cacheable` gives anonymous ``GET``/``HEAD`` requests an
``ETag`` worked out *before* the view runs, from what determines the answer (for a search:
the live index, its generation and the normalised request, ``search.service.validator``;
for a package page: the row version). A request whose ``If-None-Match`` matches gets a 304
without the view running (no search, no rendering). Successful answers say
``Cache-Control: public, max-age=0, s-maxage=SHARED_MAX_AGE``: browsers revalidate every
time (a 304 costs one Redis round trip), shared caches may answer for a few seconds.

The validator is weak (``W/"..."``) and every such answer, a 304 included, says ``Vary:
Cookie, Accept-Encoding``: GZipMiddleware weakened the compressed 200's ETag and added
``Accept-Encoding`` to it, but not to the empty 304 that confirmed it, so a shared cache
freshening its compressed copy from the 304 lost the ``Vary`` (RFC 9110, 15.4.5). Weak is
also what the validator means: equal answers differ in bytes (a search's ``took_ms``).

Logged-in users (editors, who read their own writes) never get a shared-cacheable answer:
``private, no-cache`` and no validator. Neither does an answer without a validator (an index
write in progress, Redis unreachable) nor an error, which carries no validator either.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from functools import wraps
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.utils.cache import patch_cache_control, patch_vary_headers
from django.views.decorators.http import condition

SHARED_MAX_AGE = 10  # seconds a shared cache may answer without asking
SAFE = ("GET", "HEAD")

Validator = Callable[..., str | None]


def cacheable(
    validator: Validator,
    scope: Callable[[], AbstractContextManager[Any]] = nullcontext,
) -> Callable[[Callable[..., HttpResponse]], Any]:
    """Conditional GET with ``validator(request, *args, **kwargs)`` (an ETag value without
    quotes, or None for no validator) for anonymous reads; see the module docstring.
    ``scope()`` is entered around the validator and the view (state they may share)."""

    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        def etag(request: HttpRequest, *args: Any, **kwargs: Any) -> str | None:
            if request.user.is_authenticated:
                return None
            value = validator(request, *args, **kwargs)
            return None if value is None else f'W/"{value}"'

        conditional = condition(etag_func=etag)(view)

        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if request.method not in SAFE:
                return view(request, *args, **kwargs)
            with scope():
                response = conditional(request, *args, **kwargs)
            patch_vary_headers(response, ["Cookie", "Accept-Encoding"])
            shared = (
                not request.user.is_authenticated
                and response.status_code in (200, 304)
                and response.has_header("ETag")
            )
            if shared:
                patch_cache_control(response, public=True, max_age=0, s_maxage=SHARED_MAX_AGE)
            else:
                patch_cache_control(response, private=True, no_cache=True)
            if response.status_code not in (200, 304):
                # The validator is the answer's: an error (a 400, a 429) is another
                # response, and must not be confirmed as current by a later 304.
                del response["ETag"]
            return response

        return wrapper

    return decorate
