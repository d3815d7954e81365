"""Indexing correctness against the real services: coalescing, ordering, deletes, related
changes, bulk writes, parallel writers, rebuilds during edits, drift repair."""

from __future__ import annotations

import threading
import time
from io import StringIO

import pytest
import redis
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction

import indexing
from indexing import documents, lease, rebuild, verify, writer
from portal.models import Package, Section, Tag
from search import service, stores
from search.indices import client, indices_behind, read_alias, write_alias
from tests.helpers import make_package, make_packages
from tests.integration.support import (
    EditLoad,
    assert_index_matches_database,
    outbox_backlog,
    wait_until_indexed,
)

# Most tests run inside a test transaction and call the writer themselves: their outbox rows
# are invisible to the suite's Celery worker, so nothing races with them. The two tests that
# need the real worker use committed transactions (transaction=True).
pytestmark = [pytest.mark.integration, pytest.mark.django_db]


def doc(pk: int) -> dict:
    return client().get(index=read_alias(), id=pk)


# ----------------------------------------------------------------- without a worker


def test_ten_edits_of_one_package_become_one_write(search_index):
    package = make_package("coalesce-me")
    with transaction.atomic():
        for i in range(10):
            package.summary = f"edit number {i}"
            package.save()
    assert outbox_backlog() == 11  # the insert and ten updates, captured by the triggers
    written, more = writer.process_outbox()
    assert (written, more) == (1, False)
    assert outbox_backlog() == 0
    got = doc(package.pk)
    package.refresh_from_db()
    assert got["_source"]["summary"] == "edit number 9"
    assert got["_version"] == package.row_version


def late_write(index: str, row: documents.Row) -> int:
    """Write a document built earlier (as a late task would); return the version conflicts."""
    return writer._bulk([documents.action(index, row.id, row.version, row.source)]).conflicts


def test_an_older_write_never_overwrites_a_newer_document(search_index):
    package = make_package("ordered", summary="first")
    (old,) = documents.rows_for([package.pk])
    package.summary = "second"
    package.save()
    writer.process_outbox()
    # A late task that read the row before the second edit tries to write it now.
    assert late_write(search_index, old) == 1
    assert doc(package.pk)["_source"]["summary"] == "second"


def test_delete_removes_the_document_and_rejects_older_writes(search_index):
    package = make_package("doomed")
    writer.process_outbox()
    (stale_copy,) = documents.rows_for([package.pk])
    package.delete()
    writer.process_outbox()
    assert not client().exists(index=read_alias(), id=stale_copy.id)
    # The delete's tombstone carries a newer version than any write of the old row.
    assert late_write(search_index, stale_copy) == 1
    assert not client().exists(index=read_alias(), id=stale_copy.id)


def test_a_package_named_only_with_dots_is_indexed(search_index):
    # Its meaning text was empty, its vector NaN, and Elasticsearch refused the document.
    package = make_package("...", summary="", description="")
    assert writer.process_outbox() == (1, False)
    assert doc(package.pk)["_source"]["name"] == "..."


def test_a_document_the_engine_refuses_does_not_hold_up_the_others(search_index, monkeypatch):
    """A document Elasticsearch refuses (a 400 for that document alone) is set aside with
    its reason, shown on the status page, and tried again later; the changes behind it in
    the outbox are written meanwhile. Before, the whole batch was rolled back and claimed
    again, first in line, forever."""
    from indexing import status

    bad = make_package("refused-one")
    good = make_package("written-anyway")
    built = documents.rows_for

    def poisoned(ids):
        rows = built(ids)
        for row in rows:
            if row.id == bad.pk:
                row.source["installed_size_kb"] = "not a number"  # a mapping error: 400
        return rows

    monkeypatch.setattr(documents, "rows_for", poisoned)
    for _ in range(2):  # the retry claims what is left, not the refused row again
        writer.process_outbox(batch_size=1)
    assert client().exists(index=read_alias(), id=good.pk)
    assert not client().exists(index=read_alias(), id=bad.pk)
    stats = writer.outbox_stats()
    assert (stats["backlog"], stats["refused"]) == (1, 1)  # kept, not lost
    errors = " ".join(e["error"] for e in status.recent_errors())
    assert f"package {bad.pk}" in errors and "installed_size_kb" in errors
    # Monitoring that runs search_status sees it: a package that stays unsearchable, which
    # one, and why (the command pointed at the status page's errors and printed neither).
    out = StringIO()
    with pytest.raises(CommandError, match="1 change set aside"):
        call_command("search_status", stdout=out)
    assert f"package {bad.pk} (refused-one)" in out.getvalue()
    assert "installed_size_kb" in out.getvalue()

    # Once the cause is gone, the next try after the pause writes it.
    monkeypatch.setattr(documents, "rows_for", built)
    assert writer.process_outbox() == (0, False)  # still set aside
    with connection.cursor() as cursor:
        cursor.execute("UPDATE indexing_outbox SET retry_after = now() - interval '1 second'")
    assert writer.process_outbox() == (1, False)
    assert client().exists(index=read_alias(), id=bad.pk)
    assert writer.outbox_stats()["backlog"] == 0


