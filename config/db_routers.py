"""Read replica: anonymous page reads go to the ``replica`` database, everything else to the
primary (``default``).

The replica is optional (``POSTGRES_REPLICA_*``, see ``config/env.py``). Without one, the
middleware removes itself and the router never gives an opinion, so Django behaves as if
neither were installed.

With one, reads go to the replica only inside a *read scope*, which the middleware opens for
an anonymous GET or HEAD request to one of the public read-only views (``REPLICA_VIEWS``).
Everything else reads the primary: the admin and logged-in editors (they must see what they
just saved, and a replica lags behind), sessions and users, anything inside a transaction,
reads after a write in the same request, management commands and Celery tasks (the indexer
re-reads rows right after they were committed, so it must never see an older copy). Writes
always go to the primary.

A replica that cannot be reached does not fail the page: the request reads the primary, a
warning is logged, and this process leaves the replica alone for ``RETRY_SECONDS``. A
database error on the replica in the middle of a page (it went away, or it has not yet
replayed a migration the new code needs) retries the view on the primary; so does a 404,
because the search index (fed from the primary) may already link to a package the replica
has not received yet. The views retried are read-only, so running one twice is harmless.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import MiddlewareNotUsed
from django.db import DEFAULT_DB_ALIAS, Error, connections
from django.db.models import Model
from django.http import Http404, HttpRequest, HttpResponse

from search.stores import Breaker

logger = logging.getLogger(__name__)

PRIMARY = DEFAULT_DB_ALIAS
REPLICA = "replica"

# The public, read-only views whose anonymous GET/HEAD requests may read the replica.
REPLICA_VIEWS = frozenset(
    {
        "portal:search",
        "portal:package",
        "search:search",
        "search:suggest",
        "search:facet-values",
    }
)
# Never read from the replica, even inside a read scope: a login or a session written a
# moment ago must be seen by the next request.
PRIMARY_ONLY_APPS = frozenset({"auth", "sessions", "admin"})
# After the replica failed, this process reads the primary for this long before trying again.
RETRY_SECONDS = 30.0

SAFE_METHODS = frozenset({"GET", "HEAD"})


@dataclass
class ReadScope:
    """Where the reads of the current request go."""

    active: bool = True  # may read the replica at all
    reachable: bool | None = None  # the replica answered (None: not tried yet)
    wrote: bool = False  # something was written: read our own writes from the primary
    used_replica: bool = False  # a read was sent to the replica


_scope: ContextVar[ReadScope | None] = ContextVar("replica_read_scope", default=None)
# After a failure this process leaves the replica alone for RETRY_SECONDS.
replica_breaker = Breaker("read replica", RETRY_SECONDS, logger)


def replica_configured() -> bool:
    return REPLICA in connections.settings


@contextmanager
def replica_reads(*, active: bool = True) -> Iterator[ReadScope]:
    """Let the reads in this block go to the replica (when one is configured and reachable)."""
    scope = ReadScope(active=active)
    token = _scope.set(scope)
    try:
        yield scope
    finally:
        _scope.reset(token)


def read_from_replica() -> bool:
    """Whether this request's reads so far went to the replica (a view that finds nothing
    there raises Http404, and the middleware asks the primary again)."""
    scope = _scope.get()
    return scope is not None and scope.active and scope.used_replica


def _replica_reachable() -> bool:
    """Connect to the replica if need be (once per scope); False if it cannot be reached."""
    if replica_breaker.open:
        return False
    replica = connections[REPLICA]
    try:
        # A persistent connection is health-checked once per request (CONN_HEALTH_CHECKS).
        replica.close_if_health_check_failed()
        replica.ensure_connection()
    except Error as exc:
        replica_breaker.trip(exc)
        return False
    return True


class PrimaryReplicaRouter:
    """Sends reads to the replica inside an active read scope; otherwise has no opinion,
    except that nothing is ever written to the replica."""

    def db_for_read(self, model: type[Model], **hints: Any) -> str | None:
        scope = _scope.get()
        if scope is None or not scope.active or not replica_configured():
            return None
        if (
            scope.wrote
            or model._meta.app_label in PRIMARY_ONLY_APPS
            or connections[PRIMARY].in_atomic_block
        ):
            return PRIMARY
        if scope.reachable is None:
            scope.reachable = _replica_reachable()
        if not scope.reachable:
            return PRIMARY
        scope.used_replica = True
        return REPLICA

    def db_for_write(self, model: type[Model], **hints: Any) -> str | None:
        scope = _scope.get()
        if scope is not None:
            scope.wrote = True
        instance = hints.get("instance")
        if instance is not None and instance._state.db == REPLICA:
            return PRIMARY  # an object read from the replica is saved to the primary
        return None

    def allow_relation(self, obj1: Model, obj2: Model, **hints: Any) -> bool | None:
        # The replica is a copy of the primary: objects from either may be related.
        if {obj1._state.db, obj2._state.db} <= {PRIMARY, REPLICA}:
            return True
        return None

    def allow_migrate(
        self, db: str, app_label: str, model_name: str | None = None, **hints: Any
    ) -> bool | None:
        # A replica gets its schema by replication from the primary, never by `migrate`.
        return False if db == REPLICA else None


class ReplicaReadsMiddleware:
    """Opens a read scope for anonymous GET/HEAD requests to the public read-only views.

    Goes last in ``MIDDLEWARE`` (after authentication); removes itself when no replica is
    configured.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        if not replica_configured():
            raise MiddlewareNotUsed("no read replica configured")
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        # Inactive until process_view has seen which view answers the request.
        with replica_reads(active=False):
            return self.get_response(request)

    def process_view(
        self,
        request: HttpRequest,
        view_func: Callable[..., HttpResponse],
        view_args: tuple[Any, ...],
        view_kwargs: dict[str, Any],
    ) -> None:
        scope = _scope.get()
        if (
            scope is not None
            and request.method in SAFE_METHODS
            and request.resolver_match is not None
            and request.resolver_match.view_name in REPLICA_VIEWS
            # Evaluated before the scope opens, so the session and user are read from the
            # primary; logged-in editors read their own writes there.
            and not request.user.is_authenticated
        ):
            scope.active = True

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        scope = _scope.get()
        if scope is None or not scope.used_replica:
            return None
        if isinstance(exception, Error) and connections[REPLICA].errors_occurred:
            connections[REPLICA].close()
            replica_breaker.trip(exception)
        elif not isinstance(exception, Http404):
            return None
        # Answer from the primary instead (these views only read).
        scope.active = False
        match = request.resolver_match
        return match.func(request, *match.args, **match.kwargs)
