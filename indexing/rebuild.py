"""The index lifecycle: the first index, full zero-downtime rebuilds, rollback, cleanup.

A rebuild, under the rebuild lease (one at a time; it frees itself within a minute of a
crash, ``indexing.lease``):

1. Remove what a crashed rebuild left behind (an index behind the write alias only).
2. Create a new timestamped index with bulk-load settings (no refresh, no replicas, no
   merges) and add it to the **write alias**, so every incremental write made during the
   rebuild reaches it.
3. Stream every row from PostgreSQL by primary-key ranges and bulk-load it with external
   versions (``indexing.bulkload``), so a concurrent newer write is never overwritten.
4. Restore refresh, replicas and merging, force-merge into one segment, and in one atomic
   ``update_aliases`` call move the **read alias** to the new index and the **previous
   alias** to the index it replaces, which stays behind the write alias: it keeps receiving
   every edit and delete, so ``rollback()`` brings back an index equal to the database. It
   is dropped when the retention period (``SEARCH_ROLLBACK_HOURS``) ends
   (``expire_previous``, from beat) or at the next rebuild.

What cannot go wrong any more, each with its test (``tests/integration/test_index_safety.py``):

* A failure after the alias call was sent (a refresh that times out, or an
  ``update_aliases`` that timed out on the client but was applied by the cluster) never
  deletes the new index: the aliases are read back, and an index the read alias points at
  is live and kept. An alias call that got no answer and is not applied yet may still wait
  in the master's queue (a read-back cannot tell): deleting the index then deleted the read
  alias with it once the queued swap ran, so the index is kept (:class:`SwapUnanswered`).
  Only an index that is certainly not live (the call was refused with a 4xx, or failed
  before it) is removed.
* Ctrl-C or SIGTERM (``manage.py reindex`` turns SIGTERM into :class:`Interrupted`) removes
  the half-built index from the write alias and deletes it, and frees the lease.
* The rollback target is recorded (the previous alias), never guessed from index names, and
  a rollback takes the lease like a rebuild.
* No index is created behind the project's back: automatic index creation is off for the
  prefix (``search.indices.protect_prefix``), and :func:`ensure_index` creates the first
  index only under the lease, and never while a rebuild is building one; while a first
  rebuild builds one, changes wait for it to go live instead of being written twice.
"""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from elasticsearch import ApiError, Elasticsearch, NotFoundError, TransportError

from indexing import bulkload, documents
from indexing.lease import REBUILD_KEY, Lease, LeaseTaken
from indexing.lease import holder as lease_holder
from portal.models import Package
from search import freshness, indices
from search.indices import AliasState

logger = logging.getLogger(__name__)

ENGINE_ERRORS = (ApiError, TransportError)


class RebuildError(RuntimeError):
    """The rebuild failed; the message says why and what to do."""


class SwapUnanswered(RuntimeError):
    """The alias change got no definite answer (a timeout, a lost connection, a 5xx) and is
    not applied yet: it may still wait in the master's queue and be applied later."""


class Interrupted(BaseException):
    """The operator stopped the rebuild (SIGTERM); it cleans up like on Ctrl-C."""


class IndexNotReady(RuntimeError):
    """There is no index to write to yet (a first rebuild is starting); retry shortly."""


@dataclass
class RebuildResult:
    index: str
    previous: str | None  # kept for rollback (behind the write and previous aliases)
    documents: int
    seconds: float
    removed: list[str] = field(default_factory=list)  # indices deleted, with why
    warnings: list[str] = field(default_factory=list)


def _lease(purpose: str) -> Lease:
    return Lease(REBUILD_KEY, purpose)


@contextmanager
def _holding(purpose: str) -> Iterator[Lease]:
    try:
        with _lease(purpose) as lease:
            yield lease
    except LeaseTaken as exc:
        raise RebuildError(
            f"cannot start the {purpose}: {exc}. Wait for it to finish "
            "(`manage.py search_status` shows what runs)."
        ) from None


@contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """Turn SIGTERM into :class:`Interrupted` in the main thread for the block."""

    def handler(signum: int, frame: Any) -> None:
        raise Interrupted("SIGTERM")

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: nothing to install
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def retention_hours() -> float:
    return float(settings.SEARCH_ROLLBACK_HOURS)


# -- the first index ------------------------------------------------------------------