def test_a_refused_package_written_after_a_fix_leaves_nothing_set_aside(search_index, monkeypatch):
    # The editor fixes the package; its new version is written, but the rows set aside
    # stayed, counted as refused on the status page, and the freshness lag grew with them.
    package = make_package("fixed-later")
    built = documents.rows_for

    def poisoned(ids):
        rows = built(ids)
        for row in rows:
            row.source["installed_size_kb"] = "not a number"
        return rows

    monkeypatch.setattr(documents, "rows_for", poisoned)
    writer.process_outbox()
    assert writer.outbox_stats()["refused"] == 1
    monkeypatch.setattr(documents, "rows_for", built)
    package.summary = "fixed"
    package.save()
    assert writer.process_outbox() == (1, False)
    assert writer.outbox_stats() == {"backlog": 0, "refused": 0, "oldest_age_s": 0.0}
    assert doc(package.pk)["_source"]["summary"] == "fixed"


def test_an_index_that_refuses_every_write_is_a_failure_not_refused_documents(search_index):
    # A closed index answers 400 for each document: that is the index, not the documents,
    # and the batch must be retried (not set aside as if every package were at fault).
    package = make_package("into-a-closed-index")
    client().indices.close(index=search_index)
    try:
        with pytest.raises(writer.BulkWriteError):
            writer.process_outbox()
    finally:
        client().indices.open(index=search_index, wait_for_active_shards=1)
    assert writer.outbox_stats()["refused"] == 0
    assert writer.process_outbox() == (1, False)
    assert client().exists(index=read_alias(), id=package.pk)


def test_renaming_a_section_updates_every_package_in_bulk(search_index):
    ids = make_packages(1500, prefix="sect", section="oldname")
    writer.process_outbox(max_batches=10)
    Section.objects.filter(name="oldname").update(name="newname")
    assert outbox_backlog() == 1500
    written, more = writer.process_outbox(batch_size=1000, max_batches=10)
    assert (written, more) == (1500, False)  # two bulk batches, not 1500 tasks
    client().indices.refresh(index=read_alias())
    counts = client().count(index=read_alias(), query={"term": {"section": "newname"}})
    assert counts["count"] == len(ids)


def test_tag_and_maintainer_changes_reach_the_document(search_index):
    package = make_package("taggy", maintainer="Old Name")
    tag = Tag.objects.create(facet="interface", value="x11")
    package.tags.add(tag)
    writer.process_outbox()
    assert doc(package.pk)["_source"]["tags"] == ["interface::x11"]
    tag.value = "wayland"
    tag.save()
    package.maintainer.name = "New Name"
    package.maintainer.save()
    writer.process_outbox()
    source = doc(package.pk)["_source"]
    assert source["tags"] == ["interface::wayland"]
    assert source["maintainer"] == "New Name"
    package.tags.clear()
    writer.process_outbox()
    assert doc(package.pk)["_source"]["tags"] == []


def test_queryset_update_and_raw_sql_are_captured(search_index):
    ids = make_packages(20, prefix="raw")
    writer.process_outbox()
    with transaction.atomic():
        Package.objects.filter(pk__in=ids[:10]).update(summary="changed by update()")
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE portal_package SET summary = 'changed by raw SQL' WHERE id = ANY(%s)",
                [ids[10:]],
            )
        indexing.enqueue()  # the documented pattern: kick after commit
    writer.process_outbox()
    summaries = {doc(pk)["_source"]["summary"] for pk in ids}
    assert summaries == {"changed by update()", "changed by raw SQL"}


