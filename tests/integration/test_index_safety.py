"""Index safety: rebuilds, rollbacks and the index lifecycle never lose the live index or
serve an index that differs from the database (issue #10, items 1 and 2).

Faults the real services cannot be made to produce on demand (a request that times out on
the client after Elasticsearch applied it) are injected by wrapping the real client's
method: the request really runs, then the caller sees a timeout. Everything else (signals,
concurrent writes, a second rebuild) is real.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from elastic_transport import ConnectionTimeout
from elasticsearch import Elasticsearch, helpers

from indexing import rebuild, writer
from portal.models import Package
from search import service
from search.indices import client as es
from search.indices import index_pattern, indices_behind, read_alias, write_alias
from tests.conftest import ROOT, drop_test_indices, wait_for
from tests.helpers import make_package, make_packages
from tests.integration.support import (
    assert_index_matches_database,
    drain_outbox,
    wait_until_indexed,
)

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

# The class of every client's ``.indices`` (patched below), reached through the public API:
# elasticsearch-py exports it only from a private module or a deprecated one. Making the
# client connects nowhere.
IndicesClient = type(Elasticsearch("http://127.0.0.1:9").indices)


def project_indices() -> list[str]:
    return sorted(es().indices.get(index=index_pattern(), expand_wildcards="all"))


def live_count() -> int:
    es().indices.refresh(index=read_alias())
    return es().count(index=read_alias())["count"]


@pytest.fixture
def loaded(search_index):
    ids = make_packages(300, prefix="safe")
    writer.process_outbox()
    return ids


def hold_bulk_load(monkeypatch) -> tuple[threading.Event, threading.Event]:
    """Make a rebuild's bulk load wait: the first event is set when it starts loading, and
    it goes on when the second one is set."""
    real_bulk = helpers.streaming_bulk
    loading, release = threading.Event(), threading.Event()

    def slow_bulk(*args, **kwargs):
        loading.set()
        release.wait(30)
        yield from real_bulk(*args, **kwargs)

    monkeypatch.setattr(helpers, "streaming_bulk", slow_bulk)
    return loading, release


@contextlib.contextmanager
def rebuild_held_while_loading(monkeypatch) -> Iterator[None]:
    """A rebuild in another thread, held at the start of its bulk load while the block
    runs; then it finishes, and an error it raised fails the test."""
    loading, release = hold_bulk_load(monkeypatch)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            rebuild.rebuild(batch_size=100)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()  # this thread's own: the test database is dropped after

    builder = threading.Thread(target=run)
    builder.start()
    try:
        assert loading.wait(30)
        yield
    finally:
        release.set()
        builder.join(60)
    assert not errors


def swaps_read_alias(actions) -> bool:
    return any(read_alias() == a.get("add", {}).get("alias") for a in actions or ())


# ------------------------------------------------------------------ 1. after the swap


def test_a_failure_after_the_swap_never_deletes_the_live_index(loaded, monkeypatch):
    real_update, real_refresh = IndicesClient.update_aliases, IndicesClient.refresh
    swapped = threading.Event()

    def update_aliases(self, *args, **kwargs):
        result = real_update(self, *args, **kwargs)
        if swaps_read_alias(kwargs.get("actions")):
            swapped.set()
        return result

    def refresh(self, *args, **kwargs):
        if swapped.is_set():
            raise ConnectionTimeout("simulated: the refresh after the swap timed out")
        return real_refresh(self, *args, **kwargs)

    monkeypatch.setattr(IndicesClient, "update_aliases", update_aliases)
    monkeypatch.setattr(IndicesClient, "refresh", refresh)
    with contextlib.suppress(Exception):  # whatever it reports, the live index must survive
        rebuild.rebuild(batch_size=100)
    monkeypatch.undo()
    assert swapped.is_set()
    live = indices_behind(read_alias())
    assert len(live) == 1 and live[0] in project_indices()
    assert live_count() == len(loaded)
    assert service.search("bulk package").total == len(loaded)


def test_an_alias_swap_that_times_out_after_being_applied_keeps_the_new_index(loaded, monkeypatch):
    real_update = IndicesClient.update_aliases

    def update_aliases(self, *args, **kwargs):
        result = real_update(self, *args, **kwargs)
        if swaps_read_alias(kwargs.get("actions")):
            raise ConnectionTimeout("simulated: applied by the cluster, timed out on the client")
        return result

    monkeypatch.setattr(IndicesClient, "update_aliases", update_aliases)
    with contextlib.suppress(Exception):
        rebuild.rebuild(batch_size=100)
    monkeypatch.undo()
    live = indices_behind(read_alias())
    assert len(live) == 1 and live[0] in project_indices()
    assert live_count() == len(loaded)


@pytest.mark.parametrize(
    "failure",
    [
        ConnectionTimeout("simulated: timed out on the client, still queued"),
        KeyboardInterrupt(),  # the operator gave up waiting for the answer
    ],
)
def test_an_alias_swap_the_cluster_applies_late_never_loses_the_read_alias(
    loaded, monkeypatch, failure
):
    """The call times out on the client while the change still waits in the master's queue;
    the read-back runs before it is applied, so the new index looks "not live". Deleting it
    then (as the failure path did) deletes the read alias with it once the queued change is
    applied: the outcome of a call that got no answer is unknown, so the index is kept."""
    real_update = IndicesClient.update_aliases
    queued: list = []

    def update_aliases(self, *args, **kwargs):
        if swaps_read_alias(kwargs.get("actions")):
            queued.append((self, args, kwargs))  # sent; applied by the master later
            raise failure
        return real_update(self, *args, **kwargs)

    def apply_queued() -> None:
        while queued:
            it, args, kwargs = queued.pop()
            real_update(it, *args, **kwargs)

    # Whatever the failure path sends next reaches the cluster after the queued change.
    for method in ("delete_alias", "delete"):
        real = getattr(IndicesClient, method)

        def after_queue(self, *args, _real=real, **kwargs):
            apply_queued()
            return _real(self, *args, **kwargs)

        monkeypatch.setattr(IndicesClient, method, after_queue)
    monkeypatch.setattr(IndicesClient, "update_aliases", update_aliases)
    with pytest.raises(rebuild.RebuildError) as failed:
        rebuild.rebuild(batch_size=100)
    monkeypatch.undo()
    assert "kept" in str(failed.value) and "search_status" in str(failed.value)
    apply_queued()  # the master gets to it in the end
    live = indices_behind(read_alias())
    assert len(live) == 1 and live[0] in project_indices()
    assert live_count() == len(loaded)


def test_a_failed_cleanup_after_the_swap_is_a_warning_not_a_failed_rebuild(loaded, monkeypatch):
    """The new index is live; deleting what the swap left behind (the former rollback
    target) fails. That ended `reindex` with a traceback, and the rebuild was not recorded."""
    rebuild.rebuild(batch_size=100)  # now there is a rollback target to replace
    real_delete = IndicesClient.delete

    def delete(self, *args, **kwargs):
        raise ConnectionTimeout("simulated: the delete timed out")

    monkeypatch.setattr(IndicesClient, "delete", delete)
    try:
        result = rebuild.rebuild(batch_size=100)
    finally:
        monkeypatch.setattr(IndicesClient, "delete", real_delete)
    assert indices_behind(read_alias()) == [result.index]
    assert live_count() == len(loaded)
    assert any("could not be removed" in w and "--remove-orphans" in w for w in result.warnings)


def test_a_go_live_time_that_cannot_be_recorded_is_a_warning(loaded, monkeypatch):
    # The rollback retention counts from it: a failure to record it was silent.
    def put_mapping(self, *args, **kwargs):
        raise ConnectionTimeout("simulated: put_mapping timed out")

    monkeypatch.setattr(IndicesClient, "put_mapping", put_mapping)
    result = rebuild.rebuild(batch_size=100)
    monkeypatch.undo()
    assert indices_behind(read_alias()) == [result.index]
    assert any("went live could not be recorded" in w for w in result.warnings)


def test_a_rebuild_that_fails_and_cannot_remove_its_index_says_so(loaded, monkeypatch):
    """A failure before the swap removes the new index; when that delete fails too, the
    message said "was removed" all the same."""
    from indexing import bulkload

    def load(*args, **kwargs):
        raise ConnectionTimeout("simulated: the bulk load timed out")

    monkeypatch.setattr(bulkload, "load", load)
    monkeypatch.setattr(
        IndicesClient, "delete", lambda self, *a, **k: (_ for _ in ()).throw(ConnectionTimeout("x"))
    )
    try:
        with pytest.raises(rebuild.RebuildError) as failed:
            rebuild.rebuild(batch_size=100)
    finally:
        monkeypatch.undo()
    message = str(failed.value)
    assert "was removed" not in message
    assert "could not be removed" in message and "--remove-orphans" in message
    assert live_count() == len(loaded)


# ------------------------------------------------------------------ 2. rollback


@pytest.mark.django_db(transaction=True)
def test_a_rollback_brings_back_an_index_equal_to_the_database(celery_worker, search_index):
    ids = make_packages(200, prefix="roll")
    wait_until_indexed()
    call_command("reindex", verbosity=0)
    # Edits, a delete and a new package after the swap.
    Package.objects.filter(pk__in=ids[:20]).update(summary="edited after the rebuild")
    Package.objects.filter(pk=ids[-1]).delete()
    make_package("roll-added-later", summary="added after the rebuild")
    wait_until_indexed()
    call_command("reindex", "--rollback", verbosity=0)
    assert_index_matches_database()


def test_the_rollback_target_is_the_recorded_previous_index(loaded):
    first = indices_behind(read_alias())[0]
    out = StringIO()
    call_command("reindex", verbosity=0, stdout=out)
    # An unrelated index with a newer name (a crashed rebuild's leftover, say).
    stray = f"{settings.SEARCH_INDEX_PREFIX}-packages-29991231000000000000"
    es().indices.create(index=stray)
    call_command("reindex", "--rollback", verbosity=0)
    assert indices_behind(read_alias()) == [first]
    assert live_count() == len(loaded)


def test_a_rollback_to_an_index_of_another_schema_says_what_that_means(loaded):
    # The rollback target was built before a schema change: with this code live on it,
    # searches that use a new field (the size facet's bucket, say) quietly miss it.
    from search import indices

    first = indices_behind(read_alias())[0]
    call_command("reindex", verbosity=0)
    es().indices.put_mapping(index=first, meta={"schema": "an older one"})
    err = StringIO()
    call_command("reindex", "--rollback", verbosity=0, stderr=err)
    assert indices_behind(read_alias()) == [first]
    assert "another schema" in err.getvalue() and "manage.py reindex" in err.getvalue()
    assert indices.index_meta(first)["schema"] != indices.schema_digest()


def test_a_rebuild_goes_live_without_a_document_it_refuses_and_says_which(loaded, monkeypatch):
    """One document Elasticsearch refuses stopped the whole rebuild (reindex, load_demo).
    It now goes live without it, says which package and why, and records the package in the
    outbox, where the writer sets it aside with its reason (the status page shows it)."""
    from indexing import documents

    refused = loaded[7]
    real_batches = documents.batches

    def batches(batch_size):
        for rows in real_batches(batch_size):
            for row in rows:
                if row.id == refused:
                    row.source["installed_size_kb"] = "not a number"
            yield rows

    monkeypatch.setattr(documents, "batches", batches)
    result = rebuild.rebuild(batch_size=100)
    monkeypatch.undo()
    assert indices_behind(read_alias()) == [result.index]
    assert live_count() == len(loaded) - 1
    assert any(f"package {refused}" in w and "installed_size_kb" in w for w in result.warnings)
    # The outbox has it again: written now (the cause was in this test's builder), it is back.
    assert writer.process_outbox() == (1, False)
    assert live_count() == len(loaded)


@pytest.mark.django_db(transaction=True)
def test_a_rebuild_defers_merges_while_loading_and_goes_live_with_the_usual_policy(
    loaded, monkeypatch
):
    # While loading, a new index merges nothing (its merges rebuilt the vectors' graphs
    # again and again); live, it merges as every index does, or later edits would pile up
    # segments.
    with rebuild_held_while_loading(monkeypatch):
        name = next(
            i for i in indices_behind(write_alias()) if i not in indices_behind(read_alias())
        )
        during = es().indices.get_settings(index=name, flat_settings=True)[name]["settings"]
    live = indices_behind(read_alias())[0]
    assert live == name
    after = es().indices.get_settings(index=live, flat_settings=True)[live]["settings"]
    for key in ("index.merge.policy.segments_per_tier", "index.merge.policy.max_merge_at_once"):
        assert int(during[key]) >= 100
        assert key not in after


def test_reindex_reports_truthfully_what_it_kept_and_removed(loaded):
    call_command("reindex", verbosity=0)
    previous = indices_behind(read_alias())[0]
    stray = f"{settings.SEARCH_INDEX_PREFIX}-packages-29991231000000000000"
    es().indices.create(index=stray)
    out = StringIO()
    call_command("reindex", verbosity=0, stdout=out)
    text = out.getvalue()
    kept, removed = text.split("Removed:", 1) if "Removed:" in text else (text, "")
    assert previous in kept and previous not in removed, text
    assert previous in project_indices()


@pytest.mark.django_db(transaction=True)
def test_a_rollback_waits_for_a_running_rebuild(loaded, monkeypatch):
    with rebuild_held_while_loading(monkeypatch), pytest.raises(Exception, match="in progress"):
        rebuild.rollback()


def _default_interrupt() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_an_interrupted_rebuild_leaves_nothing_behind(search_index, signum):
    # Enough documents, in small enough batches, that the load is still running when the
    # signal comes (2,000 in batches of 4: about 500 bulk requests).
    make_packages(2000, prefix="intr")
    wait_for(lambda: writer.process_outbox(max_batches=20) == (0, False), timeout=120)
    live = indices_behind(read_alias())
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.test_settings",
        "POSTGRES_DB": settings.DATABASES["default"]["NAME"],
        "SEARCH_INDEX_PREFIX": settings.SEARCH_INDEX_PREFIX,
    }
    process = subprocess.Popen(
        [sys.executable, "manage.py", "reindex", "--batch-size", "4", "--no-merge"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # As from a terminal: a suite started in the background by a non-interactive shell
        # inherits an ignored SIGINT, which Python then keeps ignoring (Ctrl-C never arrives).
        preexec_fn=_default_interrupt,
    )
    # Wait until the new index is loading (behind the write alias), then stop the command.
    wait_for(lambda: len(indices_behind(write_alias())) > len(live), timeout=60)
    process.send_signal(signum)
    process.communicate(timeout=120)
    assert indices_behind(read_alias()) == live
    assert indices_behind(write_alias()) == live
    assert project_indices() == live
    # The lock is free: another rebuild can start at once.
    call_command("reindex", verbosity=0, batch_size=2000)


def test_a_write_to_a_deleted_index_does_not_recreate_it(loaded):
    gone = f"{settings.SEARCH_INDEX_PREFIX}-packages-20000101000000000000"
    action = {
        "_op_type": "index",
        "_index": gone,
        "_id": 1,
        "version": 1,
        "version_type": "external_gte",
        "_source": {"name": "late"},
    }
    _, errors = helpers.bulk(es(), [action], raise_on_error=False)
    assert errors
    assert gone not in project_indices()


@pytest.mark.django_db(transaction=True)
def test_indexing_during_a_first_rebuild_creates_no_second_index(search_index, monkeypatch):
    ids = make_packages(500, prefix="first")
    drain_outbox(timeout=60)
    drop_test_indices()  # no index at all yet: the first rebuild will create it
    with rebuild_held_while_loading(monkeypatch):
        Package.objects.filter(pk=ids[0]).update(summary="edited during the first rebuild")
        # As the worker would, while the rebuild loads: having no index to write to yet is
        # fine; creating a second one is not.
        with contextlib.suppress(Exception):
            writer.process_outbox()
    monkeypatch.undo()
    assert len(project_indices()) == 1
    drain_outbox(timeout=30)
    assert_index_matches_database()


@pytest.mark.django_db(transaction=True)
def test_changes_wait_for_a_first_rebuild_instead_of_being_written_twice(search_index, monkeypatch):
    """With no live index yet, a first rebuild reads every row that exists: writing the
    outbox's changes into the index it builds meanwhile writes each package twice, and
    nothing is served from it before the swap anyway. `make run` on a fresh machine did
    that: the worker wrote the import's 199,000 changes (191,000 documents) while the
    rebuild loaded the 63,436 packages, and the first index took 341 s instead of about 60.
    The changes now wait in the outbox until the index is live."""
    ids = make_packages(200, prefix="wait-first")
    drain_outbox(timeout=60)
    drop_test_indices()
    with rebuild_held_while_loading(monkeypatch):
        Package.objects.filter(pk__in=ids[:50]).update(summary="edited before the swap")
        (building,) = project_indices()
        with pytest.raises(rebuild.IndexNotReady, match="first index is being built"):
            writer.process_outbox()
        es().indices.refresh(index=building)
        assert es().count(index=building)["count"] == 0
    monkeypatch.undo()
    assert len(project_indices()) == 1
    # The changes waited; written now, to the live index.
    drain_outbox(timeout=30)
    assert_index_matches_database()


def test_orphan_indices_are_listed_and_removed_by_a_command(loaded):
    stray = f"{settings.SEARCH_INDEX_PREFIX}-packages-29991231000000000000"
    es().indices.create(index=stray)
    out = StringIO()
    call_command("search_status", stdout=out)
    assert "orphan" in out.getvalue() and stray in out.getvalue()
    call_command("search_status", "--remove-orphans", stdout=StringIO())
    assert stray not in project_indices()
    assert len(indices_behind(read_alias())) == 1
    assert live_count() == len(loaded)


# ------------------------------------------------------------------ counts


def test_search_status_fails_on_a_count_mismatch_and_says_what_to_run(loaded, client):
    # Documents lost behind the project's back (deleted by hand, say).
    helpers.bulk(
        es(),
        [{"_op_type": "delete", "_index": read_alias(), "_id": pk} for pk in loaded[:100]],
        refresh=True,
    )
    with pytest.raises(CommandError, match=r"reindex|--repair"):
        call_command("search_status", stdout=StringIO())
    ready = client.get("/readyz").json()
    assert ready["checks"]["index"]["ok"] is False
    assert "200 documents for 300 rows" in ready["checks"]["index"]["detail"]


def test_a_rollback_dry_run_changes_nothing_and_says_what_it_would_do(loaded):
    # --dry-run was ignored by --rollback: it rolled back for real.
    rebuild.rebuild(batch_size=100)
    before = rebuild.indices.alias_state()
    out = StringIO()
    call_command("reindex", "--rollback", "--dry-run", stdout=out)
    after = rebuild.indices.alias_state()
    assert (after.live, after.previous) == (before.live, before.previous)
    assert f"would make {before.previous[0]} live again" in out.getvalue()


@pytest.mark.parametrize("command", [["reindex"], ["reindex", "--rollback"]])
def test_an_unreachable_engine_or_lease_store_is_a_clear_error(loaded, monkeypatch, command):
    # A traceback (ConnectionError) instead of saying what failed and what to do.
    import redis as redis_py

    from indexing import lease

    def down(*args, **kwargs):
        raise redis_py.ConnectionError("Error 111 connecting to 127.0.0.1:1")

    monkeypatch.setattr(lease.Lease, "__enter__", down)
    with pytest.raises(CommandError, match="Redis") as failed:
        call_command(*command, stdout=StringIO())
    assert "unchanged" in str(failed.value) and "config.services status" in str(failed.value)


def test_search_status_without_a_live_index_says_to_rebuild(search_index, client):
    # It said to run --verify --repair, which then failed with "not reachable or missing".
    make_package("no-index-yet")
    writer.process_outbox()
    drop_test_indices()
    with pytest.raises(CommandError, match="count mismatch") as failed:
        call_command("search_status", stdout=StringIO())
    assert "no live index; run `manage.py reindex`" in str(failed.value)
    with pytest.raises(CommandError, match="no live index to verify"):
        call_command("search_status", "--verify", stdout=StringIO())
    with pytest.raises(CommandError, match="--sample must be 0 or more"):
        call_command("search_status", "--verify", "--sample", "-1", stdout=StringIO())


def test_the_last_rebuild_shown_is_this_deployments(settings):
    """Deployments (or benchmarks) sharing one Redis and key prefix, with their own index
    prefix, showed each other's last rebuild on the status page."""
    from types import SimpleNamespace

    from indexing import status

    ours = SimpleNamespace(
        index=f"{settings.SEARCH_INDEX_PREFIX}-packages-1", documents=3, seconds=1.0
    )
    status.record_rebuild(ours)
    prefix = settings.SEARCH_INDEX_PREFIX
    settings.SEARCH_INDEX_PREFIX = "elsewhere"
    status.record_rebuild(SimpleNamespace(index="elsewhere-packages-1", documents=9, seconds=2.0))
    assert status.last_rebuild()["index"] == "elsewhere-packages-1"
    settings.SEARCH_INDEX_PREFIX = prefix
    assert status.last_rebuild()["index"] == ours.index


def test_a_rollback_target_of_another_schema_is_flagged_before_anyone_rolls_back(loaded, client):
    """The status page and ``search_status`` listed such a target only as "previous": an
    operator learnt what a rollback to it meant after the switch."""
    from django.contrib.auth import get_user_model

    from indexing import status

    first = indices_behind(read_alias())[0]
    call_command("reindex", verbosity=0)
    assert status.collect()["rollback_schema_current"] is True
    es().indices.put_mapping(index=first, meta={"schema": "an older one"})
    assert status.collect()["rollback_schema_current"] is False
    out = StringIO()
    call_command("search_status", stdout=out)
    assert "rollback target" in out.getvalue() and "another schema" in out.getvalue()
    user = get_user_model().objects.create_superuser("op", "op@example.org", "pw")
    client.force_login(user)
    page = client.get("/admin/indexing/outboxentry/status/").content.decode()
    assert f"{first} was built with another schema" in page