def ensure_index() -> AliasState:
    """Make sure incremental writes have an index to go to, and return the alias state.

    Only when no alias exists at all is a first, empty index created, under the rebuild
    lease; if a rebuild holds the lease it is about to create one, so this raises
    :class:`IndexNotReady` (the caller retries) instead of creating a second index the
    rebuild would never know about.

    While a *first* rebuild loads (its index is behind the write alias, and no index is
    live), this raises :class:`IndexNotReady` too: the changes wait in the outbox and are
    written once the index is live. The rebuild reads every row, so writing them into the
    index it builds wrote each package twice, for nobody: nothing is served before the
    swap. On a fresh machine (`make run`) the worker wrote the import's 199,000 changes
    (191,000 documents) while the rebuild loaded 63,436 packages: 341 s for the first index.
    """
    state = indices.alias_state()
    if state.write and not state.live and lease_holder() == "rebuild":
        raise IndexNotReady(
            "the first index is being built; changes wait in the outbox until it is live"
        )
    if state.write:
        return state
    es = indices.client()
    if state.read:  # an index made before the write alias existed
        es.indices.put_alias(index=state.read[0], name=indices.write_alias())
        return indices.alias_state()
    try:
        with _lease("first index"):
            state = indices.alias_state()
            if state.write:
                return state
            indices.protect_prefix()
            name = indices.new_index_name()
            body = indices.index_body()
            body["aliases"] = {indices.read_alias(): {}, indices.write_alias(): {}}
            es.indices.create(index=name, body=body)
            es.cluster.health(index=name, wait_for_status="yellow", timeout="30s")
            logger.info("created the first index %s", name)
            return indices.alias_state()
    except LeaseTaken as exc:
        raise IndexNotReady(f"no index to write to yet ({exc})") from None


# -- rebuild --------------------------------------------------------------------------


def rebuild(
    *,
    batch_size: int = 1000,
    on_progress: Callable[[int], None] | None = None,
    dry_run: bool = False,
    merge: bool = True,
    on_step: Callable[[str], None] | None = None,
) -> RebuildResult:
    """Build a new index from PostgreSQL and make it live atomically (see the module
    docstring). ``on_step`` is told about each phase after the load."""
    total = Package.objects.count()
    if dry_run:  # refused as the real run would be (the lease held, or Redis down)
        with _holding("rebuild"):
            return RebuildResult(indices.new_index_name(), _live(), total, 0.0)
    step = on_step or (lambda message: None)
    started = time.monotonic()
    es = indices.client()
    with _holding("rebuild") as lease:
        indices.protect_prefix()
        removed = _remove_abandoned(es, indices.alias_state())
        name = indices.new_index_name()
        es.indices.create(index=name, body=indices.index_body(bulk_load=True))
        before: AliasState | None = None
        warnings: list[str] = []
        try:
            es.indices.update_aliases(
                actions=[{"add": {"index": name, "alias": indices.write_alias()}}]
            )
            loaded = bulkload.load(es, name, documents.batches(batch_size), batch_size, on_progress)
            done = loaded.sent
            _make_live_settings(es, name, merge, step)
            if not lease.held():
                raise RebuildError("the rebuild lost its lease (Redis?); nothing was switched")
            step("switching the aliases")
            before = indices.alias_state()
            warnings += _swap(es, name, before)
        except BaseException as exc:
            outcome = _went_live(es, name)
            if outcome is not True:
                # Deleting an index the queued swap then makes live deletes the read alias.
                unknown = outcome is None or isinstance(exc, SwapUnanswered)
                removed_new = _discard(es, name, keep=unknown)
                if isinstance(exc, (*ENGINE_ERRORS, SwapUnanswered)):
                    raise RebuildError(_failure_message(exc, name, outcome, removed_new)) from exc
                raise
            warnings.append(f"the new index went live, but then: {exc}")
        assert before is not None  # it went live, so the swap was attempted
        removed += _after_swap(es, before, warnings)
        if loaded.refused:
            warnings.append(_refused_warning(loaded.refused))
    kept = before.live if retention_hours() > 0 else None
    return RebuildResult(name, kept, done, time.monotonic() - started, removed, warnings)


def _failure_message(
    exc: BaseException, name: str, outcome: bool | None, removed: bool = True
) -> str:
    """What a rebuild that failed before going live tells the operator."""
    if isinstance(exc, SwapUnanswered):
        return (
            f"the alias change got no answer ({exc.__cause__ or exc}) and may still be applied: "
            f"the new index {name} was kept, complete. `manage.py search_status` shows where "
            "the aliases point; run `manage.py reindex` again if it is not live."
        )
    if outcome is None:
        return (
            f"Elasticsearch failed during the rebuild ({exc}); the live index was not changed. "
            f"The aliases could not be read back: the new index {name} was kept; "
            "`manage.py search_status` shows where they point."
        )
    if not removed:
        return (
            f"Elasticsearch failed during the rebuild ({exc}); the live index was not changed. "
            f"The new index {name} could not be removed either: "
            "`manage.py search_status --remove-orphans` removes it once Elasticsearch answers."
        )
    return (
        f"Elasticsearch failed during the rebuild ({exc}); the live index was not changed, "
        f"and the new index {name} was removed."
    )