def test_search_status_verify_finds_and_repairs_drift(search_index):
    ids = make_packages(5, prefix="drift")
    writer.process_outbox()
    client().delete(index=write_alias(), id=ids[0])  # someone deleted a document by hand
    client().index(index=write_alias(), id=999_999_999, document={"name": "phantom"})
    with pytest.raises(CommandError, match="drift: 2 packages differ"):
        call_command("search_status", "--verify")
    report = verify.verify()
    assert (report.missing, report.extra, report.stale) == ([ids[0]], [999_999_999], [])
    call_command("search_status", "--repair")
    assert outbox_backlog() == 2
    writer.process_outbox()
    assert verify.verify().clean
    call_command("search_status", "--verify")  # no drift: no error


def _summary_by_hand(package, summary: str, *, versions_ahead: int) -> None:
    """Write the package's document with another summary, straight to Elasticsearch, at its
    row's version plus ``versions_ahead``."""
    (row,) = documents.rows_for([package.pk])
    client().index(
        index=write_alias(),
        id=package.pk,
        document=dict(row.source, summary=summary),
        version=row.version + versions_ahead,
        version_type="external_gte",
        refresh=True,
    )


def test_search_status_names_the_drifted_packages_and_a_repair_that_finds_them(search_index):
    """It said "4 packages differ (see above)", and above were counts only; and for content
    compared on a sample it advised `--repair`, which drew another sample and fixed nothing."""
    package = make_package("tampered", summary="the true summary")
    writer.process_outbox()
    _summary_by_hand(package, "changed by hand", versions_ahead=0)
    out = StringIO()
    with pytest.raises(CommandError, match=r"--repair --full"):
        call_command("search_status", "--verify", stdout=out)
    assert f"packages: {package.pk} (tampered)" in out.getvalue()
    call_command("search_status", "--repair", "--full", stdout=StringIO())
    writer.process_outbox()
    assert doc(package.pk)["_source"]["summary"] == "the true summary"


def test_search_status_says_when_the_worker_is_silent(search_index):
    from indexing import status

    status.stores.coordination().set(status.stores.key(status.HEARTBEAT_KEY), time.time() - 600)
    out = StringIO()
    call_command("search_status", stdout=out)
    assert "worker          last heartbeat 600s ago (over 60s)" in out.getvalue()


def test_a_document_ahead_of_its_row_is_drift_and_repair_makes_it_current(search_index):
    """A document whose version is above its row's (PostgreSQL restored from a backup takes
    the row-version sequence back; a write by hand) is wrong, and every later edit of the
    row loses to it as a version conflict. Verify called it clean; repair could not fix it,
    as touching the row took a version still below the document's."""
    package = make_package("ahead-of-db", summary="the true summary")
    writer.process_outbox()
    _summary_by_hand(package, "a summary from before the restore", versions_ahead=1000)
    report = verify.verify(sample=None)
    assert report.ahead == [package.pk] and not report.clean
    with pytest.raises(CommandError, match="drift: 1 packages differ"):
        call_command("search_status", "--verify")
    call_command("search_status", "--repair")
    writer.process_outbox()
    assert doc(package.pk)["_source"]["summary"] == "the true summary"
    assert verify.verify(sample=None).clean
    package.refresh_from_db()
    package.summary = "edited after the repair"
    package.save()
    writer.process_outbox()
    assert doc(package.pk)["_source"]["summary"] == "edited after the repair"


def test_search_status_sends_an_index_of_another_schema_to_a_rebuild_not_a_repair(search_index):
    # Documents of an index built before a field was added lack it: every one "differs",
    # and rewriting them cannot add the field to that index's mapping (dynamic: false), so
    # a repair would make verify pass while searches by the field still find nothing.
    ids = make_packages(3, prefix="schema")
    writer.process_outbox()
    client().delete(index=write_alias(), id=ids[0])  # some drift
    client().indices.put_mapping(index=search_index, meta={"schema": "an older one"})
    client().indices.refresh(index=search_index)
    with pytest.raises(CommandError, match=r"another schema: run `manage\.py reindex`$"):
        call_command("search_status", "--verify", stdout=StringIO())
    with pytest.raises(CommandError, match="rewriting them cannot change its mapping"):
        call_command("search_status", "--repair", stdout=StringIO())
    assert outbox_backlog() == 0