def _refused_warning(refused: dict[int, str]) -> str:
    """Report the documents the new index refused, and queue their packages: the writer
    sets them aside with their reason (the status page shows them) and tries them again."""
    from indexing.writer import record_changes  # imported here: the writer imports us

    record_changes(refused)
    first, reason = min(refused.items())
    return (
        f"Elasticsearch refused {len(refused)} document(s), which the new index lacks; they "
        f"are queued, and shown on the status page while refused: package {first}: {reason}"
    )


def _live() -> str | None:
    return indices.alias_state().live


def _make_live_settings(es: Elasticsearch, name: str, merge: bool, step: Callable) -> None:
    es.indices.put_settings(index=name, settings=indices.live_settings_update())
    es.indices.refresh(index=name)
    if merge:
        step("merging the new index into one segment")
        es.options(request_timeout=1800).indices.forcemerge(index=name, max_num_segments=1)
    step("waiting for the new index to be allocated")
    es.cluster.health(index=name, wait_for_status="yellow", timeout="60s")


def _swap(es: Elasticsearch, name: str, before: AliasState) -> list[str]:
    """Make ``name`` live; the index it replaces becomes the rollback target (still written
    to); the old rollback target leaves every alias. Returns warnings."""
    read, write, previous = indices.read_alias(), indices.write_alias(), indices.previous_alias()
    actions: list[dict[str, Any]] = [{"add": {"index": name, "alias": read}}]
    actions += [{"remove": {"index": old, "alias": read}} for old in before.read if old != name]
    keep = retention_hours() > 0 and before.live is not None
    for old in before.previous:
        actions.append({"remove": {"index": old, "alias": previous}})
        if old in before.write and old != before.live:
            actions.append({"remove": {"index": old, "alias": write}})
    if keep:
        actions.append({"add": {"index": before.live, "alias": previous}})
    elif before.live is not None:
        actions.append({"remove": {"index": before.live, "alias": write}})
    return _switch(es, actions, becomes_live=name)


def _switch(es: Elasticsearch, actions: list[dict[str, Any]], *, becomes_live: str) -> list[str]:
    """Run one atomic alias change that makes ``becomes_live`` live, inside a registered
    index write (cached counts belong to the old index). A call that fails is checked
    against the aliases themselves: a timeout may hide an applied change, or one the master
    has queued and applies later (:class:`SwapUnanswered`); only a definite refusal (a 4xx)
    means it will never be applied."""
    warnings = []
    with freshness.writing():
        try:
            es.indices.update_aliases(actions=actions)
        except ENGINE_ERRORS as exc:
            if _went_live(es, becomes_live) is not True:
                if isinstance(exc, ApiError) and 400 <= exc.meta.status < 500:
                    raise
                raise SwapUnanswered(str(exc)) from exc
            warnings.append(f"the alias change was applied although the call failed ({exc})")
        except BaseException as exc:  # Ctrl-C, SIGTERM: the call was sent, its fate unknown
            raise SwapUnanswered(f"interrupted while waiting ({type(exc).__name__})") from exc
        try:
            _stamp_live_since(es, becomes_live)
        except ENGINE_ERRORS as exc:
            # Retention then counts from an older time: the rollback target may expire early.
            warnings.append(
                f"when {becomes_live} went live could not be recorded ({exc}): the rollback "
                "target's retention counts from the index's creation instead"
            )
        # Writes sent to it since its last refresh must be searchable before the generation
        # moves on (a failure here is handled by freshness.writing: it keeps the cache off).
        es.indices.refresh(index=becomes_live)
    return warnings


def _went_live(es: Elasticsearch, name: str) -> bool | None:
    """Whether the read alias points at ``name`` (None: the aliases cannot be read)."""
    for attempt in range(3):
        try:
            return name in indices.alias_state(es).read
        except ENGINE_ERRORS:
            time.sleep(1 + attempt)
    return None


def _discard(es: Elasticsearch, name: str, *, keep: bool) -> bool:
    """Take a half-built index out of the write alias and delete it (unless ``keep``: the
    aliases could not be read, so it is left for ``search_status --remove-orphans``).
    Returns whether it is gone."""
    if keep:
        return False
    with suppress(*ENGINE_ERRORS):
        es.indices.delete_alias(index=name, name=indices.write_alias())
    try:
        es.indices.delete(index=name)
    except NotFoundError:
        return True
    except ENGINE_ERRORS as exc:
        logger.warning("could not remove the abandoned index %s: %s", name, exc)
        return False
    return True


def _after_swap(es: Elasticsearch, before: AliasState, warnings: list[str]) -> list[str]:
    """Delete what the swap left behind: the former rollback target (it is in no alias now)
    and orphans. Returns "name (why)" for each index removed; what cannot be removed (the
    new index is live: the rebuild succeeded) is a warning in ``warnings``."""
    removed = []
    try:
        state = indices.alias_state(es)
    except ENGINE_ERRORS as exc:
        warnings.append(f"the indices left behind could not be listed ({exc}); {_LEFT}")
        return removed
    for name in state.orphans:
        why = "the previous rollback target" if name in before.previous else "an orphan"
        if name == before.live:
            why = "the replaced index (rollback retention is 0)"
        try:
            es.indices.delete(index=name)
        except ENGINE_ERRORS as exc:
            warnings.append(f"{name} ({why}) could not be removed ({exc}); {_LEFT}")
            continue
        removed.append(f"{name} ({why})")
    return removed


_LEFT = "`manage.py search_status --remove-orphans` removes what is left"


def _remove_abandoned(es: Elasticsearch, state: AliasState) -> list[str]:
    """Indices a crashed rebuild left behind the write alias; called under the lease, so no
    rebuild is running."""
    removed = []
    for name in state.building:
        _discard(es, name, keep=False)
        removed.append(f"{name} (left behind by an interrupted rebuild)")
    return removed


def _stamp_live_since(es: Elasticsearch, name: str) -> None:
    """Record when ``name`` went live (the rollback retention counts from it), keeping the
    rest of its ``_meta`` (``put_mapping`` replaces it whole)."""
    meta = {**indices.index_meta(name, es), "live_since": datetime.now(UTC).isoformat()}
    es.indices.put_mapping(index=name, meta=meta)


def live_since(es: Elasticsearch, name: str) -> datetime | None:
    raw = indices.index_meta(name, es).get("live_since")
    return datetime.fromisoformat(raw) if raw else None


# -- rollback and housekeeping ----------------------------------------------------------


def rollback() -> str:
    """Make the recorded previous index live again (it received every write since the
    swap); the index it replaces becomes the rollback target, so rolling back again undoes
    the rollback. Returns the index now live."""
    es = indices.client()
    with _holding("rollback"):
        state = indices.alias_state(es)
        target = state.rollback_target
        if target is None:
            hours = retention_hours()
            raise RebuildError(
                "there is no previous index to roll back to: a rebuild keeps the index it "
                f"replaced for {hours:g} hours (SEARCH_ROLLBACK_HOURS)"
                + (", and it has expired or no rebuild has run yet." if hours else ".")
            )
        if target not in state.write:
            raise RebuildError(
                f"the previous index {target} no longer receives writes, so it is out of date; "
                "rebuild instead (`manage.py reindex`)"
            )
        read, previous = indices.read_alias(), indices.previous_alias()
        actions: list[dict[str, Any]] = [
            {"add": {"index": target, "alias": read}},
            {"remove": {"index": target, "alias": previous}},
        ]
        for current in state.read:
            actions += [
                {"remove": {"index": current, "alias": read}},
                {"add": {"index": current, "alias": previous}},
            ]
        try:
            _switch(es, actions, becomes_live=target)
        except SwapUnanswered as exc:
            raise RebuildError(
                f"the alias change got no answer ({exc}) and may still be applied; nothing "
                "was deleted. `manage.py search_status` shows which index is live."
            ) from exc
    return target


def expire_previous(now: datetime | None = None) -> str | None:
    """Drop the rollback target once the retention period is over (beat runs this); returns
    the index removed, if any."""
    es = indices.client()
    state = indices.alias_state(es)
    target, live = state.rollback_target, state.live
    if target is None or live is None:
        return None
    since = live_since(es, live)
    if since is None:
        created = es.indices.get_settings(index=live, name="index.creation_date")
        millis = int(created[live]["settings"]["index"]["creation_date"])
        since = datetime.fromtimestamp(millis / 1000, UTC)
    age_hours = ((now or datetime.now(UTC)) - since).total_seconds() / 3600
    if age_hours < retention_hours():
        return None
    try:
        with _lease("rollback expiry"):
            state = indices.alias_state(es)
            if state.rollback_target != target:
                return None
            es.indices.update_aliases(
                actions=[
                    {"remove": {"index": target, "alias": indices.previous_alias()}},
                    {"remove": {"index": target, "alias": indices.write_alias()}},
                ]
            )
            es.indices.delete(index=target)
    except LeaseTaken:
        return None  # a rebuild or rollback runs; next time
    logger.info("rollback retention over: removed the previous index %s", target)
    return target


def remove_orphans() -> list[str]:
    """Delete indices of the prefix that no alias points at, and indices an interrupted
    rebuild left behind the write alias; returns them."""
    es = indices.client()
    with _holding("orphan removal"):
        state = indices.alias_state(es)
        removed = _remove_abandoned(es, state)
        for name in state.orphans:
            with suppress(NotFoundError):
                es.indices.delete(index=name)
            removed.append(f"{name} (orphan)")
    return removed