# ----------------------------------------------------------------- with the real worker


@pytest.mark.django_db(transaction=True)
def test_parallel_writers_end_with_the_index_equal_to_the_database(celery_worker, search_index):
    ids = make_packages(5, prefix="race")
    loads = [EditLoad(ids, interval=0.01) for _ in range(4)]
    for load in loads:
        load.start()
    time.sleep(4)
    for load in loads:
        load.stop()
    assert sum(load.edits for load in loads) > 100
    assert not [e for load in loads for e in load.errors]
    wait_until_indexed()
    assert_index_matches_database()


@pytest.mark.django_db(transaction=True)
def test_search_keeps_answering_during_a_rebuild_and_no_edit_is_lost(celery_worker, search_index):
    ids = make_packages(4000, prefix="rb")
    wait_until_indexed(timeout=120)
    old_index = indices_behind(read_alias())[0]
    edits = EditLoad(ids[::40], interval=0.02)
    failures: list[Exception] = []
    searches = [0]
    stop = threading.Event()

    def search_forever() -> None:
        while not stop.is_set():
            try:
                assert service.search("bulk package").total > 0
                searches[0] += 1
            except Exception as exc:
                failures.append(exc)

    searcher = threading.Thread(target=search_forever, daemon=True)
    edits.start()
    searcher.start()
    result = rebuild.rebuild(batch_size=500)
    time.sleep(1)
    edits.stop()
    stop.set()
    searcher.join(timeout=10)
    assert failures == []
    assert searches[0] >= 3  # searches ran, and all answered, throughout the rebuild
    assert edits.edits > 20 and not edits.errors
    assert result.documents >= 4000
    assert indices_behind(read_alias()) == [result.index] != [old_index]
    # The replaced index stays behind the write alias as the rollback target.
    assert indices_behind(write_alias()) == sorted([result.index, old_index])
    wait_until_indexed()
    assert_index_matches_database()


def test_reindex_refuses_to_run_twice_and_rolls_back(search_index):
    make_packages(10, prefix="lock")
    lease_key = stores.key(lease.REBUILD_KEY)
    stores.coordination().set(lease_key, "rebuild:someone-else", ex=60)
    try:
        with pytest.raises(CommandError, match="cannot start the rebuild: rebuild in progress"):
            call_command("reindex", verbosity=0)
        # A dry run said "would build …" while the real command would be refused.
        with pytest.raises(CommandError, match="cannot start the rebuild: rebuild in progress"):
            call_command("reindex", "--dry-run", verbosity=0)
    finally:
        stores.coordination().delete(lease_key)
    before = indices_behind(read_alias())
    call_command("reindex", "--dry-run", verbosity=0)
    assert indices_behind(read_alias()) == before
    call_command("reindex", verbosity=0)
    after = indices_behind(read_alias())
    assert after != before
    # The new index went live merged into one segment.
    shards = client().indices.segments(index=after[0])["indices"][after[0]]["shards"]
    assert shards["0"][0]["num_search_segments"] == 1
    # The replaced index is the rollback target, and keeps receiving writes.
    assert indices_behind(write_alias()) == sorted(before + after)
    call_command("reindex", "--rollback", verbosity=0)
    assert indices_behind(read_alias()) == before
    assert indices_behind(write_alias()) == sorted(before + after)


@pytest.mark.django_db(transaction=True)
def test_one_kick_per_transaction_and_none_lost_to_a_rollback(monkeypatch):
    from indexing import signals, tasks

    kicks: list[int] = []
    monkeypatch.setattr(tasks, "kick", lambda: kicks.append(1))
    with transaction.atomic():
        for i in range(3):
            make_package(f"kicked-{i}")
        signals.kick_after_commit()
    assert len(kicks) == 1  # three saves and an explicit kick: one message, at commit
    with transaction.atomic():
        try:
            with transaction.atomic():
                make_package("in-a-rolled-back-savepoint")  # registers the kick...
                raise RuntimeError("abort the savepoint")  # ...which Django discards
        except RuntimeError:
            pass
        make_package("after-the-savepoint")  # so this save registers one again
    assert len(kicks) == 2
    with pytest.raises(RuntimeError), transaction.atomic():
        make_package("rolled-back")
        raise RuntimeError("abort")
    assert len(kicks) == 2
    make_package("autocommit")  # no transaction: kicked at once
    assert len(kicks) == 3


@pytest.mark.parametrize("failure", [redis.ConnectionError("lease store down"), KeyError("bug")])
def test_an_indexing_failure_of_any_kind_is_on_the_status_page(search_index, monkeypatch, failure):
    # Failures outside the retried kinds (the lease's Redis, a bug) were neither retried nor
    # recorded: the status page showed nothing while the sweeper hid the failure.
    from celery.exceptions import Retry

    from indexing import status, tasks

    def fail(**kwargs):
        raise failure

    monkeypatch.setattr(writer, "process_outbox", fail)
    with pytest.raises((Retry, type(failure))):
        tasks.process_outbox.apply(throw=True).get()
    assert str(failure.args[0]) in " ".join(e["error"] for e in status.recent_errors()[:1])


@pytest.mark.django_db(transaction=True)
def test_the_sweeper_says_run_migrate_on_a_database_without_the_outbox(caplog):
    """`make services` starts the worker before `migrate`: on a new database the sweeper
    (every 5 s) logged a ProgrammingError traceback each time, 930 of them in a CI run,
    and never said what to do."""
    from indexing import status, tasks

    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE indexing_outbox RENAME TO indexing_outbox_away")
    try:
        with caplog.at_level("WARNING", logger="indexing.tasks"):
            assert tasks.sweep_outbox.apply(throw=True).get() == {}
    finally:
        with connection.cursor() as cursor:
            cursor.execute("ALTER TABLE indexing_outbox_away RENAME TO indexing_outbox")
    warnings = [r for r in caplog.records if r.name == "indexing.tasks"]
    assert len(warnings) == 1 and warnings[0].exc_info is None  # a line, not a traceback
    assert "manage.py migrate" in warnings[0].getMessage()
    # Among them (the session's worker may have recorded its own failure meanwhile).
    assert any("manage.py migrate" in e["error"] for e in status.recent_errors())


def test_waiting_for_a_first_index_is_not_an_indexing_error(search_index, monkeypatch):
    """While the first index is built, changes wait in the outbox (by design); each wait
    was recorded as an indexing error, and the status page's twenty recent errors were all
    "IndexNotReady" hours later."""
    from celery.exceptions import Retry

    from indexing import status, tasks

    before = status.recent_errors()

    def not_ready(**kwargs):
        raise rebuild.IndexNotReady("the first index is being built")

    monkeypatch.setattr(writer, "process_outbox", not_ready)
    status.stores.coordination().delete(status.stores.key(tasks.RETRY_GUARD_KEY))
    with pytest.raises(Retry):
        tasks.process_outbox.apply(throw=True).get()
    assert status.recent_errors() == before


def test_an_index_an_interrupted_rebuild_left_is_called_abandoned_with_the_remedy(search_index):
    """Killed mid-load, a rebuild leaves its index behind the write alias: it showed as
    "being built" forever (every change still written to it), with no advice."""
    from indexing import status
    from search.indices import prefix

    left = f"{prefix()}-20990101000000000000"
    client().indices.create(index=left)
    client().indices.update_aliases(actions=[{"add": {"index": left, "alias": write_alias()}}])
    roles = {i["name"]: i["role"] for i in status.collect()["indices"]}
    assert roles[left].startswith("abandoned") and "--remove-orphans" in roles[left]
    assert roles[search_index] == "live"
    with lease.Lease(lease.REBUILD_KEY, "rebuild"):  # a rebuild running: being built
        assert {i["name"]: i["role"] for i in status.collect()["indices"]}[left] == "being built"
    call_command("search_status", "--remove-orphans", stdout=StringIO())
    assert not client().indices.exists(index=left)
